import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { build } from 'esbuild';
import { tempDir, waitFor } from '../helpers/server';

// `npm start` runs the esbuild bundle, not the TypeScript the other tests run through tsx. This
// builds the server exactly as scripts/build.mjs does (into test/output, beside node_modules so its
// external packages resolve) and checks the bundle starts, answers /healthz and stops on SIGTERM.

const ROOT = path.resolve(__dirname, '../..');

describe('npm start (the built server)', function () {
  this.timeout(60_000);

  it('starts from the bundle, answers /healthz and exits 0 on SIGTERM', async () => {
    const out = path.join(ROOT, 'test/output/dist-start');
    fs.rmSync(out, { recursive: true, force: true });
    await build({
      entryPoints: { 'server/start': path.join(ROOT, 'server/start.ts') },
      outdir: out,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      packages: 'external',
      logLevel: 'warning',
    });
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const child = spawn(process.execPath, [path.join(out, 'server/start.js')], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port), DATA_DIR: tempDir('incrm-start-'), WA_ENGINE: 'simulator', LOG_LEVEL: 'error' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    try {
      const health = await waitFor(async () => {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`);
        return r.ok ? ((await r.json()) as { status: string; database: string }) : null;
      }, 30_000, 'the built server to answer');
      expect(health.status).to.equal('ok');
      expect(health.database).to.equal('sqlite');
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).to.equal(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
