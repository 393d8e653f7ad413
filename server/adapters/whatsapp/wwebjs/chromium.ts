// Finding, launching and measuring the system Chromium that each WhatsApp session runs in.
// npm installs no browser (puppeteer is mapped to puppeteer-core): the server uses Debian's.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser } from 'puppeteer';

export const CHROMIUM_NOT_FOUND = 'Chromium not found: install chromium or set CHROMIUM_PATH';

/** Where distributions put Chromium or Chrome, tried in order after CHROMIUM_PATH. */
export const CHROMIUM_CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/snap/bin/chromium',
  '/usr/lib/chromium/chromium',
  '/opt/google/chrome/chrome',
];

function isExecutableFile(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

export type ChromiumLookup = { path: string; warning: string | null } | { path: null; problem: string };

/** CHROMIUM_PATH first, then the usual system paths; the first executable file wins. */
export function findChromium(configured: string | undefined, candidates: readonly string[] = CHROMIUM_CANDIDATES): ChromiumLookup {
  let warning: string | null = null;
  if (configured) {
    if (isExecutableFile(configured)) return { path: configured, warning: null };
    warning = `CHROMIUM_PATH=${configured} is not an executable file; looking in the system paths`;
  }
  for (const c of candidates) if (isExecutableFile(c)) return { path: c, warning };
  return { path: null, problem: CHROMIUM_NOT_FOUND };
}

/**
 * Flags for a headless server browser. The sandbox needs user namespaces that a root process
 * cannot use, so it is dropped only when running as root.
 */
export function chromiumArgs(opts: { root?: boolean } = {}): string[] {
  const root = opts.root ?? process.getuid?.() === 0;
  return [
    ...(root ? ['--no-sandbox', '--disable-setuid-sandbox'] : []),
    '--disable-gpu',
    '--disable-dev-shm-usage', // containers give /dev/shm 64 MB: Chromium would crash on big pages
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-default-apps',
    '--disable-extensions',
    '--disable-sync',
    '--disable-translate',
    '--no-first-run',
    '--no-default-browser-check',
    '--mute-audio',
    '--metrics-recording-only',
    '--disable-blink-features=AutomationControlled',
    '--disable-features=Translate,MediaRouter,OptimizationHints',
  ];
}

/** A Chromium started by us; the whatsapp-web.js Client connects to it over `wsEndpoint`. */
export interface BrowserHandle {
  readonly wsEndpoint: string;
  readonly pid: number | null;
  readonly browser: Browser;
  /** True once the process is gone (closed or crashed). */
  exited(): boolean;
  /** Called once when the browser goes away for any reason. */
  onExit(fn: () => void): void;
  /** Graceful close (flushes the profile), then kills whatever is left of the process tree. */
  close(): Promise<void>;
}

/** The host and pid a profile's `SingletonLock` names (Chromium writes `<hostname>-<pid>`), or null. */
export function lockOwner(profileDir: string): { host: string; pid: number } | null {
  try {
    const m = /^(.*)-(\d+)$/.exec(fs.readlinkSync(path.join(profileDir, 'SingletonLock')));
    return m ? { host: m[1]!, pid: Number(m[2]) } : null;
  } catch {
    return null;
  }
}

/**
 * Chromium refuses a profile whose lock names a live process; a crash leaves the lock behind.
 * puppeteer starts Chromium detached, so after a SIGKILL of the server its browser may still
 * run on the profile: removing the lock alone would let a second Chromium open the same
 * profile (and corrupt the login). So when the lock's pid is alive on this host and runs on this
 * profile, that browser (its whole tree) is killed first; then the lock files are removed.
 */
export async function removeStaleLock(profileDir: string): Promise<{ removed: boolean; killedPid: number | null }> {
  let killedPid: number | null = null;
  const owner = lockOwner(profileDir);
  if (owner && owner.host === os.hostname() && owner.pid !== process.pid && isAliveWith(owner.pid, profileDir)) {
    const tree = processTree(owner.pid).map((p) => p.pid);
    killTree(owner.pid);
    await waitGone([owner.pid, ...tree], profileDir, 5000);
    killedPid = owner.pid;
  }
  let removed = false;
  for (const name of ['SingletonLock', 'SingletonSocket', 'SingletonCookie']) {
    const p = path.join(profileDir, name);
    try {
      fs.lstatSync(p);
    } catch {
      continue;
    }
    fs.rmSync(p, { force: true });
    removed = true;
  }
  return { removed, killedPid };
}

/** Creates a directory readable by the server's user only (the login lives in it). */
export function privateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
}

export async function launchChromium(opts: { executablePath: string; userDataDir: string; args?: string[]; closeTimeoutMs?: number }): Promise<BrowserHandle> {
  privateDir(opts.userDataDir);
  await removeStaleLock(opts.userDataDir);
  const browser = await puppeteer.launch({
    executablePath: opts.executablePath,
    headless: true,
    userDataDir: opts.userDataDir,
    args: opts.args ?? chromiumArgs(),
    defaultViewport: null,
    // The server owns shutdown: puppeteer must not kill browsers on our signals behind our back.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    protocolTimeout: 120_000,
  });
  const pid = browser.process()?.pid ?? null;
  let gone = false;
  const exitListeners: (() => void)[] = [];
  const markGone = () => {
    if (gone) return;
    gone = true;
    for (const fn of exitListeners.splice(0)) fn();
  };
  browser.on('disconnected', markGone);
  browser.process()?.once('exit', markGone);
  const closeTimeoutMs = opts.closeTimeoutMs ?? 10_000;
  return {
    wsEndpoint: browser.wsEndpoint(),
    pid,
    browser,
    exited: () => gone,
    onExit: (fn) => (gone ? fn() : void exitListeners.push(fn)),
    close: async () => {
      // Remember the whole tree first: once the main process exits, its children are re-parented
      // and can no longer be found from its pid.
      const tree = pid !== null ? processTree(pid).map((p) => p.pid) : [];
      if (!gone) {
        await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, closeTimeoutMs).unref())]);
      }
      if (pid !== null) {
        killTree(pid);
        const ours = tree.filter((p) => isAliveWith(p, opts.userDataDir));
        for (const p of ours) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        await waitGone(tree, opts.userDataDir, 3000);
      }
      markGone();
    },
  };
}

// ------------------------------------------------------------------ /proc: process trees and memory

interface ProcInfo {
  pid: number;
  ppid: number;
  rssBytes: number;
}

const PAGE = 4096;

function readProcs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      // The command name may contain spaces and parentheses: fields start after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(rest[1]);
      const rssPages = Number(rest[21]);
      out.push({ pid: Number(e), ppid, rssBytes: rssPages * PAGE });
    } catch {
      // the process ended while we were reading
    }
  }
  return out;
}

/** The pid and all its descendants that are alive now. */
export function processTree(rootPid: number, procs: ProcInfo[] = readProcs()): ProcInfo[] {
  const children = new Map<number, ProcInfo[]>();
  let root: ProcInfo | undefined;
  for (const p of procs) {
    if (p.pid === rootPid) root = p;
    const list = children.get(p.ppid) ?? [];
    list.push(p);
    children.set(p.ppid, list);
  }
  if (!root) return [];
  const tree: ProcInfo[] = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    tree.push(p);
    stack.push(...(children.get(p.pid) ?? []));
  }
  return tree;
}

/** Sum of resident memory over a browser's processes (overcounts shared pages; a ceiling, not PSS). */
export function treeRssBytes(rootPid: number, procs?: ProcInfo[]): number {
  return processTree(rootPid, procs).reduce((n, p) => n + p.rssBytes, 0);
}

/** Proportional memory of a tree (shared pages split between their users): the honest total. */
export function treePssBytes(rootPid: number, procs?: ProcInfo[]): number {
  let total = 0;
  for (const p of processTree(rootPid, procs)) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${p.pid}/smaps_rollup`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      /* gone, or no smaps_rollup (kernel < 4.14) */
    }
  }
  return total;
}

/** Snapshot of /proc, for measuring several trees at once. */
export function procSnapshot(): ProcInfo[] {
  return readProcs();
}

/**
 * The process is running (not a zombie) and runs on `profileDir` (so it is still the one we
 * started, not a reused pid). Chromium's children rewrite their command line into one
 * space-separated string, so the flag is matched as a whole word, not as a prefix
 * (`session-number-1` must not match `session-number-12`).
 */
export function isAliveWith(pid: number, profileDir: string): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const flag = `--user-data-dir=${profileDir}`;
    for (let i = cmdline.indexOf(flag); i >= 0; i = cmdline.indexOf(flag, i + 1)) {
      const before = i === 0 ? '\0' : cmdline[i - 1]!;
      const after = cmdline[i + flag.length] ?? '\0';
      if (/[\s\0]/.test(before) && /[\s\0]/.test(after)) return true;
    }
    return false;
  } catch {
    return false;
  }
}

/** Waits until none of `pids` runs any more: SIGKILL is delivered asynchronously. */
async function waitGone(pids: number[], marker: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (pids.some((p) => isAliveWith(p, marker)) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
}

/** Kills a browser's whole tree (zygotes, renderers): nothing may outlive a closed session. */
export function killTree(rootPid: number): void {
  const tree = processTree(rootPid);
  try {
    process.kill(-rootPid, 'SIGKILL'); // puppeteer starts Chromium as a process-group leader
  } catch {
    /* no such group */
  }
  for (const p of tree) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
