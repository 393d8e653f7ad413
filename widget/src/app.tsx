// `mount(el, host, view)`: renders the panel or the settings tab inside a shadow root with the
// app's CSS in it, so neither the CRM page's styles nor ours cross the boundary.
import { render } from 'preact';
import { Api } from './api';
import type { Host, View } from './host';
import { pickLang, translator } from './i18n';
import { PanelModel } from './panelModel';
import css from './styles.css';
import { Panel } from './ui/Panel';
import { Settings } from './ui/Settings';

export type { Host, View } from './host';
export { css };

export interface Mounted {
  unmount(): void;
}

export function mount(el: Element | ShadowRoot, host: Host, view: View = 'panel'): Mounted {
  const root: ShadowRoot = isShadow(el) ? el : (el.shadowRoot ?? el.attachShadow({ mode: 'open' }));
  // A remount into the same root replaces the previous app.
  (root as { __incrm?: Mounted }).__incrm?.unmount();
  const style = document.createElement('style');
  style.textContent = css;
  const box = document.createElement('div');
  root.append(style, box);
  const lang = pickLang(host.lang);
  const t = translator(lang);
  const api = new Api(host);
  let model: PanelModel | null = null;
  if (view === 'settings') render(<Settings api={api} host={host} t={t} lang={lang} />, box);
  else {
    model = new PanelModel(api, host, t);
    render(<Panel model={model} t={t} lang={lang} />, box);
    void model.start();
  }
  const mounted: Mounted = {
    unmount() {
      model?.dispose();
      render(null, box);
      box.remove();
      style.remove();
      if ((root as { __incrm?: Mounted }).__incrm === mounted) delete (root as { __incrm?: Mounted }).__incrm;
    },
  };
  (root as { __incrm?: Mounted }).__incrm = mounted;
  return mounted;
}

function isShadow(el: Element | ShadowRoot): el is ShadowRoot {
  return typeof ShadowRoot !== 'undefined' && el instanceof ShadowRoot;
}
