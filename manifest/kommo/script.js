// PLACEHOLDER AMD shell, kept minimal so the archive can be built and checked on this branch.
// The widget branch owns the real one (mounts the Preact panel into a shadow root and exchanges
// Kommo's X-Auth-Token at <server>/kommo/token); on merge, take that file instead of this one.
define(['jquery'], function ($) {
  'use strict';
  return function () {
    var self = this;
    this.callbacks = {
      render: function () {
        var area = self.system().area;
        if (area === 'lcard' || area === 'ccard' || area === 'comcard') {
          self.render_template({
            caption: { class_name: 'incrm-whatsapp' },
            body: '<div class="incrm-whatsapp__root">' + self.i18n('panel').loading + '</div>',
            render: ''
          });
        }
        return true;
      },
      init: function () {
        return true;
      },
      bind_actions: function () {
        return true;
      },
      settings: function () {
        return true;
      },
      advancedSettings: function () {
        return true;
      },
      onSave: function () {
        return true;
      },
      destroy: function () {
        return true;
      }
    };
    return this;
  };
});
