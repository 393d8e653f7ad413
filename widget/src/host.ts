// What a CRM host gives the app. Each host (Kommo's AMD shell, the Bitrix24 frame, the standalone
// console / demo page) implements this thinly; the app knows nothing else about its CRM.
import type { EntityType } from './types';

export interface HostToken {
  token: string;
  /** ISO time or epoch ms. */
  expiresAt: string | number;
}

export interface Host {
  /** The CRM's interface language (`en`, `ru`, `es`, `pt`, or a CRM code such as `pt_BR`). */
  lang: string;
  /** The server's base URL, e.g. `https://incrm.example.com` (no trailing slash, no /api/v1). */
  apiBase: string;
  /** A valid core token; hosts refresh it from the CRM's proof when it nears expiry. */
  getToken(force?: boolean): Promise<HostToken>;
  /** The card the panel is in; null outside a card. */
  entity: { type: EntityType; id: string } | null;
  admin: boolean;
  /** The CRM's own notification (Kommo's notification centre, Bitrix24's im.notify). */
  notify?(title: string, text: string, link: string | null): void;
  /** Tell the host the content's height changed (Bitrix24 frame resize). */
  fitHeight?(): void;
  /** Open the settings tab / page of the app (the banner's link for admins). */
  openSettings?(): void;
}

export type View = 'panel' | 'settings';
