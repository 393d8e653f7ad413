// Kommo bundle: a UMD module. Our AMD script.js (manifest/kommo) requires it with RequireJS and
// calls `mount(shadowRoot, host, view)`; it also sets `window.InCRMWidget` for plain pages.
// Preact and our code only: the Kommo bundle has a 45 KB gzip budget.
import { css, mount } from '../app';

export { css, mount };
export type { Host, View } from '../host';
export const version = '1';
