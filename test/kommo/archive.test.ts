import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import zlib from 'node:zlib';
import { expect } from 'chai';
import JSZip from 'jszip';

// The archive as Kommo's upload checks it, and script.js run the way Kommo runs it: an AMD module
// inside Kommo's page (emulated here: a small RequireJS-style loader in a vm context, a jQuery
// stand-in and Kommo's widget methods), whose callbacks must return true.

const REQUIRED_IMAGES: Record<string, [number, number]> = {
  'images/logo.png': [130, 100],
  'images/logo_main.png': [400, 272],
  'images/logo_medium.png': [240, 84],
  'images/logo_min.png': [84, 84],
  'images/logo_small.png': [108, 108],
};
const LOCALES = ['en', 'ru', 'es', 'pt'];
const LOCATIONS = ['lcard-1', 'ccard-1', 'comcard-1', 'settings', 'advanced_settings', 'everywhere'];

/** Decodes an 8-bit RGBA/RGB PNG enough to tell real artwork from a blank square. */
function pngFacts(buf: Buffer) {
  expect(buf.subarray(0, 8).toString('hex')).to.equal('89504e470d0a1a0a');
  let off = 8;
  let width = 0, height = 0, colorType = 0, bitDepth = 0;
  const idat: Buffer[] = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('ascii', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') [width, height, bitDepth, colorType] = [data.readUInt32BE(0), data.readUInt32BE(4), data[8]!, data[9]!];
    if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  const colours = new Set<string>();
  if (bitDepth === 8 && (colorType === 6 || colorType === 2)) {
    const bpp = colorType === 6 ? 4 : 3;
    const raw = zlib.inflateSync(Buffer.concat(idat));
    const stride = width * bpp;
    let prev = Buffer.alloc(stride);
    for (let y = 0; y < height; y++) {
      const f = raw[y * (stride + 1)]!;
      const row = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
      for (let i = 0; i < stride; i++) {
        const a = i >= bpp ? row[i - bpp]! : 0, b = prev[i]!, c = i >= bpp ? prev[i - bpp]! : 0;
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        const pred = f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : f === 4 ? (pa <= pb && pa <= pc ? a : pb <= pc ? b : c) : 0;
        row[i] = (row[i]! + pred) & 0xff;
      }
      for (let x = 0; x < width; x++) colours.add(row.subarray(x * bpp, x * bpp + bpp).toString('hex'));
      prev = row;
    }
  }
  return { width, height, colours: colours.size };
}

type Any = any;
/** A value every property access and call of which returns itself: stands in for DOM and jQuery objects. */
const anything: Any = new Proxy(function () {}, {
  get: (_t, k) => (k === 'then' ? undefined : k === Symbol.toPrimitive ? () => '' : k === 'length' ? 0 : anything),
  apply: () => anything,
  construct: () => anything,
});

function deferred(value: unknown) {
  const p: Any = Promise.resolve(value);
  p.done = (cb: (v: unknown) => void) => (p.then(cb), p);
  p.fail = () => p;
  p.always = (cb: () => void) => (p.then(cb), p);
  return p;
}

/** Loads script.js like Kommo does and returns the widget object with its callbacks. */
async function loadWidget(files: Map<string, string>, area: string) {
  const ajax: Array<Record<string, unknown>> = [];
  const templates: unknown[] = [];
  const errors: unknown[] = [];
  const registry = new Map<string, unknown>();
  const langs = JSON.parse(files.get('i18n/en.json')!);
  const basePath = 'https://kommo.example.test/upl/incrm_whatsapp/widget';
  const $: Any = Object.assign((..._args: unknown[]) => anything, {
    ajax: (o: Record<string, unknown>) => (ajax.push(o), deferred({})),
    Deferred: () => anything,
    extend: Object.assign,
    each: (o: Record<string, unknown>, fn: (k: string, v: unknown) => void) => Object.entries(o ?? {}).forEach(([k, v]) => fn(k, v)),
    isFunction: (f: unknown) => typeof f === 'function',
    fn: {},
  });
  const builtins: Record<string, unknown> = {
    jquery: $,
    underscore: { each: () => undefined, extend: Object.assign, bind: (f: () => void) => f },
    twigjs: { twig: () => ({ render: () => '' }) },
    'lib/components/base/modal': function Modal() {},
  };
  let lastDefined: unknown = undefined;
  const ctx: Any = vm.createContext({
    console,
    setTimeout,
    clearTimeout,
    setInterval: () => 0,
    clearInterval: () => undefined,
    Promise,
    URL,
    document: anything,
    navigator: { userAgent: 'kommo-emulator', language: 'en' },
    location: { origin: 'https://acme.kommo.com', href: 'https://acme.kommo.com/leads/detail/1' },
    localStorage: { getItem: () => null, setItem: () => undefined, removeItem: () => undefined },
    EventSource: function () { return anything; },
    fetch: () => deferred({ ok: true, json: async () => ({}) }),
    APP: { constant: () => ({ id: 1, amojo_id: 'x' }), data: { current_card: { id: 1, element_type: 2 } }, isCard: () => true, notifications: anything, lang_id: 'en' },
  });
  ctx.window = ctx;
  ctx.self = ctx;
  const resolve = async (dep: string): Promise<unknown> => {
    if (dep in builtins) return builtins[dep];
    if (registry.has(dep)) return registry.get(dep);
    const rel = dep.replace(basePath + '/', '').replace(/^\.\//, '').replace(/\?.*$/, '');
    const file = files.get(rel) ?? files.get(rel + '.js');
    if (file === undefined) return anything; // an unknown host module: Kommo provides it
    lastDefined = undefined;
    vm.runInContext(file, ctx, { filename: rel });
    registry.set(dep, lastDefined ?? ctx.module?.exports ?? anything);
    return registry.get(dep);
  };
  const pending: Promise<void>[] = [];
  const define: Any = (...args: unknown[]) => {
    const factory = args[args.length - 1];
    const deps = (args.find((a) => Array.isArray(a)) as string[] | undefined) ?? [];
    if (typeof factory !== 'function') {
      lastDefined = factory;
      return;
    }
    // Synchronous when every dependency is already known (jquery, …), as RequireJS would be after load.
    const known = deps.every((d) => d in builtins || registry.has(d));
    if (known) lastDefined = (factory as (...a: unknown[]) => unknown)(...deps.map((d) => builtins[d] ?? registry.get(d)));
    else pending.push(Promise.all(deps.map(resolve)).then((mods) => void (lastDefined = (factory as (...a: unknown[]) => unknown)(...mods))));
  };
  define.amd = { jQuery: true };
  const require: Any = (deps: string[] | string, cb?: (...m: unknown[]) => void, errb?: (e: unknown) => void) => {
    if (typeof deps === 'string') return builtins[deps] ?? registry.get(deps) ?? anything;
    Promise.all(deps.map(resolve)).then((m) => cb?.(...m), (e) => (errors.push(e), errb?.(e)));
    return undefined;
  };
  ctx.define = define;
  ctx.require = require;
  ctx.requirejs = require;
  vm.runInContext(files.get('script.js')!, ctx, { filename: 'script.js' });
  await Promise.all(pending);
  const Ctor = lastDefined as Any;
  expect(typeof Ctor, 'script.js defines a widget constructor').to.equal('function');
  const base: Any = {
    system: () => ({ area, amouser_id: '501', amouser: 'ana@example.test', subdomain: 'acme', domain: 'acme.kommo.com' }),
    langs,
    i18n: (k: string) => langs[k],
    params: { widget_code: 'incrm_whatsapp', path: basePath, version: '1.0.0', status: 'installed' },
    get_settings: () => ({ widget_code: 'incrm_whatsapp', path: basePath, version: '1.0.0', active: 'Y' }),
    set_settings: () => undefined,
    get_version: () => '1.0.0',
    get_install_status: () => 'installed',
    set_status: () => undefined,
    set_lang: () => undefined,
    render_template: (o: unknown) => void templates.push(o),
    render: () => '',
    $authorizedAjax: (o: Record<string, unknown>) => (ajax.push(o), deferred({ token: 'v1.x.y', expiresAt: new Date(Date.now() + 3600_000).toISOString() })),
    crm_post: () => undefined,
    add_action: () => undefined,
    add_source: () => undefined,
    list_selected: () => ({ selected: [], summary: {} }),
    listenSocketChannel: () => undefined,
  };
  const widget = Object.create(base);
  const out = Ctor.call(widget) ?? widget;
  return { widget: out as Any, ajax, templates, errors };
}

describe('Kommo widget archive', function () {
  this.timeout(30_000);
  let zip: JSZip;
  const files = new Map<string, string>();
  let raw: Map<string, Buffer>;
  before(async () => {
    const { packKommoWidget } = await import('../../scripts/kommo-widget.mjs');
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'incrm-zip-')), 'widget.zip');
    await packKommoWidget({ out });
    zip = await JSZip.loadAsync(fs.readFileSync(out));
    raw = new Map();
    for (const [name, entry] of Object.entries(zip.files)) {
      if (entry.dir) continue;
      const buf = await entry.async('nodebuffer');
      raw.set(name, buf);
      if (/\.(js|json|css|twig|html)$/.test(name)) files.set(name, buf.toString('utf8'));
    }
  });

  it('has manifest.json at the root with the required fields, locales and locations', () => {
    expect(raw.has('manifest.json'), 'manifest at the root, not in a folder').to.equal(true);
    const m = JSON.parse(files.get('manifest.json')!);
    expect(m.widget).to.include({ name: 'widget.name', description: 'widget.description', short_description: 'widget.short_description', interface_version: 2 });
    expect(m.widget.version).to.match(/^\d+\.\d+\.\d+$/);
    expect(m.widget.installation).to.be.a('boolean');
    expect(typeof m.widget.init_once).to.equal('boolean');
    expect(m.widget.support.link || m.widget.support.email).to.be.a('string');
    expect(m.widget.locale).to.have.members(LOCALES);
    expect(m.locations).to.have.members(LOCATIONS);
    for (const card of ['lcard', 'ccard', 'comcard']) expect(m.locations.includes(`${card}-0`) && m.locations.includes(`${card}-1`)).to.equal(false);
    if (m.locations.includes('advanced_settings')) expect(m.advanced?.title).to.be.a('string');
  });

  it('has every locale, in UTF-8 without BOM and with \\n line ends, translating every key the manifest uses', () => {
    const m = JSON.parse(files.get('manifest.json')!);
    const keys = ['widget.name', 'widget.description', 'widget.short_description', m.advanced?.title, ...Object.values(m.settings ?? {}).map((s: Any) => s.name)].filter(Boolean);
    const shape = (o: Any, p = ''): string[] => Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' ? shape(v, `${p}${k}.`) : [`${p}${k}`]));
    const enKeys = shape(JSON.parse(files.get('i18n/en.json')!)).sort();
    for (const l of m.widget.locale as string[]) {
      const buf = raw.get(`i18n/${l}.json`);
      expect(buf, `i18n/${l}.json`).to.not.equal(undefined);
      expect(buf!.subarray(0, 3).toString('hex')).to.not.equal('efbbbf');
      expect(buf!.includes(0x0d), `${l}: CR line ends`).to.equal(false);
      const doc = JSON.parse(buf!.toString('utf8'));
      for (const k of keys) {
        const v = k.split('.').reduce((o: Any, part: string) => o?.[part], doc);
        expect(v, `${l}: ${k}`).to.be.a('string').and.not.equal('');
      }
      expect(shape(doc).sort(), `${l} has the same keys as en`).to.deep.equal(enKeys);
    }
  });

  it('has the images at Kommo sizes, each under 300 KB and not blank', () => {
    for (const [name, [w, h]] of Object.entries(REQUIRED_IMAGES)) {
      const buf = raw.get(name);
      expect(buf, name).to.not.equal(undefined);
      expect(buf!.length, `${name} weight`).to.be.below(300 * 1024);
      const f = pngFacts(buf!);
      expect([f.width, f.height], name).to.deep.equal([w, h]);
      expect(f.colours, `${name}: real artwork`).to.be.greaterThan(8);
    }
  });

  it('has a script.js that follows the marketplace rules', () => {
    const js = files.get('script.js')!;
    expect(js).to.match(/\bdefine\s*\(/);
    expect(js).to.not.match(/\beval\s*\(|\bnew Function\s*\(|[^.\w]alert\s*\(|[^.\w]confirm\s*\(/);
    expect(js).to.not.match(/createElement\(\s*['"]script['"]\s*\)/);
    expect(js).to.not.match(/async\s*:\s*false/);
  });

  for (const area of ['lcard', 'ccard', 'comcard', 'settings', 'advanced_settings', 'everywhere']) {
    it(`loads under a RequireJS emulator and its callbacks return true (area ${area})`, async () => {
      const { widget, errors } = await loadWidget(files, area);
      const cb = widget.callbacks;
      expect(cb, 'callbacks').to.be.an('object');
      expect(cb.render(), 'render').to.equal(true);
      expect(cb.init(), 'init').to.equal(true);
      expect(cb.bind_actions(), 'bind_actions').to.equal(true);
      if (area === 'settings') cb.settings?.(anything);
      if (area === 'advanced_settings') cb.advancedSettings?.();
      expect(cb.onSave({ active: 'Y', fields: {} }), 'onSave').to.equal(true);
      cb.destroy?.();
      await new Promise((r) => setTimeout(r, 50));
      expect(errors, 'module load errors').to.deep.equal([]);
    });
  }
});
