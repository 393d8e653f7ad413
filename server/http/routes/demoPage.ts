// The demo page: a person connects a simulated number by QR, then chats as the manager (left)
// and as the client's phone (right). Plain HTML and script: the real widget has its own issue.
export const DEMO_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>InCRM demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px system-ui,sans-serif;margin:0;background:#eef1f4;color:#1d2b36}
 header{background:#075e54;color:#fff;padding:10px 16px;display:flex;gap:16px;align-items:center}
 main{display:grid;grid-template-columns:300px 1fr 1fr;gap:12px;padding:12px}
 section{background:#fff;border-radius:8px;padding:12px;box-shadow:0 1px 2px #0002;min-height:420px;display:flex;flex-direction:column}
 h2{font-size:15px;margin:0 0 8px}
 .msgs{flex:1;overflow:auto;background:#efeae2;border-radius:6px;padding:8px;min-height:300px;max-height:60vh}
 .m{max-width:75%;padding:6px 9px;border-radius:7px;margin:4px 0;white-space:pre-wrap;word-break:break-word}
 .in{background:#fff}.out{background:#d9fdd3;margin-left:auto}
 .meta{font-size:11px;color:#667781;text-align:right}
 .read{color:#53bdeb}.failed{color:#d33}
 form{display:flex;gap:6px;margin-top:8px} input,button{font:inherit;padding:6px 8px} input{flex:1}
 .num{border:1px solid #ddd;border-radius:6px;padding:8px;margin:6px 0} img{display:block;margin:6px auto}
</style></head><body>
<header><b>InCRM demo</b><span id="portal"></span><span id="stream">stream: connecting…</span></header>
<main>
 <section><h2>Numbers (settings tab)</h2><button id="connect">Connect a WhatsApp number</button><div id="numbers"></div></section>
 <section><h2>Manager (chat panel)</h2>
  <form id="openForm"><input id="clientPhone" value="+15550000002" aria-label="client phone"><button>Open chat</button></form>
  <div class="msgs" id="managerMsgs"></div>
  <form id="sendForm"><input id="managerText" placeholder="Type a message" aria-label="manager message"><button>Send</button></form>
 </section>
 <section><h2>Client phone <span id="phoneLabel"></span></h2>
  <div class="msgs" id="phoneMsgs"></div>
  <form id="replyForm"><input id="phoneText" placeholder="Reply as the client" aria-label="client reply"><button>Send</button></form>
  <button id="readBtn">Read messages (blue ticks)</button>
 </section>
</main>
<script>
const api = (p, o = {}) => fetch('/api/v1' + p, { ...o, headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + (o.token || S.adminToken), ...(o.headers || {}) } })
  .then(async r => { const b = r.status === 204 ? null : await r.json(); if (!r.ok) throw new Error(b && b.error ? b.error.message : r.status); return b; });
const S = JSON.parse(localStorage.getItem('incrm-demo') || 'null') || {};
let conv = null, numbers = [];
const ticks = { queued: '🕓', sent: '✓', delivered: '✓✓', read: '✓✓', played: '✓✓ ▶', failed: '⚠' };
const esc = s => (s || '').replace(/[&<>]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' }[c]));
async function init() {
  if (!S.adminToken) {
    Object.assign(S, await api('/simulator/portals', { method: 'POST', body: JSON.stringify({ crm: 'none', name: 'Demo' }), token: 'none' }));
    localStorage.setItem('incrm-demo', JSON.stringify(S));
  }
  try { await api('/numbers'); } catch { localStorage.removeItem('incrm-demo'); location.reload(); return; }
  document.getElementById('portal').textContent = 'portal #' + S.portalId;
  await loadNumbers();
  const es = new EventSource('/api/v1/stream?access_token=' + encodeURIComponent(S.adminToken));
  es.onopen = () => document.getElementById('stream').textContent = 'stream: live';
  es.onerror = () => document.getElementById('stream').textContent = 'stream: reconnecting…';
  es.addEventListener('number', loadNumbers);
  es.addEventListener('message', e => { const m = JSON.parse(e.data); if (conv && m.conversationId === conv.id) loadMessages(); });
  es.addEventListener('status', e => { const s = JSON.parse(e.data); if (conv && s.conversationId === conv.id) loadMessages(); });
  es.addEventListener('resync', () => { loadNumbers(); loadMessages(); });
  setInterval(loadPhone, 1000);
}
async function loadNumbers() {
  numbers = (await api('/numbers')).items;
  document.getElementById('numbers').innerHTML = numbers.map(n => '<div class="num"><b>#' + n.id + '</b> ' + (n.phone || '') + ' — <i>' + n.state + '</i>' +
    (n.stateDetail ? '<div>' + esc(n.stateDetail) + '</div>' : '') +
    (n.qr ? '<img alt="QR code" src="' + n.qr + '" width="180"><form onsubmit="scan(event,' + n.id + ')"><input name="p" value="+1555000000' + n.id + '" aria-label="phone that scans"><button>Scan with this phone</button></form>' : '') +
    (n.state !== 'logged_out' ? '<button onclick="logout(' + n.id + ')">Disconnect</button>' : '') + '</div>').join('');
}
window.scan = async (e, id) => { e.preventDefault(); await fetch('/api/v1/simulator/numbers/' + id + '/scan', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ phone: e.target.p.value }) }); };
window.logout = async id => { if (confirm('Disconnect this number?')) await api('/numbers/' + id + '/logout', { method: 'POST' }); };
document.getElementById('connect').onclick = () => api('/numbers', { method: 'POST' }).then(loadNumbers, e => alert(e.message));
document.getElementById('openForm').onsubmit = async e => { e.preventDefault();
  try { conv = await api('/conversations', { method: 'POST', body: JSON.stringify({ phone: document.getElementById('clientPhone').value }) }); } catch (err) { alert(err.message); return; }
  document.getElementById('phoneLabel').textContent = conv.phone; loadMessages(); };
async function loadMessages() {
  if (!conv) return;
  const page = await api('/conversations/' + conv.id + '/messages?limit=100');
  const box = document.getElementById('managerMsgs');
  box.innerHTML = page.items.map(m => '<div class="m ' + m.direction + '">' + esc(m.text || '[' + m.type + ']') +
    '<div class="meta">' + new Date(m.createdAt).toLocaleTimeString() + ' ' + (m.direction === 'out' ? '<span class="' + m.status + '">' + ticks[m.status] + '</span>' : '') +
    (m.error ? ' <span class="failed">' + esc(m.error) + '</span>' : '') + '</div></div>').join('');
  box.scrollTop = box.scrollHeight;
  api('/conversations/' + conv.id + '/read', { method: 'POST' });
}
document.getElementById('sendForm').onsubmit = async e => { e.preventDefault();
  const t = document.getElementById('managerText'); if (!conv || !t.value) return;
  await api('/conversations/' + conv.id + '/messages', { method: 'POST', body: JSON.stringify({ text: t.value }), headers: { 'Idempotency-Key': crypto.randomUUID() } });
  t.value = ''; loadMessages(); };
async function loadPhone() {
  if (!conv) return;
  const r = await fetch('/api/v1/simulator/delivered?phone=' + encodeURIComponent(conv.phone)).then(r => r.json());
  const box = document.getElementById('phoneMsgs'); const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  box.innerHTML = r.items.map(m => '<div class="m in">' + esc(m.text || '[' + m.type + ']') + '<div class="meta">from ' + m.from + ' · ' + m.status + '</div></div>').join('');
  if (atEnd) box.scrollTop = box.scrollHeight;
}
document.getElementById('replyForm').onsubmit = async e => { e.preventDefault();
  const t = document.getElementById('phoneText'); const num = numbers.find(n => n.id === conv?.numberId);
  if (!conv || !num || !t.value) return;
  const r = await fetch('/api/v1/simulator/inbound', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ to: num.phone, from: conv.phone, name: 'Client', text: t.value }) });
  if (!r.ok) alert((await r.json()).error.message); t.value = ''; };
document.getElementById('readBtn').onclick = () => conv && fetch('/api/v1/simulator/phones/' + encodeURIComponent(conv.phone) + '/read', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
init().catch(e => alert(e.message));
</script></body></html>`;
