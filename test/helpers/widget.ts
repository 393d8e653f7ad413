import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.join(ROOT, 'dist', 'widget');
let built: Promise<void> | null = null;

function newestMtime(dir: string): number {
  let max = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    max = Math.max(max, e.isDirectory() ? newestMtime(full) : fs.statSync(full).mtimeMs);
  }
  return max;
}

/**
 * Builds dist/widget (esbuild, about a second) when it is missing or older than widget/src, so
 * browser tests and the bench always run the current bundles even without `npm run build`.
 */
export function ensureWidgetBuilt(): Promise<void> {
  built ??= (async () => {
    const files = ['kommo.js', 'bitrix24.js', 'standalone.js'].map((f) => path.join(OUT, f));
    const oldest = files.every((f) => fs.existsSync(f)) ? Math.min(...files.map((f) => fs.statSync(f).mtimeMs)) : 0;
    if (oldest > newestMtime(path.join(ROOT, 'widget', 'src'))) return;
    const { buildWidget } = await import('../../scripts/build-widget.mjs');
    await buildWidget({ root: ROOT });
  })();
  return built;
}
