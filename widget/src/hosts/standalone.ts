// Standalone bundle: the account console and the plain /demo page set `window.INCRM_BOOT` with a
// core token and load this script; it mounts into #incrm (shadow root).
import { mount } from '../app';
import type { Host } from '../host';
import { mountTarget, readBoot } from './boot';

const boot = readBoot();
let current = { token: boot.token, expiresAt: boot.tokenExpiresAt };
const host: Host = {
  lang: boot.lang,
  apiBase: boot.apiBase,
  entity: boot.entity ?? null,
  admin: boot.admin,
  // The page may hand a fresher token later (`InCRMStandalone.setToken`); none is minted here.
  getToken: async () => current,
  notify: (title, text) => {
    window.dispatchEvent(new CustomEvent('incrm:notify', { detail: { title, text } }));
  },
};
const mounted = mount(mountTarget(boot.mountId), host, boot.view);
(window as unknown as { InCRMStandalone: unknown }).InCRMStandalone = {
  mounted,
  setToken(token: string, expiresAt: string | number) {
    current = { token, expiresAt };
  },
};
