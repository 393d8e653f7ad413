// Bitrix24 bundle: runs in the placement / app iframe the server renders with `INCRM_BOOT`. The
// app mounts at once with the boot token (fast first render); the SDK handshake with the parent
// page runs beside it to fit the frame's height and to renew the token from a fresh AUTH_ID
// (exchanged at POST /bitrix24/token). Without a parent frame the SDK fails and the app keeps
// working on the boot token.
import { initializeB24Frame, type B24Frame } from '@bitrix24/b24jssdk';
import { mount } from '../app';
import type { Host } from '../host';
import { expiryMs } from '../logic';
import { mountTarget, readBoot } from './boot';

const SDK_TIMEOUT_MS = 5000;

const boot = readBoot();
let current = { token: boot.token, expiresAt: boot.tokenExpiresAt };
let admin = boot.admin;
let b24: B24Frame | null = null;

const sdk: Promise<B24Frame | null> = Promise.race([
  initializeB24Frame().catch(() => null),
  new Promise<null>((resolve) => setTimeout(() => resolve(null), SDK_TIMEOUT_MS)),
]).then((f) => (b24 = f));

/** A fresh core token from a fresh Bitrix24 AUTH_ID (the parent page renews it for us). */
async function renew(): Promise<void> {
  const frame = b24 ?? (await sdk);
  if (!frame) return;
  const auth = await frame.auth.refreshAuth();
  const res = await fetch(`${boot.apiBase.replace(/\/+$/, '')}/bitrix24/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ member_id: auth.member_id || boot.memberId, auth_id: auth.access_token }),
  });
  if (!res.ok) throw new Error(`token exchange failed: HTTP ${res.status}`);
  const body = (await res.json()) as { token: string; expiresAt: string | number; admin?: boolean };
  current = { token: body.token, expiresAt: body.expiresAt };
  if (typeof body.admin === 'boolean') admin = body.admin;
}

let fitQueued = false;
let lastHeight = -1;
const host: Host = {
  lang: boot.lang,
  apiBase: boot.apiBase,
  entity: boot.entity ?? null,
  get admin() {
    return admin;
  },
  async getToken(force) {
    if (force || expiryMs(current.expiresAt) - Date.now() < 2 * 60_000) {
      try {
        await renew();
      } catch {
        /* keep the one we have: the server says 401 if it is really gone */
      }
    }
    return current;
  },
  fitHeight() {
    // Called after every render; the portal is asked to resize only when the height really changed
    // (each fitWindow is a postMessage round trip through the portal's page).
    if (fitQueued) return;
    fitQueued = true;
    requestAnimationFrame(() => {
      fitQueued = false;
      // Before the SDK's handshake there is no one to ask; its answer calls fitHeight again. (A
      // height noted now would make that call a no-op, and the frame would never be fitted.)
      if (!b24) return;
      const h = document.documentElement.scrollHeight;
      if (h === lastHeight) return;
      lastHeight = h;
      void b24.parent.fitWindow().catch(() => {
        lastHeight = -1;
      });
    });
  },
  notify(title, text) {
    // The server already notifies the responsible users through Bitrix24; from the frame we add
    // one only for the person looking at this card while the tab is in the background.
    if (!b24 || !boot.userId || document.visibilityState === 'visible') return;
    void b24.callMethod('im.notify.personal.add', { USER_ID: boot.userId, MESSAGE: `${title}: ${text}`, TAG: 'incrm-new-message' }).catch(() => {});
  },
  openSettings() {
    // The app's own page (settings tab) opens in a slider of the portal.
    void b24?.slider.openSliderAppPage({ bx24_width: 900, view: 'settings' }).catch(() => {});
  },
};

const el = mountTarget(boot.mountId);
if (boot.view === 'panel') (el as HTMLElement).style.setProperty('--incrm-height', '600px');
const mounted = mount(el, host, boot.view);
void sdk.then(() => host.fitHeight?.());
(window as unknown as { InCRMBitrix24: unknown }).InCRMBitrix24 = { mounted, sdk };
