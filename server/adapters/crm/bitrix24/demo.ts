import express from 'express';
import { z } from 'zod';

// `/demo/bitrix24` (only with WA_ENGINE=simulator): an emulated Bitrix24 deal card. Its
// "WhatsApp" tab is a real iframe into which a real form POSTs the placement fields
// (AUTH_ID, member_id, PLACEMENT, PLACEMENT_OPTIONS, DOMAIN, LANG) to /bitrix24/placement, as
// Bitrix24 does; the page answers the b24jssdk frame protocol (postMessage strings
// `command:params:callbackId:appSid`, answered `callbackId:json`) the way Bitrix24's parent page
// does; and it shows the deal's timeline as the fake portal holds it. The fake (test/fakes/
// bitrix24.ts, started by `npm run demo`) is where BITRIX24_REST_URL points.

const query = z.object({ member: z.string().regex(/^[0-9A-Za-z_-]{1,64}$/), deal: z.string().regex(/^\d{1,20}$/), user: z.string().regex(/^\d{1,10}$/).default('7'), lang: z.string().regex(/^[a-z]{2}$/).default('en') });

/** `card`: the demo portal and deal that a bare `/demo/bitrix24` opens (`npm run demo` sets it). */
export function bitrix24DemoRouter(restUrl: string | undefined, card: { member: string; deal: string } | null = null): express.Router {
  const r = express.Router();
  r.get('/demo/bitrix24', (req, res) => {
    if (card && req.query.member === undefined && req.query.deal === undefined) {
      const rest = new URLSearchParams(req.query as Record<string, string>);
      return void res.redirect(302, `/demo/bitrix24?${new URLSearchParams({ member: card.member, deal: card.deal, ...Object.fromEntries(rest) })}`);
    }
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    const q = query.safeParse(req.query);
    if (!restUrl || !q.success) {
      return void res
        .status(400)
        .send('<!doctype html><meta charset="utf-8"><title>InCRM · Bitrix24 demo</title><p>Start <code>npm run demo</code>: it installs InCRM into an emulated Bitrix24 portal and prints the address of this page.</p>');
    }
    const fake = new URL(restUrl).origin;
    res.send(page({ fake, ...q.data }));
  });
  return r;
}

function page(o: { fake: string; member: string; deal: string; user: string; lang: string }): string {
  const cfg = JSON.stringify(o).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Deal · Bitrix24 (emulated) · InCRM demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px "Helvetica Neue",Arial,sans-serif;margin:0;background:#eef2f4;color:#333}
 header{background:#2fc6f6;color:#fff;padding:10px 18px;display:flex;gap:18px;align-items:center}
 header b{font-size:16px} header select{font:inherit}
 main{display:grid;grid-template-columns:320px 1fr;gap:14px;padding:14px}
 .card{background:#fff;border-radius:10px;padding:14px;box-shadow:0 1px 2px #0001}
 h1{font-size:20px;margin:0 0 4px} h2{font-size:14px;margin:14px 0 6px;color:#535c69;text-transform:uppercase;letter-spacing:.04em}
 .tabs{display:flex;gap:4px;margin-bottom:10px}.tabs button{border:0;background:#e4e8eb;border-radius:14px;padding:6px 14px;font:inherit;cursor:pointer}
 .tabs button.on{background:#fff;box-shadow:0 0 0 1px #bdc1c6 inset;font-weight:bold}
 iframe{width:100%;border:0;min-height:520px;background:#fff;border-radius:8px}
 .tl{font-size:13px;border-left:3px solid #2fc6f6;padding:6px 10px;margin:6px 0;background:#f7f9fa;white-space:pre-wrap;word-break:break-word}
 .tl small{color:#80868e;display:block} .n{font-size:12px;color:#535c69;margin:4px 0}
 #log{font:11px monospace;color:#80868e;max-height:120px;overflow:auto}
</style></head><body>
<header><b>Bitrix24</b><span>(emulated portal <span id="domain"></span>)</span>
 <label>User <select id="user"><option value="7">Sam Sales (manager)</option><option value="1">Ana Admin (admin)</option></select></label>
 <a href="#" id="settings" style="color:#fff">Open InCRM settings (app page)</a></header>
<main>
 <div class="card"><h1 id="title">Deal</h1><div id="fields"></div>
  <h2>Timeline</h2><div id="timeline"></div>
  <h2>Notifications</h2><div id="notes"></div>
  <h2>Frame messages</h2><div id="log"></div></div>
 <div class="card">
  <div class="tabs"><button id="tabGeneral">General</button><button id="tabWa" class="on">WhatsApp</button></div>
  <div id="general" hidden>Deal fields live on the left.</div>
  <div id="wa"></div>
  <form id="placementForm" method="post" target="" action=""></form>
 </div>
</main>
<script>
(function () {
  var cfg = ${cfg};
  var form = document.getElementById('placementForm');
  var appSid = Math.random().toString(16).slice(2) + Math.random().toString(16).slice(2);
  // Bitrix24 names the frame "DOMAIN|PROTOCOL|APP_SID": b24jssdk reads it to know its parent.
  // The name is set before the frame exists, so it is the frame's browsing-context name.
  var frame = document.createElement('iframe');
  frame.id = 'frame'; frame.title = 'InCRM';
  frame.name = location.host + '|' + (location.protocol === 'https:' ? 1 : 0) + '|' + appSid;
  document.getElementById('wa').appendChild(frame);
  var current = null; // the form fields last posted into the frame (the frame's auth)
  var logBox = document.getElementById('log');
  function log(s) { var d = document.createElement('div'); d.textContent = s; logBox.prepend(d); }
  function text(el, s) { document.getElementById(el).textContent = s; }

  form.target = frame.name;

  function fetchFrameForm(placement, id) {
    var u = cfg.fake + '/demo/portals/' + cfg.member + '/frame?user=' + document.getElementById('user').value + '&placement=' + placement + '&id=' + (id || '') + '&lang=' + cfg.lang;
    return fetch(u).then(function (r) { return r.json(); });
  }

  // A real form POST into the iframe, as Bitrix24 opens a placement handler.
  function open(path, placement, id) {
    return fetchFrameForm(placement, id).then(function (f) {
      current = f;
      form.innerHTML = '';
      form.action = path + '?DOMAIN=' + encodeURIComponent(f.DOMAIN) + '&PROTOCOL=1&LANG=' + cfg.lang + '&APP_SID=' + appSid;
      ['AUTH_ID', 'AUTH_EXPIRES', 'REFRESH_ID', 'member_id', 'status', 'PLACEMENT', 'PLACEMENT_OPTIONS', 'DOMAIN', 'LANG'].forEach(function (k) {
        var i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = f[k] == null ? '' : f[k]; form.appendChild(i);
      });
      form.submit();
    });
  }

  // The parent side of the b24jssdk frame protocol.
  window.addEventListener('message', function (e) {
    if (e.source !== frame.contentWindow || typeof e.data !== 'string') return;
    var parts = e.data.split(':');
    var cmd = parts.shift();
    var sid = parts.pop(); var cb = parts.pop(); var params = parts.join(':');
    if (sid !== appSid) return;
    var args = {}; try { args = params ? JSON.parse(params) : {}; } catch (err) { args = params; }
    var reply = function (data) { e.source.postMessage(cb + ':' + JSON.stringify(data === undefined ? {} : data), e.origin); };
    log(cmd + (params ? ' ' + params.slice(0, 80) : ''));
    switch (cmd) {
      case 'getInitData':
        var opts = {}; try { opts = JSON.parse(current.PLACEMENT_OPTIONS || '{}'); } catch (err) {}
        return reply({ DOMAIN: location.host, PROTOCOL: location.protocol === 'https:' ? 1 : 0, PATH: '/rest', LANG: cfg.lang,
          MEMBER_ID: current.member_id, IS_ADMIN: document.getElementById('user').value === '1', AUTH_ID: current.AUTH_ID, REFRESH_ID: current.REFRESH_ID,
          AUTH_EXPIRES: current.AUTH_EXPIRES, APP_OPTIONS: {}, USER_OPTIONS: {}, PLACEMENT: current.PLACEMENT, PLACEMENT_OPTIONS: opts, INSTALL: false, FIRST_RUN: false });
      case 'refreshAuth':
        return fetchFrameForm(current.PLACEMENT, JSON.parse(current.PLACEMENT_OPTIONS || '{}').ID).then(function (f) {
          current.AUTH_ID = f.AUTH_ID; current.REFRESH_ID = f.REFRESH_ID;
          reply({ AUTH_ID: f.AUTH_ID, REFRESH_ID: f.REFRESH_ID, AUTH_EXPIRES: f.AUTH_EXPIRES });
        });
      case 'resizeWindow':
        if (args && args.height) frame.style.height = Math.max(300, parseInt(args.height, 10) || 0) + 'px';
        return reply({});
      case 'getInterface':
        return reply({ command: [], placement: [], event: [] });
      case 'setTitle': if (args && args.title) document.title = args.title; return reply({});
      case 'reloadWindow': open(current.PLACEMENT === 'DEFAULT' ? '/bitrix24/app' : '/bitrix24/placement', current.PLACEMENT, cfg.deal); return reply({});
      default:
        // setScroll, imOpenMessenger, openPath, setInstallFinish…: accepted, nothing more to emulate.
        return reply({});
    }
  });

  function refresh() {
    fetch(cfg.fake + '/demo/portals/' + cfg.member + '/card?id=' + cfg.deal).then(function (r) { return r.json(); }).then(function (c) {
      text('domain', c.domain);
      text('title', c.deal.TITLE);
      document.getElementById('fields').innerHTML = '';
      var rows = [['Stage', c.deal.STAGE_ID], ['Responsible', c.deal.ASSIGNED_BY_ID]].concat(c.contacts.map(function (x) { return ['Contact', x.NAME + ' ' + (x.PHONE || []).map(function (p) { return p.VALUE; }).join(', ')]; }));
      rows.forEach(function (r) { var d = document.createElement('div'); d.textContent = r[0] + ': ' + r[1]; document.getElementById('fields').appendChild(d); });
      var tl = document.getElementById('timeline'); tl.innerHTML = '';
      c.timeline.forEach(function (t) { var d = document.createElement('div'); d.className = 'tl'; d.textContent = t.COMMENT; var s = document.createElement('small'); s.textContent = t.ENTITY_TYPE + ' #' + t.ENTITY_ID + ' · ' + t.CREATED; d.prepend(s); tl.appendChild(d); });
      var ns = document.getElementById('notes'); ns.innerHTML = '';
      c.notifications.forEach(function (n) { var d = document.createElement('div'); d.className = 'n'; d.textContent = 'to #' + n.USER_ID + ': ' + n.MESSAGE; ns.appendChild(d); });
    }).catch(function () {});
  }

  document.getElementById('tabGeneral').onclick = function () { this.className = 'on'; document.getElementById('tabWa').className = ''; document.getElementById('general').hidden = false; document.getElementById('wa').hidden = true; };
  document.getElementById('tabWa').onclick = function () { this.className = 'on'; document.getElementById('tabGeneral').className = ''; document.getElementById('general').hidden = true; document.getElementById('wa').hidden = false; };
  document.getElementById('user').value = cfg.user;
  document.getElementById('user').onchange = function () { open('/bitrix24/placement', 'CRM_DEAL_DETAIL_TAB', cfg.deal); };
  document.getElementById('settings').onclick = function (ev) { ev.preventDefault(); document.getElementById('tabWa').onclick(); open('/bitrix24/app', 'DEFAULT', ''); };
  open('/bitrix24/placement', 'CRM_DEAL_DETAIL_TAB', cfg.deal);
  refresh(); setInterval(refresh, 2000);
})();
</script></body></html>`;
}
