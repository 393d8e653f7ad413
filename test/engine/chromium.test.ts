// The real Debian Chromium, started by the engine's own launch code. The Client here is a small
// stand-in that connects to that browser and opens a local page instead of WhatsApp Web.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import puppeteer, { type Browser } from 'puppeteer';
import { CHROMIUM_CANDIDATES, findChromium } from '../../server/adapters/whatsapp/wwebjs/chromium';
import type { ClientFactory, ClientSpec, WaClient } from '../../server/adapters/whatsapp/wwebjs/client';
import { WwebjsEngine } from '../../server/adapters/whatsapp/wwebjs/engine';
import type { SessionListener, WhatsAppSession } from '../../server/domain/ports';
import type { NumberState } from '../../server/domain/types';
import { client, startTestServer, tempDir, waitFor } from '../helpers/server';

/** Live (non-zombie) processes whose command line mentions `needle`. */
function processesMentioning(needle: string): { pid: number; cmdline: string[] }[] {
  const out: { pid: number; cmdline: string[] }[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const cmdline = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (cmdline.some((a) => a.includes(needle))) out.push({ pid: Number(e), cmdline });
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Whether `pid` is a live (non-zombie) process. */
function alive(pid: number): boolean {
  try {
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop()!.startsWith('Z');
  } catch {
    return false;
  }
}

/** Main browser processes (not renderers, zygotes or utilities) running on `profileDir`. */
function browsersOn(profileDir: string): number[] {
  return processesMentioning(`--user-data-dir=${profileDir}`)
    .filter((p) => p.cmdline.includes(`--user-data-dir=${profileDir}`) && !p.cmdline.some((a) => a.startsWith('--type=')))
    .map((p) => p.pid);
}

/**
 * What a server killed with SIGKILL leaves behind: a child process launches Chromium on
 * `profileDir` through the engine's launch code (puppeteer starts it detached), then the child is
 * killed. Resolves with the orphaned browser's pid.
 */
async function orphanBrowser(executablePath: string, profileDir: string): Promise<number> {
  const chromiumTs = path.resolve(__dirname, '../../server/adapters/whatsapp/wwebjs/chromium.ts');
  const script = `
    const { launchChromium } = require(${JSON.stringify(chromiumTs)});
    launchChromium({ executablePath: ${JSON.stringify(executablePath)}, userDataDir: ${JSON.stringify(profileDir)} })
      .then((h) => { console.log('PID ' + h.pid); setInterval(() => {}, 1000); })
      .catch((err) => { console.error(err); process.exit(1); });`;
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /PID (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`launcher exited with ${code} before the browser was up`)));
  });
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  return pid;
}

/** Connects to the engine's Chromium and loads the local page; its text is shown as the "QR". */
class LocalPageClient extends EventEmitter implements WaClient {
  private browser: Browser | null = null;
  constructor(
    private readonly spec: ClientSpec,
    private readonly url: string,
  ) {
    super();
  }
  async initialize(): Promise<void> {
    if (!this.spec.browserWSEndpoint) throw new Error('expected the engine to launch the browser');
    this.browser = await puppeteer.connect({ browserWSEndpoint: this.spec.browserWSEndpoint, defaultViewport: null });
    const page = await this.browser.newPage();
    await page.goto(this.url, { waitUntil: 'load' });
    const text = await page.evaluate(() => document.body.textContent ?? '');
    this.emit('qr', `${text}:${this.spec.clientId}`);
  }
  async destroy(): Promise<void> {
    if (this.browser?.connected) await this.browser.close();
  }
  async logout(): Promise<void> {
    await this.destroy();
  }
  async getNumberId(): Promise<null> {
    return null;
  }
  async sendMessage(): Promise<undefined> {
    return undefined;
  }
  async getChats(): Promise<[]> {
    return [];
  }
  async getChatById(): Promise<null> {
    return null;
  }
  async sendSeen(): Promise<boolean> {
    return true;
  }
}

class States implements SessionListener {
  list: { state: NumberState; reason?: string; qr?: string }[] = [];
  onState(state: NumberState, detail?: { reason?: string; qr?: string }): void {
    this.list.push({ state, ...detail });
  }
  async onInbound(): Promise<void> {}
  async onAck(): Promise<void> {}
  get last() {
    return this.list[this.list.length - 1];
  }
}

describe('Chromium discovery', () => {
  const exe = process.execPath; // any executable file stands for a browser here
  const notExe = path.join(tempDir('incrm-nochrome-'), 'chromium');
  before(() => fs.writeFileSync(notExe, '', { mode: 0o644 })); // a file, not executable

  it('CHROMIUM_PATH wins over the system paths', () => {
    expect(findChromium(exe, ['/usr/bin/chromium'])).to.deep.equal({ path: exe, warning: null });
  });

  it('an invalid CHROMIUM_PATH falls back to the system paths with a warning, which the engine logs', () => {
    for (const bad of ['/nonexistent/chromium', notExe]) {
      const found = findChromium(bad, ['/nonexistent/a', exe]);
      expect(found).to.deep.equal({ path: exe, warning: `CHROMIUM_PATH=${bad} is not an executable file; looking in the system paths` });
    }
    const warnings: string[] = [];
    const engine = new WwebjsEngine({
      config: { DATA_DIR: tempDir(), WA_MAX_SESSIONS: 1, CHROMIUM_PATH: '/nonexistent/chromium' },
      chromiumCandidates: ['/nonexistent/a', exe],
      log: { info: () => {}, warn: (_o, m) => warnings.push(m), error: () => {} },
    });
    expect(engine.chromiumPath).to.equal(exe);
    expect(engine.problem()).to.equal(null);
    expect(warnings).to.deep.equal(['CHROMIUM_PATH=/nonexistent/chromium is not an executable file; looking in the system paths']);
  });

  it('with neither: the problem, no path', () => {
    expect(findChromium(undefined, ['/nonexistent/a'])).to.deep.equal({ path: null, problem: 'Chromium not found: install chromium or set CHROMIUM_PATH' });
    expect(CHROMIUM_CANDIDATES[0]).to.equal('/usr/bin/chromium');
  });
});

describe('wwebjs engine with the real Chromium', function () {
  this.timeout(90_000);
  const found = findChromium(process.env.CHROMIUM_PATH);
  let server: http.Server;
  let url: string;

  before(function () {
    if (found.path === null) {
      // In CI a missing browser is a broken setup, not a reason to skip.
      if (process.env.CI) throw new Error(`CI is set but ${found.problem}`);
      this.skip();
    }
  });

  before(async () => {
    server = http.createServer((_req, res) => {
      res.setHeader('Content-Type', 'text/html');
      res.end('<!doctype html><html><body>local-page-ok</body></html>');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  it('finds Chromium, launches it with the server flags, honours the session cap and leaves no process behind', async () => {
    const dataDir = tempDir('incrm-chromium-');
    const factory: ClientFactory = (spec) => new LocalPageClient(spec, url);
    const engine = new WwebjsEngine({
      config: { DATA_DIR: dataDir, WA_MAX_SESSIONS: 2, CHROMIUM_PATH: process.env.CHROMIUM_PATH },
      createClient: factory,
      timing: { startingTimeoutMs: 60_000, closeTimeoutMs: 10_000 },
    });
    try {
      expect(engine.problem()).to.equal(null);
      // Debian's chromium, found on its own when CHROMIUM_PATH is not set.
      expect(engine.chromiumPath).to.equal(process.env.CHROMIUM_PATH || '/usr/bin/chromium');

      const listeners = [new States(), new States(), new States()];
      const sessions: WhatsAppSession[] = [];
      for (let i = 0; i < 3; i++) sessions.push(await engine.open(i + 1, listeners[i]!));
      await waitFor(() => listeners[0]!.last?.state === 'qr' && listeners[1]!.last?.state === 'qr', 60_000, 'two browsers up');
      expect(listeners[0]!.last!.qr).to.equal('local-page-ok:number-1');

      // The cap: the third number waits and says so; two browsers run.
      expect(listeners[2]!.last).to.deep.include({ state: 'starting' });
      expect(listeners[2]!.last!.reason).to.match(/^queued: /);
      const stats = engine.stats();
      expect(stats.browsers.map((b) => b.numberId).sort()).to.deep.equal([1, 2]);
      for (const b of stats.browsers) expect(b.rssBytes).to.be.greaterThan(10 * 1024 * 1024);

      // Flags, read from the running process.
      const pid = stats.browsers[0]!.pid!;
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      expect(cmdline).to.include.members(['--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--no-first-run']);
      expect(cmdline.some((a) => a.startsWith('--headless'))).to.equal(true);
      expect(cmdline).to.include(`--user-data-dir=${dataDir}/wwebjs/session-number-1`);
      const root = process.getuid?.() === 0;
      expect(cmdline.includes('--no-sandbox')).to.equal(root);
      expect(fs.statSync(`${dataDir}/wwebjs/session-number-1`).mode & 0o777).to.equal(0o700);

      // A slot frees up: the queued number starts; the closed browser's processes are gone.
      await sessions[0]!.close();
      expect(processesMentioning(`${dataDir}/wwebjs/session-number-1`)).to.deep.equal([]);
      await waitFor(() => listeners[2]!.last?.state === 'qr', 60_000, 'third browser up');
      expect(engine.stats().browsers.map((b) => b.numberId).sort()).to.deep.equal([2, 3]);
    } finally {
      await engine.shutdown();
    }
    // Clean shutdown: nothing of ours is left running.
    expect(processesMentioning(dataDir)).to.deep.equal([]);
  });

  it('/metrics shows each browser\'s memory and the sessions by state', async () => {
    const dataDir = tempDir('incrm-chromium-');
    const engine = new WwebjsEngine({
      config: { DATA_DIR: dataDir, WA_MAX_SESSIONS: 2, CHROMIUM_PATH: process.env.CHROMIUM_PATH },
      createClient: (spec) => new LocalPageClient(spec, url),
      timing: { startingTimeoutMs: 60_000, closeTimeoutMs: 10_000 },
    });
    const srv = await startTestServer({ DATA_DIR: dataDir }, { engine });
    try {
      const portal = await srv.db.repos.portals.create({ crm: 'none', name: 'metrics' });
      const api = client(srv.url + '/api/v1', srv.tokens.issue({ portalId: portal.id, userId: '1', admin: true }, 3600_000));
      const ids: number[] = [];
      for (let i = 0; i < 3; i++) ids.push((await api.post('/numbers')).body.id as number);
      const states = async () => Promise.all(ids.map(async (id) => (await api.get(`/numbers/${id}`)).body.state as string));
      await waitFor(async () => (await states()).filter((s) => s === 'qr').length === 2, 60_000, 'two browsers up');
      const metrics = await (await fetch(srv.url + '/metrics')).text();
      expect(metrics).to.match(/^incrm_wa_browsers 2$/m);
      const running = engine.stats().browsers.map((b) => b.numberId);
      for (const id of running) {
        const m = new RegExp(`^incrm_wa_browser_rss_bytes\\{number_id="${id}"\\} (\\d+)$`, 'm').exec(metrics);
        expect(m, `rss of number ${id}`).to.not.equal(null);
        expect(Number(m![1])).to.be.greaterThan(10 * 1024 * 1024);
        expect(metrics).to.match(new RegExp(`^incrm_wa_browser_pss_bytes\\{number_id="${id}"\\} [1-9]\\d*$`, 'm'));
      }
      const queued = ids.find((id) => !running.includes(id))!;
      expect(metrics).to.not.include(`number_id="${queued}"`);
      expect(metrics).to.match(/^incrm_sessions\{state="qr"\} 2$/m);
      expect(metrics).to.match(/^incrm_sessions\{state="starting"\} 1$/m);
      expect(metrics).to.match(/^incrm_sessions\{state="ready"\} 0$/m);
    } finally {
      await srv.close();
    }
    expect(processesMentioning(dataDir)).to.deep.equal([]);
  });

  it('a browser left running on the profile by a killed server is stopped before the number starts again', async () => {
    const dataDir = tempDir('incrm-chromium-');
    const profile = path.resolve(dataDir, 'wwebjs', 'session-number-1');
    const orphan = await orphanBrowser(found.path!, profile);
    const engine = new WwebjsEngine({
      config: { DATA_DIR: dataDir, WA_MAX_SESSIONS: 2, CHROMIUM_PATH: process.env.CHROMIUM_PATH },
      createClient: (spec) => new LocalPageClient(spec, url),
      timing: { startingTimeoutMs: 60_000, closeTimeoutMs: 10_000 },
    });
    try {
      // The crashed server's browser still runs and holds the lock.
      expect(alive(orphan)).to.equal(true);
      expect(fs.readlinkSync(path.join(profile, 'SingletonLock'))).to.match(new RegExp(`-${orphan}$`));
      const states = new States();
      await engine.open(1, states);
      await waitFor(() => states.last?.state === 'qr', 60_000, 'browser up again');
      expect(alive(orphan), 'the orphaned browser was stopped').to.equal(false);
      const pid = engine.stats().browsers[0]!.pid!;
      expect(browsersOn(profile)).to.deep.equal([pid]);
      expect(fs.readlinkSync(path.join(profile, 'SingletonLock'))).to.match(new RegExp(`-${pid}$`));
    } finally {
      await engine.shutdown();
      try {
        process.kill(-orphan, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    expect(processesMentioning(dataDir)).to.deep.equal([]);
  });
});
