// Packs the Kommo widget archive: manifest.json, i18n/, images/, script.js from manifest/kommo/
// and the app bundle dist/widget/kommo.js as widget/kommo.js (script.js loads it from the
// archive through Kommo's RequireJS), at the archive's root, as Kommo expects of `widget.zip`
// (the folder's contents, not the folder). script.js gets the server address (`server` option,
// else PUBLIC_URL) in place of its __INCRM_SERVER__ marker; the admin can still override it in
// the widget settings. Deterministic: sorted names, fixed dates, so the same inputs give the
// same bytes.
import fs from 'node:fs';
import path from 'node:path';
import yazl from 'yazl';

const FIXED_DATE = new Date('2026-01-01T00:00:00Z');

function walk(dir, base = dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? walk(full, base) : [path.relative(base, full).split(path.sep).join('/')];
  });
}

/** Writes the archive to `out`; returns the list of entries. */
export async function packKommoWidget({ root = process.cwd(), out = path.join(root, 'dist', 'kommo-widget.zip'), server = process.env.PUBLIC_URL ?? '', requireBundle = false, app: appOpt } = {}) {
  const src = path.join(root, 'manifest', 'kommo');
  const bundle = path.join(root, 'dist', 'kommo');
  const app = appOpt ?? path.join(root, 'dist', 'widget', 'kommo.js');
  const entries = new Map();
  for (const rel of walk(src)) {
    if (rel === 'README.md' || rel.startsWith('.')) continue; // the admin guide is not part of the widget
    entries.set(rel, path.join(src, rel));
  }
  for (const rel of walk(bundle)) {
    // The manifest folder wins: the bundle must not replace manifest.json, i18n or script.js.
    if (!entries.has(rel)) entries.set(rel, path.join(bundle, rel));
  }
  if (fs.existsSync(app)) entries.set('widget/kommo.js', app);
  else if (requireBundle) throw new Error('kommo widget: dist/widget/kommo.js missing (build the widget first)');
  for (const need of ['manifest.json', 'script.js']) if (!entries.has(need)) throw new Error(`kommo widget: ${need} missing`);
  if (server && !/^https?:\/\/[^/\s'"\\]+$/.test(server.replace(/\/+$/, ''))) throw new Error(`kommo widget: server address ${server} must be http(s)://host[:port]`);
  const zip = new yazl.ZipFile();
  const names = [...entries.keys()].sort();
  for (const name of names) {
    const opts = { mtime: FIXED_DATE, mode: 0o100644 };
    if (name === 'script.js' && server) {
      const js = fs.readFileSync(entries.get(name), 'utf8').replace('__INCRM_SERVER__', server.replace(/\/+$/, ''));
      zip.addBuffer(Buffer.from(js, 'utf8'), name, opts);
    } else zip.addFile(entries.get(name), name, opts);
  }
  zip.end();
  fs.mkdirSync(path.dirname(out), { recursive: true });
  await new Promise((resolve, reject) => {
    const ws = fs.createWriteStream(out);
    zip.outputStream.pipe(ws).on('close', resolve).on('error', reject);
  });
  return names;
}
