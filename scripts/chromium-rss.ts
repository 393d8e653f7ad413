// Memory of idle browsers started by the engine's launch code (one local page each, not WhatsApp
// Web: a lower bound for a real session). Usage: npx tsx scripts/chromium-rss.ts [count=1] [idleSeconds=10]
// Prints, per browser and in total: RSS summed over the process tree (what /metrics shows; counts
// shared pages once per process) and PSS (shared pages split between processes; the honest total).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromiumArgs, findChromium, launchChromium, processTree, procSnapshot, treePssBytes, treeRssBytes, type BrowserHandle } from '../server/adapters/whatsapp/wwebjs/chromium';

const MiB = 1024 * 1024;

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 1);
  const idleSeconds = Number(process.argv[3] ?? 10);
  const found = findChromium(process.env.CHROMIUM_PATH);
  if (found.path === null) throw new Error(found.problem);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'incrm-rss-'));
  const handles: BrowserHandle[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const h = await launchChromium({ executablePath: found.path, userDataDir: path.join(dir, `p${i}`), args: chromiumArgs() });
      const page = (await h.browser.pages())[0] ?? (await h.browser.newPage());
      await page.goto('data:text/html,<p>idle</p>');
      handles.push(h);
    }
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const procs = procSnapshot();
    let rssTotal = 0;
    let pssTotal = 0;
    for (const [i, h] of handles.entries()) {
      const tree = processTree(h.pid!, procs);
      const rss = treeRssBytes(h.pid!, procs);
      const pss = treePssBytes(h.pid!, procs);
      rssTotal += rss;
      pssTotal += pss;
      console.log(`browser ${i + 1}: ${tree.length} processes, RSS sum ${(rss / MiB).toFixed(0)} MiB, PSS ${(pss / MiB).toFixed(0)} MiB`);
    }
    console.log(`${count} idle browser(s), ${found.path}: RSS sum ${(rssTotal / MiB).toFixed(0)} MiB (${(rssTotal / count / MiB).toFixed(0)} MiB each), PSS ${(pssTotal / MiB).toFixed(0)} MiB (${(pssTotal / count / MiB).toFixed(0)} MiB each)`);
  } finally {
    await Promise.all(handles.map((h) => h.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
