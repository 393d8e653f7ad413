// `npm run build` (also run by `npm install` through `prepare`): bundles the server into dist/.
// Dependencies stay external (node_modules), so native modules like sqlite3 load as installed.
import { build } from 'esbuild';

const started = Date.now();
await build({
  entryPoints: { 'server/start': 'server/start.ts' },
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
console.log(`built dist/server/start.js in ${Date.now() - started} ms`);

// The widget bundles, with their sizes against the gzip budgets (over budget fails the build).
const { buildWidget, sizeTable, overBudget } = await import('./build-widget.mjs');
const sizes = await buildWidget();
console.log(`built dist/widget/:\n${sizeTable(sizes)}`);
const over = overBudget(sizes);
if (over.length) {
  console.error(`widget bundle over its gzip budget: ${over.map((r) => `${r.file} ${r.gzip} > ${r.budget} bytes`).join(', ')}`);
  process.exit(1);
}

// The Kommo widget archive (after the widget bundle: it includes dist/widget/kommo.js).
const { packKommoWidget } = await import('./kommo-widget.mjs');
const entries = await packKommoWidget();
console.log(`built dist/kommo-widget.zip (${entries.length} files)`);
