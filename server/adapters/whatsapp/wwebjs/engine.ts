// The production engine: one whatsapp-web.js Client in its own Chromium per connected number.
import path from 'node:path';
import type { EngineStats, SessionListener, WhatsAppEngine, WhatsAppSession } from '../../../domain/ports';
import { chromiumArgs, findChromium, procSnapshot, treePssBytes, treeRssBytes, CHROMIUM_CANDIDATES } from './chromium';
import { createWwebjsClient, type ClientFactory } from './client';
import { isPageGone, DEFAULT_TIMING, WwebjsSession, type Log, type Timing } from './session';
import { Slots } from './slots';

export interface WwebjsEngineOptions {
  config: { DATA_DIR: string; WA_MAX_SESSIONS: number; CHROMIUM_PATH?: string | undefined; mediaMaxBytes?: number };
  log?: Log;
  /** The library's Client constructor; tests pass a stand-in reproducing its events. */
  createClient?: ClientFactory;
  /** Who starts Chromium: the engine (default; it owns the process) or the Client itself. */
  browserMode?: 'engine' | 'client';
  chromiumCandidates?: readonly string[];
  /** Browsers starting (launch until QR or ready) at the same time; default 2. */
  launchConcurrency?: number;
  /** Extra Chromium flags (tests); appended to the server flags. */
  extraArgs?: string[];
  timing?: Partial<Timing>;
}

const silent: Log = { info: () => {}, warn: () => {}, error: () => {} };

export class WwebjsEngine implements WhatsAppEngine {
  readonly name = 'wwebjs';
  private readonly sessions = new Map<number, WwebjsSession>();
  private readonly slots: Slots<object>;
  private readonly launchGate: Slots<object>;
  private readonly chromium: { executablePath: string; args: string[] } | null;
  private readonly chromiumProblem: string | null;
  private readonly timing: Timing;
  private readonly log: Log;
  private readonly createClient: ClientFactory;
  private readonly dataPath: string;
  private reconnects = 0;
  private guarding = false;
  private statsCache: { at: number; stats: EngineStats } | null = null;

  constructor(private readonly opts: WwebjsEngineOptions) {
    this.log = opts.log ?? silent;
    this.timing = { ...DEFAULT_TIMING, ...opts.timing };
    this.createClient = opts.createClient ?? createWwebjsClient;
    this.slots = new Slots(opts.config.WA_MAX_SESSIONS);
    this.launchGate = new Slots(opts.launchConcurrency ?? 2);
    this.dataPath = path.resolve(opts.config.DATA_DIR, 'wwebjs');
    const found = findChromium(opts.config.CHROMIUM_PATH, opts.chromiumCandidates ?? CHROMIUM_CANDIDATES);
    if (found.path !== null) {
      if (found.warning) this.log.warn({}, found.warning);
      this.chromium = { executablePath: found.path, args: [...chromiumArgs(), ...(opts.extraArgs ?? [])] };
      this.chromiumProblem = null;
    } else {
      this.chromium = null;
      this.chromiumProblem = found.problem;
      this.log.error({}, found.problem);
    }
  }

  /** The Chromium binary sessions run in (null when none was found). */
  get chromiumPath(): string | null {
    return this.chromium?.executablePath ?? null;
  }

  async open(numberId: number, listener: SessionListener): Promise<WhatsAppSession> {
    // One Client per profile folder, ever: a previous session of this number closes first.
    await this.sessions.get(numberId)?.close();
    if (!this.chromium) {
      const reason = this.chromiumProblem!;
      setImmediate(() => listener.onState('failed', { reason }));
      const fail = async (): Promise<never> => {
        throw new Error(reason);
      };
      return { send: fail, fetchSince: async function* () {}, recentSent: async () => [], close: async () => {}, logout: async () => {} };
    }
    this.guardRejections();
    const session = new WwebjsSession({
      numberId,
      listener,
      createClient: this.createClient,
      browserMode: this.opts.browserMode ?? 'engine',
      chromium: this.chromium,
      dataPath: this.dataPath,
      slots: this.slots,
      launchGate: this.launchGate,
      timing: this.timing,
      mediaMaxBytes: this.opts.config.mediaMaxBytes ?? 64 * 1024 * 1024,
      log: this.log,
      onReconnect: () => this.reconnects++,
      onEnd: (s) => {
        this.statsCache = null;
        if (this.sessions.get(numberId) === s) this.sessions.delete(numberId);
      },
    });
    this.sessions.set(numberId, session);
    this.statsCache = null;
    void session.start().catch((err) => this.log.error({ err, numberId }, 'session start failed'));
    return session;
  }

  problem(): string | null {
    return this.chromiumProblem;
  }

  stats(): EngineStats {
    // One /metrics scrape reads this for several gauges: walk /proc once.
    if (this.statsCache && Date.now() - this.statsCache.at < 250) return this.statsCache.stats;
    const procs = procSnapshot();
    const browsers: EngineStats['browsers'] = [];
    for (const [numberId, s] of this.sessions) {
      if (!s.running) continue;
      const pid = s.browserPid;
      browsers.push({ numberId, pid, rssBytes: pid ? treeRssBytes(pid, procs) : 0, pssBytes: pid ? treePssBytes(pid, procs) : 0 });
    }
    const stats = { browsers, reconnects: this.reconnects };
    this.statsCache = { at: Date.now(), stats };
    return stats;
  }

  async shutdown(): Promise<void> {
    await Promise.allSettled([...this.sessions.values()].map((s) => s.close()));
    this.sessions.clear();
    if (this.guarding) process.off('unhandledRejection', this.onUnhandled);
    this.guarding = false;
  }

  /**
   * whatsapp-web.js runs some page calls without awaiting them (the destroy after a disconnect,
   * the re-injection after a navigation); when the page is gone they reject with nobody listening,
   * which would kill the whole server. Those are logged; anything else keeps Node's behaviour.
   * Such a rejection cannot be traced to its Client, and a failed re-injection leaves a page that
   * answers but cannot do anything: every ready session is probed at once (session.probe: socket
   * CONNECTED and window.WWebJS present), and the broken one is reconnected.
   */
  private guardRejections(): void {
    if (this.guarding) return;
    this.guarding = true;
    process.on('unhandledRejection', this.onUnhandled);
  }

  private readonly onUnhandled = (reason: unknown): void => {
    const stack = reason instanceof Error ? reason.stack ?? '' : '';
    // The library throws bare strings from inject() and its ready wait.
    if (isPageGone(reason) || /whatsapp-web\.js|puppeteer/.test(stack) || reason === 'auth timeout' || reason === 'ready timeout') {
      this.log.warn({ err: reason }, 'unhandled whatsapp-web.js rejection (a page call failed); probing the ready sessions');
      this.probeAllSoon();
      return;
    }
    throw reason;
  };

  private probing: NodeJS.Timeout | null = null;

  /** One probe round for a burst of rejections (a dying page rejects several calls at once). */
  private probeAllSoon(): void {
    if (this.probing) return;
    this.probing = setTimeout(() => {
      this.probing = null;
      for (const s of this.sessions.values()) s.checkNow();
    }, 50);
    this.probing.unref();
  }
}
