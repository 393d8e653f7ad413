// HTML that Bitrix24 shows in its frames: the widget boot page (card tab, settings tab), the
// install page (finishes the install through the SDK), and plain message pages.

export type WidgetLang = 'en' | 'ru' | 'es' | 'pt';

/** Bitrix24 interface languages → the widget's four. */
export function widgetLang(raw: string | undefined): WidgetLang {
  const l = String(raw ?? '').toLowerCase().slice(0, 2);
  if (['ru', 'ua', 'by', 'kz'].includes(l)) return 'ru';
  if (l === 'es' || l === 'la') return 'es';
  if (l === 'br' || l === 'pt') return 'pt';
  return 'en';
}

/** JSON that is safe inside `<script>`: no `</script>`, no `<!--`, no line separators that end a JS string. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export interface WidgetBoot {
  host: 'bitrix24';
  view: 'panel' | 'settings';
  apiBase: string;
  token: string;
  tokenExpiresAt: string;
  entity: { type: 'lead' | 'deal' | 'contact' | 'company'; id: string } | null;
  lang: WidgetLang;
  admin: boolean;
  userId: string;
  memberId: string;
  domain: string;
}

/** The widget page: the contract the widget bundle reads (`window.INCRM_BOOT`), nothing else. */
export function widgetPage(boot: WidgetBoot): string {
  // Key order as documented for the widget helper.
  const ordered: WidgetBoot = {
    host: boot.host,
    view: boot.view,
    apiBase: boot.apiBase,
    token: boot.token,
    tokenExpiresAt: boot.tokenExpiresAt,
    entity: boot.entity,
    lang: boot.lang,
    admin: boot.admin,
    userId: boot.userId,
    memberId: boot.memberId,
    domain: boot.domain,
  };
  return (
    `<!doctype html><html lang="${boot.lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>InCRM</title></head><body>` +
    `<div id="incrm"></div><script>window.INCRM_BOOT=${scriptJson(ordered)}</script><script src="/widget/bitrix24.js"></script>` +
    `</body></html>`
  );
}

const STYLE = 'body{font:15px/1.5 system-ui,sans-serif;max-width:40rem;margin:2.5rem auto;padding:0 1rem;color:#1f2d3d}h1{font-size:1.3rem;color:#128c4b}.err{color:#b3261e}';

export function messagePage(title: string, body: string, error = false): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>InCRM · ${esc(title)}</title><style>${STYLE}</style></head><body><h1${error ? ' class="err"' : ''}>${esc(title)}</h1><p>${esc(body)}</p></body></html>`;
}

/**
 * The install wizard's page: tells the admin what happened and finishes the install with
 * `$b24.installFinish()` (b24jssdk, served by us), or `BX24.installFinish()` if the page was
 * opened with Bitrix24's old library around. Until then Bitrix24 shows no tabs and sends no events.
 */
export function installPage(o: { ok: boolean; domain: string; detail: string }): string {
  const title = o.ok ? 'InCRM is installed' : 'InCRM could not finish the installation';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>InCRM · ${esc(title)}</title><style>${STYLE}</style></head><body>
<h1${o.ok ? '' : ' class="err"'}>${esc(title)}</h1><p>${esc(o.detail)}</p><p id="incrm-install-state">${o.ok ? 'Finishing the installation…' : ''}</p>
${
  o.ok
    ? `<script src="/bitrix24/b24jssdk.js"></script><script>
(function () {
  var state = document.getElementById('incrm-install-state');
  function done() { state.textContent = 'Done. The WhatsApp tab now shows in lead, deal, contact and company cards of ${esc(o.domain)}.'; }
  function fail(e) { state.textContent = 'Open this page from Bitrix24 to finish the installation (' + (e && e.message ? e.message : e) + ').'; }
  if (window.BX24 && BX24.installFinish) { BX24.init(function () { BX24.installFinish(); done(); }); return; }
  if (!window.B24Js) return fail('the Bitrix24 SDK did not load');
  B24Js.initializeB24Frame().then(function (b24) {
    if (!b24.isInstallMode) return done();
    return b24.installFinish().then(done);
  }).catch(fail);
})();
</script>`
    : ''
}
</body></html>`;
}
