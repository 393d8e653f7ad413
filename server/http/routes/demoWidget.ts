// `/demo/widget`: the real widget (standalone bundle) on a plain page, against the simulator.
// Hash parameters choose what it shows, so tests, the bench and a person can open it directly:
//   #view=panel|settings&token=<core token>&admin=1&phone=+15550000002&lang=ru
// Without a token the page creates a simulator portal (kept in localStorage) and uses its admin token.
const esc = (s: string) => s.replace(/[<&"]/g, (c) => ({ '<': '&lt;', '&': '&amp;', '"': '&quot;' })[c]!);

export function demoWidgetPage(standaloneUrl: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>InCRM widget demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{margin:0;padding:16px;background:#f5f7f8;font:14px system-ui,sans-serif}#incrm{max-width:760px;margin:0 auto}</style>
</head><body>
<div id="incrm"></div>
<script>
(async function () {
  var p = new URLSearchParams(location.hash.slice(1));
  var token = p.get('token');
  var admin = p.get('admin') !== '0';
  if (!token) {
    var s = JSON.parse(localStorage.getItem('incrm-demo-widget') || 'null');
    if (!s) {
      var r = await fetch('/api/v1/simulator/portals', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ crm: 'none', name: 'Widget demo' }) });
      s = await r.json();
      localStorage.setItem('incrm-demo-widget', JSON.stringify(s));
    }
    token = admin ? s.adminToken : s.userToken;
  }
  var phone = p.get('phone');
  window.INCRM_BOOT = {
    host: 'standalone',
    view: p.get('view') === 'settings' ? 'settings' : 'panel',
    apiBase: location.origin,
    token: token,
    tokenExpiresAt: Date.now() + 3600e3,
    entity: phone ? { type: 'phone', id: phone } : null,
    lang: p.get('lang') || navigator.language || 'en',
    admin: admin
  };
  window.__incrmMountStart = performance.now();
  var sc = document.createElement('script');
  sc.src = "${esc(standaloneUrl)}";
  document.body.appendChild(sc);
})();
</script></body></html>`;
}
