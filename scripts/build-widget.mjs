// The widget bundles (dist/widget/): kommo.js (UMD: RequireJS `define` + window.InCRMWidget),
// bitrix24.js and standalone.js (IIFE, read window.INCRM_BOOT). Checks the gzip budgets of the
// issue: a bundle over budget fails the build.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { build } from 'esbuild';

export const BUDGETS = { 'kommo.js': 45 * 1024, 'bitrix24.js': 110 * 1024 };

const common = {
  bundle: true,
  minify: true,
  target: ['es2020'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  loader: { '.css': 'text' },
  legalComments: 'none',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
  write: false,
};

/** Builds the three bundles into `outDir`; returns [{ file, raw, gzip, budget }]. */
export async function buildWidget({ root = process.cwd(), outDir = path.join(root, 'dist', 'widget') } = {}) {
  const src = (f) => path.join(root, 'widget', 'src', 'hosts', f);
  const results = await Promise.all([
    build({
      ...common,
      entryPoints: [src('kommo.ts')],
      format: 'iife',
      globalName: '__incrm',
      // UMD around the IIFE: an anonymous AMD module when RequireJS loads it (Kommo's page),
      // and window.InCRMWidget in any case.
      banner: { js: '(function(){' },
      footer: { js: 'if(typeof window!=="undefined")window.InCRMWidget=__incrm;if(typeof define==="function"&&define.amd)define(function(){return __incrm});})();' },
    }).then((r) => ['kommo.js', r]),
    build({ ...common, entryPoints: [src('bitrix24.ts')], format: 'iife', mainFields: ['browser', 'module', 'main'], conditions: ['browser', 'import'] }).then((r) => ['bitrix24.js', r]),
    build({ ...common, entryPoints: [src('standalone.ts')], format: 'iife' }).then((r) => ['standalone.js', r]),
  ]);
  fs.mkdirSync(outDir, { recursive: true });
  const out = [];
  for (const [file, r] of results) {
    const code = r.outputFiles[0].contents;
    fs.writeFileSync(path.join(outDir, file), code);
    out.push({ file, raw: code.length, gzip: zlib.gzipSync(code, { level: 9 }).length, budget: BUDGETS[file] ?? null });
  }
  return out;
}

export function sizeTable(rows) {
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  return rows.map((r) => `  ${r.file.padEnd(15)} ${kb(r.raw).padStart(9)} raw ${kb(r.gzip).padStart(8)} gzip${r.budget ? `  (budget ${kb(r.budget)} gzip: ${r.gzip <= r.budget ? 'ok' : 'OVER'})` : ''}`).join('\n');
}

export function overBudget(rows) {
  return rows.filter((r) => r.budget !== null && r.gzip > r.budget);
}
