// InCRM for Kommo: the AMD shell Kommo loads into its own page.
//
// It mounts the InCRM app (widget/kommo.js, shipped in this archive) into a shadow root — so
// neither Kommo's CSS nor ours leaks across — in three places: the right column of lead, contact
// and company cards (chat panel), the widget's settings modal and its advanced settings page
// (numbers and options). Calls to the InCRM server carry Kommo's X-Auth-Token through
// self.$authorizedAjax once, to get the server's own bearer token. On every page (`everywhere`)
// it polls the user's alert queue and shows new-message alerts as Kommo notifications that open
// the card. Every callback returns true, as Kommo requires.
define(['jquery'], function ($) {
  'use strict';

  // Replaced by the packer with PUBLIC_URL at build time; the admin may override it in the
  // widget settings (`server_url`) for a self-hosted server.
  var BUILT_SERVER = '__INCRM_SERVER__';
  var BUNDLE = '/widget/kommo.js';
  var ROOT_CLASS = 'incrm-whatsapp__root';
  var ALERT_POLL_MS = 10000;
  var LANGS = ['en', 'ru', 'es', 'pt'];
  var AREAS = { lcard: 'lead', ccard: 'contact', comcard: 'company' };
  // Inside the shadow root; `!important` from the inside beats the host page's `!important`
  // on the shadow host (the one element Kommo's CSS can reach), and resets what it inherits.
  var BASE_CSS =
    ':host{all:initial !important;display:block !important;contain:content;' +
    'font:14px/1.4 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif !important;' +
    'color:#1f2d3d !important;text-align:left !important}' +
    '.incrm-shell__msg{padding:12px;font-size:13px;color:#6b7785}' +
    '.incrm-shell__msg button{margin-top:8px;font:inherit;cursor:pointer}';

  return function () {
    var self = this;
    var tokenCache = null; // {token, expiresAt(ms), promise}
    var isAdmin = false; // as the server read it from Kommo's token
    var appPromise = null;
    var mounted = []; // {el, dispose}
    var alertTimer = null;
    var watcher = null; // MutationObserver: unmounts an app whose element left the page

    function settings() {
      try {
        return self.get_settings() || {};
      } catch (e) {
        return {};
      }
    }
    function widgetCode() {
      return settings().widget_code || (self.params && self.params.widget_code) || 'incrm_whatsapp';
    }
    function serverUrl() {
      var s = String(settings().server_url || '').trim();
      if (!s && BUILT_SERVER.indexOf('__') !== 0) s = BUILT_SERVER;
      return s.replace(/\/+$/, '');
    }
    function basePath() {
      return String(settings().path || (self.params && self.params.path) || '').replace(/\/+$/, '');
    }
    function version() {
      try {
        return self.get_version() || settings().version || '';
      } catch (e) {
        return settings().version || '';
      }
    }
    function area() {
      var sys = self.system() || {};
      return sys.area || '';
    }
    function i18n(group, key, fallback) {
      try {
        var g = self.i18n(group);
        return (g && g[key]) || fallback;
      } catch (e) {
        return fallback;
      }
    }
    function lang() {
      var sys = self.system() || {};
      var l = sys.lang || (window.APP && (APP.lang_id || APP.lang)) || document.documentElement.lang || 'en';
      l = String(l).slice(0, 2).toLowerCase();
      return LANGS.indexOf(l) >= 0 ? l : 'en';
    }
    function constant(name) {
      try {
        return (window.APP && APP.constant && APP.constant(name)) || null;
      } catch (e) {
        return null;
      }
    }
    function entity() {
      var type = AREAS[area()];
      var card = window.APP && APP.data && APP.data.current_card;
      if (!type || !card || !card.id) return null; // a new, unsaved card has id 0
      return { type: type, id: String(card.id) };
    }

    // The server's bearer token, from Kommo's one-time X-Auth-Token; reused until shortly
    // before it expires, and one request at a time (several mounts share one exchange).
    function getToken(force) {
      var now = Date.now();
      if (!force && tokenCache && tokenCache.token && tokenCache.expiresAt - 60000 > now) {
        return Promise.resolve({ token: tokenCache.token, expiresAt: new Date(tokenCache.expiresAt).toISOString() });
      }
      if (tokenCache && tokenCache.promise) return tokenCache.promise;
      var server = serverUrl();
      if (!server) return Promise.reject(new Error('server_url'));
      var p = new Promise(function (resolve, reject) {
        var req = self.$authorizedAjax({ url: server + '/kommo/token', method: 'POST', type: 'POST', dataType: 'json' });
        var ok = function (body) {
          if (!body || !body.token) {
            tokenCache = null;
            return reject(new Error('token'));
          }
          isAdmin = !!body.admin;
          tokenCache = { token: body.token, expiresAt: Date.parse(body.expiresAt) || now + 600000, promise: null };
          resolve({ token: body.token, expiresAt: body.expiresAt });
        };
        var fail = function (xhr) {
          tokenCache = null;
          var err = new Error('token');
          err.status = xhr && xhr.status;
          reject(err);
        };
        if (req && typeof req.done === 'function') req.done(ok).fail(fail);
        else if (req && typeof req.then === 'function') req.then(ok, fail);
        else fail(null);
      });
      tokenCache = { token: null, expiresAt: 0, promise: p };
      return p;
    }

    // The app bundle from this archive, through Kommo's RequireJS (no <script> injection).
    function loadApp() {
      if (!appPromise) {
        appPromise = new Promise(function (resolve, reject) {
          var v = version();
          window.require([basePath() + BUNDLE + (v ? '?v=' + encodeURIComponent(v) : '')], resolve, function (err) {
            appPromise = null;
            reject(err);
          });
        });
      }
      return appPromise;
    }

    function notify(title, text, link) {
      try {
        if (window.APP && APP.notifications && APP.notifications.show_message) {
          APP.notifications.show_message({ header: title, text: text, date: Math.floor(Date.now() / 1000), link: link || undefined });
        }
      } catch (e) {
        /* a notification is best effort */
      }
    }

    function openSettings() {
      var url = '/settings/widgets/' + widgetCode() + '/';
      if (window.APP && APP.router && typeof APP.router.navigate === 'function') APP.router.navigate(url, { trigger: true });
      else window.location.href = url;
    }

    function shadowOf(el) {
      var root = el.shadowRoot || el.attachShadow({ mode: 'open' });
      if (!root.querySelector('style[data-incrm-base]')) {
        var style = document.createElement('style');
        style.setAttribute('data-incrm-base', '');
        style.textContent = BASE_CSS;
        root.appendChild(style);
      }
      return root;
    }

    function showMessage(root, text, retry) {
      var box = root.querySelector('.incrm-shell__msg');
      if (!box) {
        box = document.createElement('div');
        box.className = 'incrm-shell__msg';
        root.appendChild(box);
      }
      box.textContent = text;
      if (retry) {
        var b = document.createElement('button');
        b.type = 'button';
        b.textContent = '↻';
        b.onclick = retry;
        box.appendChild(b);
      }
      return box;
    }

    function mountInto(el, view) {
      if (!el || el.getAttribute('data-incrm-mounted') === view) return;
      el.setAttribute('data-incrm-mounted', view);
      var root = shadowOf(el);
      var msg = showMessage(root, i18n('panel', 'loading', 'Loading…'));
      var attempt = function () {
        Promise.all([loadApp(), getToken()])
          .then(function (r) {
            var app = r[0];
            if (!attached(el)) {
              // The modal or card closed while the app loaded: nothing to mount into.
              el.removeAttribute('data-incrm-mounted');
              return;
            }
            if (msg.parentNode) msg.parentNode.removeChild(msg);
            var account = constant('account') || {};
            var user = constant('user') || {};
            var host = {
              lang: lang(),
              apiBase: serverUrl(),
              getToken: getToken,
              entity: view === 'panel' ? entity() : null,
              admin: isAdmin,
              account: { id: account.id, subdomain: (self.system() || {}).subdomain },
              user: { id: user.id || (self.system() || {}).amouser_id },
              // No `notify`: Kommo's own notifications for new messages come from the alert queue
              // (polled on every page, for the users the portal's settings name); the panel adding
              // its own would show each message twice. The panel still beeps.
              fitHeight: function () {},
              openSettings: openSettings
            };
            var handle = (app.mount || (app.default && app.default.mount))(root, host, view);
            mounted.push({ el: el, dispose: handle });
            watchDetached();
          })
          .catch(function (err) {
            var text =
              err && err.message === 'server_url'
                ? i18n('panel', 'server_unreachable', 'InCRM server cannot be reached')
                : err && err.status === 403
                  ? i18n('panel', 'not_installed', 'Finish the installation in Settings → Integrations')
                  : i18n('panel', 'server_unreachable', 'InCRM server cannot be reached');
            msg = showMessage(root, text, function () {
              msg = showMessage(root, i18n('panel', 'loading', 'Loading…'));
              attempt();
            });
          });
      };
      attempt();
    }

    // Kommo inserts render_template's markup itself; wait for it to be in the page.
    function whenElement(find, cb) {
      var tries = 0;
      (function look() {
        var el = find();
        if (el) return cb(el);
        if (++tries < 100) setTimeout(look, 50);
      })();
    }

    function attached(el) {
      return document.documentElement.contains(el);
    }

    function unmountOne(m) {
      var d = m.dispose;
      try {
        if (typeof d === 'function') d();
        else if (d && typeof d.unmount === 'function') d.unmount();
      } catch (e) {
        /* already gone with the page */
      }
      m.el.removeAttribute('data-incrm-mounted');
    }

    function unmountAll() {
      for (var i = 0; i < mounted.length; i++) unmountOne(mounted[i]);
      mounted = [];
      if (watcher) watcher.disconnect();
      watcher = null;
    }

    // Kommo does not always call destroy: its settings modal, closed, just leaves the page. An app
    // whose element is no longer in the document is unmounted (its live stream closed with it).
    function watchDetached() {
      if (watcher || typeof MutationObserver === 'undefined') return;
      watcher = new MutationObserver(function () {
        var keep = [];
        for (var i = 0; i < mounted.length; i++) {
          if (attached(mounted[i].el)) keep.push(mounted[i]);
          else unmountOne(mounted[i]);
        }
        mounted = keep;
        if (!mounted.length && watcher) {
          watcher.disconnect();
          watcher = null;
        }
      });
      watcher.observe(document.documentElement, { childList: true, subtree: true });
    }

    // ---- alerts on every page ----------------------------------------------------------
    function cursorKey() {
      var account = constant('account') || {};
      var user = constant('user') || {};
      return 'incrm_alerts_after_' + (account.id || '') + '_' + (user.id || (self.system() || {}).amouser_id || '');
    }
    function pollInterval() {
      var v = 0;
      try {
        v = Number(window.localStorage.getItem('incrm_alert_poll_ms'));
      } catch (e) {
        v = 0;
      }
      return v >= 200 ? v : ALERT_POLL_MS;
    }
    function pollAlerts() {
      if (!serverUrl()) return;
      var stored = null;
      try {
        stored = window.localStorage.getItem(cursorKey());
      } catch (e) {
        stored = null;
      }
      var first = stored === null;
      getToken()
        .then(function (t) {
          return new Promise(function (resolve, reject) {
            $.ajax({
              url: serverUrl() + '/api/v1/kommo/alerts',
              method: 'GET',
              dataType: 'json',
              data: { after: first ? 0 : Number(stored) || 0, limit: 100 },
              headers: { Authorization: 'Bearer ' + t.token }
            }).then(resolve, reject);
          });
        })
        .then(function (body) {
          var items = (body && body.items) || [];
          var recent = Date.now() - 5 * 60000;
          for (var i = 0; i < items.length; i++) {
            // On a first visit, only what is fresh: not the whole history of the queue.
            if (first && Date.parse(items[i].createdAt) < recent) continue;
            notify(i18n('alerts', 'new_message', 'New WhatsApp message'), items[i].text, items[i].link);
          }
          try {
            window.localStorage.setItem(cursorKey(), String(body && body.last != null ? body.last : stored || 0));
          } catch (e) {
            /* private mode: alerts may repeat after a reload */
          }
        })
        .catch(function () {
          /* next round; the server may be restarting */
        });
    }
    function startAlerts() {
      if (alertTimer) return;
      var tick = function () {
        if (!document.hidden) pollAlerts();
        alertTimer = setTimeout(tick, pollInterval());
      };
      alertTimer = setTimeout(tick, 0);
    }

    this.callbacks = {
      // With init_once, Kommo calls render on every area change but init only once per page
      // load, so the card's panel is mounted from here.
      render: function () {
        var a = area();
        if (AREAS[a]) {
          self.render_template({
            caption: { class_name: 'incrm-whatsapp' },
            body: '<div class="' + ROOT_CLASS + '"></div>',
            render: ''
          });
          whenElement(
            function () {
              return $('.' + ROOT_CLASS).not('[data-incrm-mounted]').not('.' + ROOT_CLASS + '--settings').get(0);
            },
            function (el) {
              mountInto(el, 'panel');
            }
          );
        }
        return true;
      },
      init: function () {
        if (area() === 'advanced_settings') self.callbacks.advancedSettings();
        startAlerts();
        return true;
      },
      bind_actions: function () {
        return true;
      },
      settings: function ($modal) {
        // Before the install the account has no tokens on our server: nothing to show yet.
        var status = typeof self.get_install_status === 'function' ? self.get_install_status() : 'installed';
        var $block = $modal && $modal.find ? $modal.find('.widget_settings_block').first() : $();
        if (!$block.length) $block = $('#widget_settings_block_' + widgetCode());
        if (!$block.length && $modal && $modal.append) $block = $modal;
        if (!$block || !$block.length) return true;
        var el = $('<div class="' + ROOT_CLASS + ' ' + ROOT_CLASS + '--settings"></div>');
        $block.append(el);
        if (status === 'installed') mountInto(el.get(0), 'settings');
        else showMessage(shadowOf(el.get(0)), i18n('panel', 'not_installed', 'Install the widget first'));
        return true;
      },
      advancedSettings: function () {
        whenElement(
          function () {
            return $('#work-area-' + widgetCode()).get(0);
          },
          function (area) {
            var el = $(area).find('.' + ROOT_CLASS).get(0);
            if (!el) {
              el = $('<div class="' + ROOT_CLASS + ' ' + ROOT_CLASS + '--settings"></div>').appendTo(area).get(0);
            }
            mountInto(el, 'settings');
          }
        );
        return true;
      },
      onSave: function () {
        return true;
      },
      destroy: function () {
        unmountAll();
        return true;
      }
    };
    return this;
  };
});
