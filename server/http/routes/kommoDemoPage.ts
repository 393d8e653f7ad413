// The emulated Kommo page behind /demo/kommo. What it emulates, and why each piece is there:
// - RequireJS and jQuery (registered as the AMD module `jquery`), because script.js is an AMD
//   module that Kommo loads with its own RequireJS and that asks for `jquery`;
// - the global APP (alias AMOCRM): APP.constant('account'|'user'|'user_rights'),
//   APP.data.current_card, APP.lang_id, APP.notifications.show_message, APP.router.navigate;
// - the widget object Kommo extends with script.js: system(), get_settings(), i18n(), langs,
//   params, render_template() (the right-column block), $authorizedAjax() (adds X-Auth-Token,
//   minted here by the fake account), get_version(), get_install_status();
// - the callbacks in Kommo's order: render → init → bind_actions, then settings($modal_body)
//   when the settings modal opens, or advancedSettings() on the advanced settings page.
// The widget files come from the built archive, served unpacked under /demo/kommo/upl/….
// Query: view=lead|contact|company|settings|advanced, id, user (501 admin, 502 manager),
// lang=en|ru|es|pt, hostile=1 (aggressive host CSS, to prove the widget is isolated).
export const KOMMO_DEMO_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kommo (emulated) · InCRM demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{margin:0;font:14px/1.4 "PT Sans",Arial,sans-serif;background:#f5f5f5;color:#313942}
 #left_menu{position:fixed;left:0;top:0;bottom:0;width:68px;background:#0c2a3d;display:flex;flex-direction:column;align-items:center;padding-top:10px;gap:6px}
 #left_menu a{color:#92a4b2;font-size:11px;text-decoration:none;text-align:center;width:60px;padding:6px 0;border-radius:4px}
 #left_menu a.active{background:#1d4158;color:#fff}
 #page_holder{margin-left:68px;min-height:100vh;display:flex;flex-direction:column}
 .kommo-top{height:46px;background:#fff;border-bottom:1px solid #e1e4e7;display:flex;align-items:center;padding:0 16px;gap:12px}
 .kommo-top b{font-size:16px}.kommo-top .muted{color:#92989b;font-size:12px}
 .card-holder{flex:1;display:grid;grid-template-columns:300px 1fr 380px;min-height:0}
 .card-fields{background:#fff;border-right:1px solid #e1e4e7;padding:16px}
 .card-fields h1{font-size:20px;margin:0 0 12px}
 .card-fields .field{display:flex;border-bottom:1px dashed #e1e4e7;padding:6px 0;font-size:13px}
 .card-fields .field span:first-child{color:#92989b;width:110px;flex:none}
 .card-fields .linked a{display:block;color:#1375ab;text-decoration:none;padding:3px 0}
 .feed{padding:16px;overflow:auto;max-height:calc(100vh - 47px)}
 .feed h2,.card-widgets h2{font-size:12px;text-transform:uppercase;color:#92989b;margin:0 0 8px;letter-spacing:.5px}
 .feed-note{background:#fff;border:1px solid #e8eaeb;border-radius:3px;padding:8px 10px;margin:0 0 8px;white-space:pre-wrap;word-break:break-word;font-size:13px}
 .feed-note small{display:block;color:#92989b;margin-bottom:2px}
 .card-widgets{background:#fff;border-left:1px solid #e1e4e7;padding:12px;overflow:auto;max-height:calc(100vh - 47px)}
 .card-widgets__widget{border:1px solid #e1e4e7;border-radius:3px;margin-bottom:12px}
 .card-widgets__widget__caption{background:#f9f9f9;border-bottom:1px solid #e1e4e7;padding:8px 10px;font-weight:bold;font-size:13px}
 .card-widgets__widget__body{height:560px;display:flex;flex-direction:column}
 .card-widgets__widget__body > div{flex:1;min-height:0}
 .settings-page{padding:24px}
 .modal{background:#fff;border-radius:4px;box-shadow:0 4px 24px #0003;max-width:1000px;margin:0 auto;display:grid;grid-template-columns:300px 1fr}
 .modal .widget-settings__desc-space{padding:20px;border-right:1px solid #e1e4e7;font-size:13px;color:#5b6770}
 .modal .widget-settings__desc-space h2{color:#313942;font-size:18px;margin:10px 0}
 .widget_settings_block{padding:20px;min-height:520px}
 .widget_settings_block__item_field{margin-bottom:14px}
 .widget_settings_block__item_field label{display:block;font-size:12px;color:#92989b;margin-bottom:4px}
 .widget_settings_block__item_field input{width:100%;box-sizing:border-box;padding:6px 8px;border:1px solid #d4d5d8}
 #work_area{padding:24px}#work_area .content__top__preset h1{font-size:20px;margin:0 0 16px}
 #notifications{position:fixed;right:16px;top:56px;width:320px;z-index:9000;display:flex;flex-direction:column;gap:8px}
 .notification{background:#fff;border-left:4px solid #4c8bf7;box-shadow:0 2px 10px #0003;padding:10px 12px;border-radius:3px;font-size:13px}
 .notification__header{font-weight:bold;margin-bottom:2px}.notification a{color:inherit;text-decoration:none;display:block}
 .host-probe{margin-top:16px;font-size:12px;color:#5b6770}.host-probe button{padding:4px 10px}
 #phone_sim{position:fixed;left:76px;bottom:8px;width:284px;background:#fffbe6;border:1px solid #e6d9a3;border-radius:4px;box-shadow:0 2px 8px #0002;font-size:12px;z-index:8000}
 #phone_sim > button{width:100%;text-align:left;background:none;border:0;padding:6px 8px;font:inherit;font-weight:bold;cursor:pointer}
 #phone_sim .sim-body{padding:0 8px 8px;display:none}#phone_sim.open .sim-body{display:block}
 #phone_sim .sim-row{display:flex;gap:4px;align-items:center;margin:3px 0}#phone_sim input,#phone_sim select{font:inherit;padding:2px 4px;min-width:0;flex:1}
 #phone_sim .sim-row button{font:inherit;padding:2px 6px}
</style>
<style id="hostile"></style>
</head><body>
<div id="left_menu"></div>
<div id="page_holder">
 <div class="kommo-top"><b id="top_title">Kommo</b><span class="muted" id="top_account"></span><span class="muted">emulated for the InCRM demo</span></div>
 <div id="work"></div>
</div>
<div id="notifications"></div>
<div id="phone_sim"><button type="button" id="sim_toggle">📱 Phone simulator (demo only)</button><div class="sim-body">
 <div id="sim_numbers"></div>
 <div class="sim-row"><select id="sim_to" aria-label="to number"></select></div>
 <div class="sim-row"><select id="sim_from" aria-label="client phone"></select></div>
 <div class="sim-row"><input id="sim_text" placeholder="The client writes…" aria-label="client message"><button type="button" id="sim_send">Send</button></div>
 <div class="sim-row"><button type="button" id="sim_read">The client reads</button></div>
</div></div>
<script src="/demo/kommo/vendor/require.js"></script>
<script src="/demo/kommo/vendor/jquery.js"></script>
<script>
(function () {
  'use strict';
  var q = new URLSearchParams(location.search);
  var view = q.get('view') || 'lead';
  var userId = Number(q.get('user') || 501);
  var lang = q.get('lang') || 'en';
  var AREA = { lead: 'lcard', contact: 'ccard', company: 'comcard', settings: 'settings', advanced: 'advanced_settings' };
  var ELEMENT_TYPE = { lead: 2, contact: 1, company: 3 };
  var area = AREA[view] || 'dashboard';
  if (q.get('hostile') === '1') {
    // What a careless Kommo page (or another widget) might do to everything on the page.
    document.getElementById('hostile').textContent =
      '* { font-family: "Times New Roman", serif !important; color: red !important; letter-spacing: 1px !important; box-sizing: content-box !important }' +
      'button { background: yellow !important; border: 3px dashed blue !important; font-size: 22px !important; padding: 12px !important; border-radius: 0 !important }' +
      'div { line-height: 2.5 !important } input, textarea { background: #222 !important; font-size: 20px !important }' +
      'img { opacity: .3 !important } span { text-decoration: underline !important }';
  }
  var esc = function (s) { return String(s == null ? '' : s).replace(/[&<>"]/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]; }); };
  var link = function (params) {
    var p = new URLSearchParams(location.search);
    Object.keys(params).forEach(function (k) { if (params[k] == null) p.delete(k); else p.set(k, params[k]); });
    return '/demo/kommo?' + p.toString();
  };
  // A Kommo URL (https://sub.kommo.com/leads/detail/5) → the same card on this page.
  var localLink = function (href) {
    var m = /\\/(leads|contacts|companies)\\/detail\\/(\\d+)/.exec(href || '');
    if (!m) return href || null;
    return link({ view: { leads: 'lead', contacts: 'contact', companies: 'company' }[m[1]], id: m[2] });
  };
  window.__demo = { notifications: [], callbacks: [] };

  function boot(state) {
    var account = state.account;
    var me = account.users.filter(function (u) { return u.id === userId; })[0] || account.users[0];
    var cardType = ELEMENT_TYPE[view] ? view : null;
    var cardId = cardType ? Number(q.get('id') || (state.defaultCard.type === cardType ? state.defaultCard.id : 0)) : 0;
    document.getElementById('top_account').textContent = account.name + ' · ' + account.domain + ' · ' + me.name;
    var menu = [['lead', 'Lead'], ['contact', 'Contact'], ['settings', 'Settings'], ['advanced', 'InCRM page']];
    document.getElementById('left_menu').innerHTML = menu.map(function (m) {
      var params = { view: m[0], id: null };
      if (m[0] === 'lead') params.id = state.defaultCard.type === 'lead' ? state.defaultCard.id : null;
      return '<a class="' + (m[0] === view ? 'active' : '') + '" href="' + esc(link(params)) + '">' + m[1] + '</a>';
    }).join('');

    // ---- APP ------------------------------------------------------------------------------
    var constants = {
      account: { id: account.id, name: account.name, subdomain: account.subdomain, amojo_id: 'amojo-' + account.id },
      user: { id: me.id, name: me.name, login: 'user' + me.id + '@' + account.domain, amojo_id: 'amojo-user-' + me.id },
      user_rights: { is_admin: me.is_admin },
      managers: account.users.reduce(function (o, u) { o[u.id] = { id: u.id, title: u.name }; return o; }, {})
    };
    var showNotification = function (kind) {
      return function (p) {
        p = p || {};
        window.__demo.notifications.push({ kind: kind, header: p.header, text: p.text, link: p.link || null });
        var el = document.createElement('div');
        el.className = 'notification notification--' + kind;
        var href = localLink(p.link);
        el.innerHTML = (href ? '<a href="' + esc(href) + '">' : '<div>') + '<div class="notification__header">' + esc(p.header) + '</div><div class="notification__text">' + esc(p.text) + '</div>' + (href ? '</a>' : '</div>');
        document.getElementById('notifications').appendChild(el);
        setTimeout(function () { if (el.parentNode) el.parentNode.removeChild(el); }, 30000);
      };
    };
    window.APP = window.AMOCRM = {
      constant: function (name) { return constants[name]; },
      data: { current_card: cardType && cardId ? { id: cardId, element_type: ELEMENT_TYPE[cardType], model: null } : false, current_entity: cardType ? cardType + 's' : null, is_card: !!cardType },
      lang_id: lang,
      isCard: function () { return !!cardType; },
      getBaseEntity: function () { return cardType ? cardType + 's' : null; },
      getWidgetsArea: function () { return area; },
      notifications: { show_message: showNotification('message'), add_error: showNotification('error'), show_message_error: showNotification('error') },
      router: {
        navigate: function (url) {
          if (/^\\/settings\\/widgets\\//.test(url)) location.href = link({ view: 'advanced', id: null });
          else location.href = localLink(url) || url;
        }
      }
    };

    // ---- the page for this view ------------------------------------------------------------
    var work = document.getElementById('work');
    if (cardType) {
      work.innerHTML = '<div class="card-holder"><div class="card-fields" id="card_fields"></div><div class="feed"><h2>Feed</h2><div id="feed_notes"></div></div>' +
        '<div class="card-widgets" id="widgets_block"><h2>Widgets</h2></div></div>';
      var loadCard = function () {
        return $.getJSON('/demo/kommo/api/card', { type: cardType, id: cardId }).then(function (r) {
          document.getElementById('top_title').textContent = r.card.name;
          document.getElementById('card_fields').innerHTML = '<h1>' + esc(r.card.name) + '</h1>' +
            r.card.fields.map(function (f) { return '<div class="field"><span>' + esc(f.label) + '</span><span>' + esc(f.value) + '</span></div>'; }).join('') +
            '<div class="linked"><h2 style="margin-top:16px">Linked</h2>' + r.card.links.map(function (l) { return '<a href="' + esc(link({ view: l.type, id: l.id })) + '">' + esc(l.type + ': ' + l.name) + '</a>'; }).join('') + '</div>' +
            '<div class="host-probe"><p class="host-text">Host text</p><button class="host-button" type="button">Host button</button></div>';
          var html = r.notes.map(function (n) {
            return '<div class="feed-note" data-note-id="' + n.id + '"><small>' + esc(new Date(n.createdAt * 1000).toLocaleString()) + ' · ' + esc(n.noteType) + '</small>' + esc(n.text) + '</div>';
          }).join('') || '<div class="feed-note"><small>No notes yet</small></div>';
          var feed = document.getElementById('feed_notes');
          if (feed.innerHTML !== html) feed.innerHTML = html;
        });
      };
      loadCard().always(function () { setInterval(loadCard, 1500); });
    } else if (view === 'settings') {
      work.innerHTML = '<div class="settings-page"><div class="modal widget-settings"><div class="widget-settings__desc-space" id="desc_space"></div>' +
        '<div class="modal-body"><div class="widget_settings_block" id="widget_settings_block_' + state.widget.code + '"><div class="widget_settings_block__fields" id="settings_fields"></div></div></div></div></div>';
    } else if (view === 'advanced') {
      work.innerHTML = '<div id="work_area"><div class="content__top__preset"><h1 id="advanced_title"></h1></div><div id="work-area-' + state.widget.code + '"></div></div>';
    } else {
      work.innerHTML = '<div class="settings-page"><h1>Dashboard</h1></div>';
    }
    // The host's own elements, measured before the widget loads (the isolation test compares).
    var probe = function () {
      var b = document.querySelector('.kommo-top b');
      var cs = getComputedStyle(b);
      return { fontFamily: cs.fontFamily, color: cs.color, fontSize: cs.fontSize, lineHeight: cs.lineHeight, headStyles: document.head.querySelectorAll('style,link[rel=stylesheet]').length };
    };
    window.__demo.hostBaseline = probe();
    simulator(state, me);
    window.__demo.probe = probe;

    // ---- the widget object Kommo builds, then extends with script.js ----------------------
    var path = state.widget.path;
    var settings = { widget_code: state.widget.code, path: path, version: state.widget.version, active: 'Y', server_url: location.origin };
    $.getJSON(path + '/i18n/' + lang + '.json').then(function (langs) {
      var base = {
        langs: langs,
        params: { widget_code: state.widget.code, path: path, version: state.widget.version, status: 'installed' },
        system: function () { return { area: area, amouser_id: String(me.id), amouser: constants.user.login, amohash: 'demo', subdomain: account.subdomain, domain: account.domain }; },
        get_settings: function () { return settings; },
        set_settings: function (o) { $.extend(settings, o); },
        get_version: function () { return state.widget.version; },
        get_install_status: function () { return 'installed'; },
        set_status: function () {},
        set_lang: function (l) { this.langs = l; },
        i18n: function (key) { return langs[key]; },
        render: function (data, params) { return typeof data === 'string' ? data : (data && data.data) || ''; },
        render_template: function (o) {
          o = o || {};
          var block = $('<div class="card-widgets__widget card-widgets__widget-' + state.widget.code + '">' +
            '<div class="card-widgets__widget__caption ' + esc((o.caption && o.caption.class_name) || '') + '">' + esc(langs.widget && langs.widget.name) + '</div>' +
            '<div class="card-widgets__widget__body"></div></div>');
          block.find('.card-widgets__widget__body').html(o.body || o.render || '');
          $('#widgets_block').append(block);
        },
        // Kommo's proxy: the backend mints a one-time JWT for this user and sends it as X-Auth-Token.
        $authorizedAjax: function (opts) {
          return $.ajax({ url: '/demo/kommo/api/jwt?user=' + me.id, method: 'POST', dataType: 'json' }).then(function (r) {
            return $.ajax($.extend(true, {}, opts, { headers: { 'X-Auth-Token': r.jwt } }));
          });
        },
        crm_post: function (url, data, cb, type) { return $.post(url, data, cb, type); },
        add_action: function () {}, add_source: function () {}, list_selected: function () { return { selected: [], summary: {} }; },
        widgetsOverlay: function () {}, listenSocketChannel: function () {}
      };
      if (view === 'settings') {
        document.getElementById('desc_space').innerHTML = '<img src="' + esc(path) + '/images/logo_main.png" width="200" alt=""><h2>' + esc(langs.widget.name) + '</h2><p>' + esc(String(langs.widget.description).replace('#HOST#', 'Kommo')) + '</p>';
        document.getElementById('settings_fields').innerHTML = '<div class="widget_settings_block__item_field"><label>' + esc(langs.settings && langs.settings.server_url) + '</label><input name="server_url" value="' + esc(settings.server_url) + '"></div>';
      }
      if (view === 'advanced') document.getElementById('advanced_title').textContent = langs.advanced.title;
      require([path + '/script.js?v=' + encodeURIComponent(state.widget.version)], function (Widget) {
        var widget = Object.create(base);
        widget = Widget.call(widget) || widget;
        window.__demo.widget = widget;
        var cb = widget.callbacks;
        var call = function (name, arg) {
          var out = cb[name] ? cb[name](arg) : undefined;
          window.__demo.callbacks.push({ name: name, result: out });
          return out;
        };
        // Kommo's order: render first; init and bind_actions only when render returned true.
        if (call('render') === true) {
          call('init');
          call('bind_actions');
        }
        if (view === 'settings') call('settings', $('.modal-body'));
        if (view === 'advanced') call('advancedSettings');
        window.__demo.loaded = true;
      }, function (err) { window.__demo.error = String(err); });
    });
  }
  // ---- the phone simulator (not part of Kommo: the demo's stand-in for phones) --------------
  function simulator(state, me) {
    var box = document.getElementById('phone_sim');
    if (localStorage.getItem('incrm_demo_sim') === 'open') box.classList.add('open');
    document.getElementById('sim_toggle').onclick = function () {
      box.classList.toggle('open');
      localStorage.setItem('incrm_demo_sim', box.classList.contains('open') ? 'open' : 'closed');
    };
    var token = null;
    var bearer = function () {
      if (token) return $.Deferred().resolve(token).promise();
      return $.ajax({ url: '/demo/kommo/api/jwt?user=' + me.id, method: 'POST', dataType: 'json' })
        .then(function (r) { return $.ajax({ url: '/kommo/token', method: 'POST', dataType: 'json', headers: { 'X-Auth-Token': r.jwt } }); })
        .then(function (r) { token = r.token; setTimeout(function () { token = null; }, 20 * 60000); return token; });
    };
    var sim = function (method, p, body) {
      return $.ajax({ url: '/api/v1/simulator' + p, method: method, contentType: 'application/json', data: body ? JSON.stringify(body) : undefined });
    };
    var from = document.getElementById('sim_from');
    from.innerHTML = state.clientPhones.map(function (p) { return '<option>' + esc(p) + '</option>'; }).join('');
    var nextPhone = function (numbers) {
      for (var i = 1; ; i++) {
        var p = '+1555000' + String(1000 + i);
        if (!numbers.some(function (n) { return n.phone === p; })) return p;
      }
    };
    var refresh = function () {
      bearer().then(function (t) { return $.ajax({ url: '/api/v1/numbers', headers: { Authorization: 'Bearer ' + t }, dataType: 'json' }); }).then(function (r) {
        var numbers = r.items || r;
        document.getElementById('sim_numbers').innerHTML = numbers.map(function (n) {
          return '<div class="sim-row"><span>' + esc(n.phone || 'number #' + n.id) + ' · ' + esc(n.state) + '</span>' +
            (n.state === 'qr' ? '<button type="button" data-scan="' + n.id + '" data-phone="' + esc(nextPhone(numbers)) + '">Scan the QR</button>' : '') + '</div>';
        }).join('') || '<div class="sim-row">No WhatsApp number yet: connect one in Settings.</div>';
        var to = document.getElementById('sim_to');
        var ready = numbers.filter(function (n) { return n.state === 'ready'; }).map(function (n) { return n.phone; });
        var html = ready.map(function (p) { return '<option>' + esc(p) + '</option>'; }).join('');
        if (to.getAttribute('data-html') !== html) { to.innerHTML = html; to.setAttribute('data-html', html); }
      }, function () { token = null; });
    };
    document.getElementById('sim_numbers').onclick = function (e) {
      var b = e.target.closest('[data-scan]');
      if (b) sim('POST', '/numbers/' + b.getAttribute('data-scan') + '/scan', { phone: b.getAttribute('data-phone') }).always(refresh);
    };
    document.getElementById('sim_send').onclick = function () {
      var text = document.getElementById('sim_text');
      if (!text.value || !document.getElementById('sim_to').value) return;
      sim('POST', '/inbound', { to: document.getElementById('sim_to').value, from: from.value, name: 'Client', text: text.value }).then(function () { text.value = ''; });
    };
    document.getElementById('sim_read').onclick = function () { sim('POST', '/phones/' + encodeURIComponent(from.value) + '/read', {}); };
    refresh();
    setInterval(refresh, 2000);
  }
  window.__demo.simulator = simulator;

  $.getJSON('/demo/kommo/api/state').then(boot, function (x) { document.getElementById('work').textContent = 'Demo state unavailable: ' + x.status; });
})();
</script>
</body></html>
`;
