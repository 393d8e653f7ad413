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

// The Kommo widget archive (after the widget bundle, which it includes from dist/kommo/).
const { packKommoWidget } = await import('./kommo-widget.mjs');
const entries = await packKommoWidget();
console.log(`built dist/kommo-widget.zip (${entries.length} files)`);
