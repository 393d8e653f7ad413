// `window.INCRM_BOOT`, written by the server into the Bitrix24 placement / app pages and the
// standalone pages (console, demo): what the app needs to start without asking anyone.
import type { EntityType } from '../types';
import type { View } from '../host';

export interface Boot {
  host: 'bitrix24' | 'standalone';
  view: View;
  apiBase: string;
  token: string;
  tokenExpiresAt: string | number;
  entity?: { type: EntityType; id: string } | null;
  lang: string;
  admin: boolean;
  userId?: string;
  memberId?: string;
  domain?: string;
  /** Optional element id to mount into (default `incrm`). */
  mountId?: string;
}

export function readBoot(): Boot {
  const b = (window as { INCRM_BOOT?: Boot }).INCRM_BOOT;
  if (!b || typeof b.token !== 'string') throw new Error('InCRM: window.INCRM_BOOT is missing');
  return { ...b, apiBase: b.apiBase || location.origin, view: b.view === 'settings' ? 'settings' : 'panel', entity: b.entity ?? null };
}

/** The element to mount into: `#incrm` (created when absent). */
export function mountTarget(id = 'incrm'): Element {
  let el = document.getElementById(id);
  if (!el) {
    el = document.createElement('div');
    el.id = id;
    document.body.appendChild(el);
  }
  return el;
}
