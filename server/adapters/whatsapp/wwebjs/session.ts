// One connected number: a Chromium + whatsapp-web.js Client, recreated after crashes and
// disconnects, with everything the port promises (idempotent states, acks, inbound, catch-up).
import crypto from 'node:crypto';
import fs from 'node:fs';
import { PermanentSendError, type Inbound, type Outbound, type SentRecord, type SessionListener, type WhatsAppSession } from '../../../domain/ports';
import type { NumberState } from '../../../domain/types';
import { launchChromium, privateDir, removeStaleLock, type BrowserHandle } from './chromium';
import { toWaMedia, type ClientFactory, type WaClient, type WaMessage, type WaSendOptions } from './client';
import { isPageGone, MediaDownloadError, withTimeout } from './errors';
import { ackStatus, isPersonalChat, messageType, phoneOfWid, toInbound } from './mapping';
import type { Slots } from './slots';

export interface Timing {
  /** An unscanned QR stops the browser after this long (memory is not wasted on it). */
  qrTimeoutMs: number;
  /** No QR and no ready this long after launch: the start is stuck; reconnect. */
  startingTimeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /**
   * A reconnect backoff at least this long gives the browser slot (WA_MAX_SESSIONS) away: the
   * session has no browser meanwhile. It queues for a slot again when it wakes.
   */
  slotReleaseMs: number;
  /** How long a `message_create` of ours waits for the send call that made it to return its id. */
  ownEchoHoldMs: number;
  sendTimeoutMs: number;
  /** Ready sessions are probed this often; a page that does not answer is reconnected. */
  healthIntervalMs: number;
  /**
   * A ready session whose WhatsApp Web socket goes to TIMEOUT or OPENING is reported `offline` and
   * given this long to come back (CONNECTED) before it is reconnected with a fresh Client.
   */
  stateGraceMs: number;
  /** One media download may take this long; then the page counts as gone. */
  downloadTimeoutMs: number;
  /** Pause before retrying a download that threw (doubled for the third attempt). */
  downloadRetryMs: number;
  /**
   * An admin's logout while the session is not ready starts a browser on the login just to
   * unlink the device; it gives up after this long (the login is then only dropped locally).
   */
  logoutTimeoutMs: number;
  closeTimeoutMs: number;
}

export const DEFAULT_TIMING: Timing = {
  qrTimeoutMs: 3 * 60_000,
  startingTimeoutMs: 3 * 60_000,
  backoffBaseMs: 2_000,
  backoffMaxMs: 5 * 60_000,
  slotReleaseMs: 30_000,
  ownEchoHoldMs: 2_000,
  sendTimeoutMs: 60_000,
  healthIntervalMs: 60_000,
  stateGraceMs: 60_000,
  downloadTimeoutMs: 120_000,
  downloadRetryMs: 1_000,
  logoutTimeoutMs: 45_000,
  closeTimeoutMs: 10_000,
};

export interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SessionDeps {
  numberId: number;
  listener: SessionListener;
  createClient: ClientFactory;
  /** `engine`: we launch Chromium and the Client connects to it; `client`: the Client launches it. */
  browserMode: 'engine' | 'client';
  chromium: { executablePath: string; args: string[] };
  dataPath: string;
  slots: Slots<object>;
  /** Browsers loading WhatsApp Web at the same time (a restore of many numbers would swamp the CPU). */
  launchGate: Slots<object>;
  timing: Timing;
  mediaMaxBytes: number;
  log: Log;
  onReconnect(): void;
  onEnd(session: WwebjsSession): void;
}

/** How long a send with an unknown outcome shadows matching own messages. */
const UNCERTAIN_MS = 10 * 60_000;

/**
 * Disconnect reasons that a reconnect cannot fix (shared reference §2.2): the session ends in
 * `failed` with this text and its browser slot is freed. The login is kept: an admin's restart
 * (or the next server start) tries once more.
 */
export const TERMINAL_DISCONNECTS: Record<string, string> = {
  TOS_BLOCK: 'WhatsApp banned this number for breaking its Terms of Service (TOS_BLOCK); not reconnecting',
  SMB_TOS_BLOCK: 'WhatsApp banned this WhatsApp Business number for breaking its Terms of Service (SMB_TOS_BLOCK); not reconnecting',
  PROXYBLOCK: "WhatsApp refuses connections from this server's IP address or proxy (PROXYBLOCK); not reconnecting",
  DEPRECATED_VERSION: 'WhatsApp Web rejected this whatsapp-web.js version as outdated (DEPRECATED_VERSION): upgrade it; not reconnecting',
};

export { isPageGone };

export const QR_EXPIRED_REASON = 'QR code not scanned for 3 minutes: the browser was stopped; restart the number for a new QR';
export const NOT_READY = 'WhatsApp session is not ready';

/** Asked of the page by the health probe: is the whatsapp-web.js injection there? */
const INJECTED = "typeof window.WWebJS === 'object' && window.WWebJS !== null && typeof window.WWebJS.sendMessage === 'function'";

/** WhatsApp Web socket states a ready session waits out (the library keeps the Client; no `disconnected`). */
const TRANSIENT_STATES = new Set(['TIMEOUT', 'OPENING']);

/** A bounded insertion-ordered set: remembers the last `max` ids. */
class RecentIds<V = true> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  has(id: string): boolean {
    return this.map.has(id);
  }
  get(id: string): V | undefined {
    return this.map.get(id);
  }
  set(id: string, v: V): void {
    this.map.delete(id);
    this.map.set(id, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }
  delete(id: string): void {
    this.map.delete(id);
  }
}

type Phase = 'idle' | 'queued' | 'starting' | 'qr' | 'ready' | 'waiting' | 'stopped';

export class WwebjsSession implements WhatsAppSession {
  readonly clientId: string;
  readonly profileDir: string;
  private phase: Phase = 'idle';
  private closed = false;
  /** Bumped for every fresh Client: events of an older one are ignored. */
  private generation = 0;
  private client: WaClient | null = null;
  private browser: BrowserHandle | null = null;
  private attempts = 0;
  private reconnects = 0;
  private timers = new Set<NodeJS.Timeout>();
  private qrTimer: NodeJS.Timeout | null = null;
  private startTimer: NodeJS.Timeout | null = null;
  private healthTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  /** The socket state (TIMEOUT, OPENING) a ready session is waiting out; null when CONNECTED. */
  private degraded: string | null = null;
  /** Ids this engine sent, with what reconciliation needs. */
  private readonly sent = new RecentIds<SentRecord>(5000);
  private readonly seen = new RecentIds(5000);
  private readonly identified = new Set<string>();
  /**
   * Sends that failed without an answer (crash, timeout): WhatsApp may have sent them. Their
   * echoes must not come back as "sent from the phone"; the domain reconciles them via recentSent.
   */
  private uncertain: { chatIds: string[]; type: string; text: string | null; at: number }[] = [];
  /** Sends in flight per chat (the core's chat id): an echo of ours waits for them to return their ids. */
  private readonly sending = new Map<string, number>();
  /**
   * Other ids WhatsApp Web uses for a chat → the core's chat id: the wid getNumberId resolved, the
   * chat's hidden id (`@lid`; WhatsApp Web may address our own messages to it, so their echoes
   * carry it in `to` and `id.remote`). Learned from the lid/phone lookups and the sends' answers.
   */
  private readonly chatKey = new RecentIds<string>(5000);
  /** getNumberId's answer per chat (core chat id → id to send to): checked before the first message only. */
  private readonly resolved = new RecentIds<string>(5000);

  constructor(private readonly d: SessionDeps) {
    this.clientId = `number-${d.numberId}`;
    this.profileDir = `${d.dataPath}/session-${this.clientId}`;
  }

  get running(): boolean {
    if (this.browser) return !this.browser.exited();
    return this.d.browserMode === 'client' && this.client !== null;
  }

  get browserPid(): number | null {
    if (this.browser) return this.browser.exited() ? null : this.browser.pid;
    return this.client?.pupBrowser?.process?.()?.pid ?? null;
  }

  get reconnectCount(): number {
    return this.reconnects;
  }

  // ------------------------------------------------------------------ lifecycle

  /** Waits for a slot under the cap, then launches. */
  async start(): Promise<void> {
    this.report('starting');
    await this.queueThenLaunch();
  }

  private async queueThenLaunch(): Promise<void> {
    this.phase = 'queued';
    const got = await this.d.slots.acquire(this, (pos) => {
      if (this.phase === 'queued') {
        this.report('starting', { reason: `queued: ${this.d.slots.max} browsers already running (WA_MAX_SESSIONS=${this.d.slots.max}); position ${pos}` });
      }
    });
    if (!got || this.closed) return;
    await this.launch();
  }

  private async launch(): Promise<void> {
    if (this.closed) return;
    const gen = ++this.generation;
    this.phase = 'starting';
    this.degraded = null;
    if (this.attempts > 0) this.report('starting', { reason: `reconnecting (attempt ${this.attempts + 1})` });
    const gated = await this.d.launchGate.acquire(this);
    if (!gated || gen !== this.generation || this.closed) {
      this.d.launchGate.release(this);
      return;
    }
    this.armStartWatchdog(gen);
    try {
      privateDir(this.d.dataPath);
      privateDir(this.profileDir);
      // A browser left running on this profile by a killed server is stopped first (chromium.ts).
      const lock = await removeStaleLock(this.profileDir);
      if (lock.killedPid !== null) {
        this.d.log.warn({ numberId: this.d.numberId, pid: lock.killedPid }, 'stopped a browser left running on this profile by an earlier server');
      }
      if (gen !== this.generation || this.closed) return;
      if (this.d.browserMode === 'engine') {
        const browser = await launchChromium({ ...this.d.chromium, userDataDir: this.profileDir, closeTimeoutMs: this.d.timing.closeTimeoutMs });
        if (gen !== this.generation || this.closed) {
          await browser.close();
          return;
        }
        this.browser = browser;
        browser.onExit(() => this.lost(gen, 'the browser exited'));
      }
      const client = this.d.createClient({
        clientId: this.clientId,
        dataPath: this.d.dataPath,
        profileDir: this.profileDir,
        browserWSEndpoint: this.browser?.wsEndpoint ?? null,
        launch: this.d.browserMode === 'client' ? this.d.chromium : null,
      });
      this.client = client;
      this.wire(client, gen);
      await client.initialize();
      if (gen !== this.generation) return;
      client.pupPage?.on('error', () => this.lost(gen, 'the WhatsApp Web page crashed'));
      client.pupPage?.on('close', () => this.lost(gen, 'the WhatsApp Web page closed'));
      await this.closeBlankTabs(client);
    } catch (err) {
      this.lost(gen, (err as Error)?.message ?? String(err));
    }
  }

  /** The Client opens its own tab in our browser; the start-up blank tab would only hold memory. */
  private async closeBlankTabs(client: WaClient): Promise<void> {
    if (!this.browser) return;
    try {
      for (const page of await this.browser.browser.pages()) {
        if ((page as unknown) !== client.pupPage && page.url() === 'about:blank') await page.close();
      }
    } catch {
      /* not worth a reconnect */
    }
  }

  private wire(client: WaClient, gen: number): void {
    const cur = () => gen === this.generation && !this.closed;
    client.on('qr', (qr: string) => cur() && this.onQr(gen, qr));
    client.on('authenticated', () => cur() && this.onAuthenticated(gen));
    client.on('ready', () => cur() && this.onReady(gen));
    // The first sync of a big account takes a while; progress keeps the start watchdog quiet.
    client.on('loading_screen', () => cur() && this.phase !== 'ready' && this.armStartWatchdog(gen));
    client.on('disconnected', (reason: string) => cur() && this.onDisconnected(gen, String(reason)));
    client.on('message', (msg: WaMessage) => cur() && !msg.fromMe && void this.receive(gen, msg));
    client.on('message_create', (msg: WaMessage) => cur() && msg.fromMe && this.ownEcho(gen, msg));
    client.on('message_ack', (msg: WaMessage, ack: number) => cur() && this.onAck(msg, ack));
    client.on('message_revoke_everyone', (msg: WaMessage, revoked?: WaMessage | null) => {
      if (!cur()) return;
      const id = revoked?.id._serialized ?? msg.id._serialized;
      void this.d.listener.onRevoked?.(id).catch((err) => this.d.log.warn({ err, numberId: this.d.numberId }, 'revoke not recorded'));
    });
    client.on('change_state', (state: string) => cur() && this.onWaState(gen, String(state)));
  }

  private onQr(gen: number, qr: string): void {
    this.clearStartWatchdog();
    this.d.launchGate.release(this);
    this.phase = 'qr';
    this.report('qr', { qr });
    // One deadline for the whole QR episode: rotations do not extend it.
    if (!this.qrTimer) {
      this.qrTimer = this.later(this.d.timing.qrTimeoutMs, () => void this.qrExpired(gen));
    }
  }

  private onAuthenticated(gen: number): void {
    this.clearQrTimer();
    // Loading the chats may take a while; a start that never reaches ready is still caught.
    if (this.phase !== 'ready') this.armStartWatchdog(gen);
  }

  private onReady(gen: number): void {
    this.d.launchGate.release(this);
    this.clearQrTimer();
    this.clearStartWatchdog();
    this.attempts = 0;
    if (this.phase === 'ready') {
      // ready fires again on re-sync and after a re-injection: nothing new, unless we were
      // waiting for the connection to come back.
      this.recovered();
      return;
    }
    this.phase = 'ready';
    this.report('ready', this.readyDetail());
    this.startHealthChecks(gen);
  }

  /**
   * The number's own phone. whatsapp-web.js takes info.wid from getMaybeMePnUser() or, failing
   * that, getMaybeMeLidUser(): a hidden id's digits are not a phone, so `+user` is used only for
   * a `c.us` wid (phoneOfWid only takes 8–15 digits).
   */
  private readyDetail(): { phone: string } | undefined {
    const wid = this.client?.info?.wid;
    const phone = wid ? phoneOfWid(wid._serialized) ?? (wid.server === 'c.us' && wid.user ? `+${wid.user}` : undefined) : undefined;
    return phone ? { phone } : undefined;
  }

  /**
   * WhatsApp Web's socket state. The library treats TIMEOUT and OPENING as accepted (it keeps the
   * Client and never emits `disconnected`): a ready session reports `offline` and gets
   * `stateGraceMs` to reach CONNECTED again before it is reconnected. Other states end in
   * `disconnected`, handled there. While starting, the start watchdog covers them.
   */
  private onWaState(gen: number, state: string): void {
    this.d.log.info({ numberId: this.d.numberId, state }, 'WhatsApp Web state');
    if (gen !== this.generation || this.phase !== 'ready') return;
    if (state === 'CONNECTED') this.recovered();
    else if (TRANSIENT_STATES.has(state)) this.degrade(gen, state);
  }

  private degrade(gen: number, state: string): void {
    if (this.degraded) return; // already waiting: one grace period per episode
    this.degraded = state;
    const secs = Math.max(1, Math.round(this.d.timing.stateGraceMs / 1000));
    this.report('offline', { reason: `WhatsApp Web connection ${state}: phone or network not reachable; reconnecting in ${secs} s unless it comes back` });
    this.graceTimer = this.later(this.d.timing.stateGraceMs, () => {
      this.graceTimer = null;
      if (this.degraded) this.lost(gen, `WhatsApp Web connection still ${this.degraded} after ${secs} s`);
    });
  }

  private recovered(): void {
    if (!this.degraded) return;
    this.degraded = null;
    this.graceTimer = this.cancelTimer(this.graceTimer);
    this.report('ready', this.readyDetail());
  }

  private onDisconnected(gen: number, reason: string): void {
    if (reason === 'LOGOUT' || reason === 'UNPAIRED' || reason === 'UNPAIRED_IDLE') {
      void this.loggedOut(gen, reason);
      return;
    }
    const terminal = TERMINAL_DISCONNECTS[reason];
    if (terminal) {
      void this.stop(gen, terminal);
      return;
    }
    this.lost(gen, `disconnected: ${reason}`);
  }

  /** Anything but a logout: tear down and start a fresh Client after a backoff. Never a tight loop. */
  private lost(gen: number, reason: string): void {
    if (gen !== this.generation || this.closed || this.phase === 'waiting' || this.phase === 'stopped') return;
    this.generation++;
    this.phase = 'waiting';
    this.degraded = null;
    this.clearAllTimers();
    this.attempts++;
    this.reconnects++;
    this.d.onReconnect();
    const base = Math.min(this.d.timing.backoffMaxMs, this.d.timing.backoffBaseMs * 2 ** Math.min(this.attempts - 1, 20));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.d.log.warn({ numberId: this.d.numberId, reason, attempt: this.attempts, retryInMs: delay }, 'WhatsApp session lost; reconnecting');
    this.report('offline', { reason: `${reason}; reconnecting in ${Math.max(1, Math.round(delay / 1000))} s` });
    void this.teardown().then(() => {
      if (this.closed || this.phase !== 'waiting') return;
      // No browser for a long while: another number may use the slot meanwhile.
      const giveSlot = delay >= this.d.timing.slotReleaseMs;
      if (giveSlot) this.d.slots.release(this);
      this.later(delay, () => void (giveSlot ? this.queueThenLaunch() : this.launch()));
    });
  }

  private async qrExpired(gen: number): Promise<void> {
    if (this.phase !== 'qr') return;
    await this.stop(gen, QR_EXPIRED_REASON);
  }

  /** Ends in `failed` with the reason: the browser stops, the slot is freed, nothing reconnects. */
  private async stop(gen: number, reason: string): Promise<void> {
    if (gen !== this.generation || this.closed || this.phase === 'stopped') return;
    this.generation++; // late events of this Client (its own destroy, a browser exit) are ignored
    this.phase = 'stopped';
    this.clearAllTimers();
    this.d.log.warn({ numberId: this.d.numberId, reason }, 'WhatsApp session stopped');
    await this.teardown();
    this.d.slots.release(this);
    this.report('failed', { reason });
  }

  /** The phone unlinked us: the login is dropped (the profile deleted) and nothing reconnects. */
  private async loggedOut(gen: number, reason: string): Promise<void> {
    if (gen !== this.generation || this.closed) return;
    this.generation++; // the new QR the library shows after a logout is not ours to report
    this.phase = 'stopped';
    this.clearAllTimers();
    await this.teardown();
    this.dropLogin();
    this.d.slots.release(this);
    this.report('logged_out', { reason: reason === 'LOGOUT' ? 'unlinked from the phone' : `unlinked (${reason})` });
    this.d.onEnd(this);
  }

  /**
   * The start of close() and logout(): false when the session already ended; otherwise marks it
   * ended, orphans late library events (generation) and gives up any wait for a slot or launch.
   */
  private beginEnd(): boolean {
    if (this.closed) return false;
    this.closed = true;
    this.generation++;
    this.clearAllTimers();
    this.d.slots.cancel(this);
    this.d.launchGate.cancel(this);
    return true;
  }

  /** Closes the browser keeping the login (server shutdown, admin restart). */
  async close(): Promise<void> {
    if (!this.beginEnd()) return;
    await this.teardown();
    this.d.slots.release(this);
    this.phase = 'stopped';
    this.d.onEnd(this);
  }

  /**
   * Unlinks the device on WhatsApp and deletes the login. A session that is not ready (reconnect
   * backoff, queued, starting, WhatsApp Web state TIMEOUT) has no page to unlink from: when a
   * login may exist, a browser is started on it just for this (logoutTimeoutMs), so the phone's
   * "Linked devices" list does not keep a device nobody can use. Not tried while a QR shows (no
   * login) nor after a stop (QR expired, banned, outdated version). Deleting the folder alone
   * leaves the device listed until WhatsApp drops it.
   */
  async logout(): Promise<void> {
    const phase = this.phase;
    if (!this.beginEnd()) return;
    const client = this.client;
    let unlinked = false;
    if (client && phase === 'ready' && !this.degraded) {
      unlinked = await withTimeout(client.logout(), this.d.timing.closeTimeoutMs, 'logout').then(
        () => true,
        (err) => {
          this.d.log.warn({ err, numberId: this.d.numberId }, 'WhatsApp logout failed; trying once more on a fresh page');
          return false;
        },
      );
    }
    await this.teardown();
    if (!unlinked && phase !== 'qr' && phase !== 'stopped' && phase !== 'idle') {
      unlinked = await this.unlinkWithFreshClient().catch((err) => {
        this.d.log.warn({ err, numberId: this.d.numberId }, 'could not unlink the device; dropping the login locally');
        return false;
      });
    }
    this.dropLogin();
    this.d.slots.release(this);
    this.phase = 'stopped';
    this.d.onEnd(this);
  }

  /** Starts a Client on the kept login only to unlink it: true when WhatsApp took the logout. */
  private async unlinkWithFreshClient(): Promise<boolean> {
    if (!fs.existsSync(this.profileDir)) return false;
    if (!this.d.slots.tryAcquire(this)) {
      this.d.log.warn({ numberId: this.d.numberId }, `no browser slot free (WA_MAX_SESSIONS=${this.d.slots.max}) to unlink the device; dropping the login locally`);
      return false;
    }
    let browser: BrowserHandle | null = null;
    let client: WaClient | null = null;
    try {
      await removeStaleLock(this.profileDir);
      if (this.d.browserMode === 'engine') {
        browser = await launchChromium({ ...this.d.chromium, userDataDir: this.profileDir, closeTimeoutMs: this.d.timing.closeTimeoutMs });
      }
      const c = this.d.createClient({
        clientId: this.clientId,
        dataPath: this.d.dataPath,
        profileDir: this.profileDir,
        browserWSEndpoint: browser?.wsEndpoint ?? null,
        launch: this.d.browserMode === 'client' ? this.d.chromium : null,
      });
      client = c;
      const outcome = new Promise<'ready' | 'qr'>((resolve, reject) => {
        c.on('ready', () => resolve('ready'));
        c.on('qr', () => resolve('qr')); // no login after all: nothing to unlink
        c.on('disconnected', (reason: string) => reject(new Error(`disconnected: ${reason}`)));
        c.initialize().catch(reject);
      });
      if ((await withTimeout(outcome, this.d.timing.logoutTimeoutMs, 'start for logout')) !== 'ready') return false;
      await withTimeout(c.logout(), this.d.timing.closeTimeoutMs, 'logout');
      this.d.log.info({ numberId: this.d.numberId }, 'device unlinked on a browser started for the logout');
      return true;
    } finally {
      if (client) {
        client.removeAllListeners();
        await withTimeout(client.destroy(), this.d.timing.closeTimeoutMs, 'destroy').catch(() => {});
      }
      if (browser) await browser.close().catch(() => {});
    }
  }

  private async teardown(): Promise<void> {
    this.d.launchGate.release(this);
    const client = this.client;
    const browser = this.browser;
    this.client = null;
    this.browser = null;
    if (client) {
      client.removeAllListeners();
      await withTimeout(client.destroy(), this.d.timing.closeTimeoutMs, 'destroy').catch(() => {});
    }
    if (browser) await browser.close().catch(() => {});
  }

  private dropLogin(): void {
    try {
      fs.rmSync(this.profileDir, { recursive: true, force: true, maxRetries: 4 });
    } catch (err) {
      this.d.log.warn({ err, numberId: this.d.numberId }, 'could not delete the login folder');
    }
  }

  // ------------------------------------------------------------------ timers

  private later(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
    return t;
  }

  private cancelTimer(t: NodeJS.Timeout | null): null {
    if (t) {
      clearTimeout(t);
      clearInterval(t);
      this.timers.delete(t);
    }
    return null;
  }

  private armStartWatchdog(gen: number): void {
    this.startTimer = this.cancelTimer(this.startTimer);
    this.startTimer = this.later(this.d.timing.startingTimeoutMs, () => {
      this.startTimer = null;
      this.lost(gen, `no QR and no login ${Math.round(this.d.timing.startingTimeoutMs / 1000)} s after start`);
    });
  }

  private clearStartWatchdog(): void {
    this.startTimer = this.cancelTimer(this.startTimer);
  }

  private clearQrTimer(): void {
    this.qrTimer = this.cancelTimer(this.qrTimer);
  }

  private startHealthChecks(gen: number): void {
    this.healthTimer = this.cancelTimer(this.healthTimer);
    this.healthTimer = this.later(this.d.timing.healthIntervalMs, () => void this.probe(gen));
  }

  /**
   * A ready session is healthy when WhatsApp Web's socket is CONNECTED and the library's
   * injection (window.WWebJS) is in the page; a page that merely answers is not enough (after a
   * navigation whose re-injection failed, every API call fails). TIMEOUT/OPENING start the
   * grace period; anything else, an error or no answer reconnects.
   */
  private async probe(gen: number): Promise<void> {
    const client = this.client;
    if (gen !== this.generation || !client || this.phase !== 'ready') return;
    this.healthTimer = this.cancelTimer(this.healthTimer);
    const ms = Math.min(15_000, this.d.timing.healthIntervalMs);
    let state: string | null;
    let injected: unknown;
    try {
      state = client.getState ? await withTimeout(client.getState(), ms, 'health check') : 'CONNECTED';
      injected = client.pupPage?.evaluate ? await withTimeout(client.pupPage.evaluate(INJECTED), ms, 'health check') : true;
    } catch (err) {
      this.lost(gen, `health check failed: ${(err as Error)?.message ?? String(err)}`);
      return;
    }
    if (gen !== this.generation || this.phase !== 'ready') return;
    if (!injected) {
      this.lost(gen, 'health check failed: the whatsapp-web.js injection is gone from the page (WWebJS is not defined)');
      return;
    }
    if (state === 'CONNECTED') this.recovered();
    else if (state && TRANSIENT_STATES.has(state)) this.degrade(gen, state);
    else {
      this.lost(gen, `health check failed: WhatsApp Web state ${state ?? 'unknown'}, not CONNECTED`);
      return;
    }
    this.healthTimer = this.later(this.d.timing.healthIntervalMs, () => void this.probe(gen));
  }

  /** Probe now (a page call of the library failed with nobody awaiting it: see the engine's guard). */
  checkNow(): void {
    if (this.closed || this.phase !== 'ready') return;
    void this.probe(this.generation);
  }

  private clearAllTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.qrTimer = this.startTimer = this.healthTimer = this.graceTimer = null;
  }

  private report(state: NumberState, detail?: { reason?: string; qr?: string; phone?: string }): void {
    if (this.closed) return;
    try {
      this.d.listener.onState(state, detail);
    } catch (err) {
      this.d.log.error({ err, numberId: this.d.numberId }, 'state listener failed');
    }
  }

  // ------------------------------------------------------------------ inbound

  private async receive(gen: number, msg: WaMessage): Promise<void> {
    const id = msg.id._serialized;
    if (this.seen.has(id)) return; // repeated event (ciphertext re-emits, re-sync)
    this.seen.set(id, true);
    let inb: Inbound | null;
    try {
      inb = await toInbound(msg, this.mapping('throw'));
    } catch (err) {
      this.seen.delete(id);
      if (err instanceof MediaDownloadError) {
        // Not stored (media is unavailable only when WhatsApp says so): after the reconnect, the
        // core's catch-up fetches the message again, on a fresh page.
        this.d.log.warn({ err, numberId: this.d.numberId, waMessageId: id }, 'media could not be downloaded; reconnecting, the catch-up brings the message back');
        this.lost(gen, err.message);
        return;
      }
      this.d.log.warn({ err, numberId: this.d.numberId, waMessageId: id }, 'message could not be read');
      return;
    }
    if (!inb) {
      // Not content (yet): a ciphertext placeholder comes back with the same id once decrypted.
      this.seen.delete(id);
      return;
    }
    try {
      await this.d.listener.onInbound(inb);
    } catch (err) {
      this.seen.delete(id); // not stored: a repeat or the catch-up may bring it again
      this.d.log.warn({ err, numberId: this.d.numberId, waMessageId: id }, 'inbound message not stored');
      return;
    }
    if (inb.chatId.endsWith('@lid')) await this.identify(gen, inb.chatId);
  }

  private keyOf(chatId: string): string {
    return this.chatKey.get(chatId) ?? chatId;
  }

  private learn(alias: string | null | undefined, chatId: string): void {
    if (alias && alias !== chatId) this.chatKey.set(alias, chatId);
  }

  /** The core's chat ids a message of ours may belong to (its `to` and `id.remote`, resolved). */
  private echoKeys(msg: WaMessage): string[] {
    return [...new Set([msg.id.remote, msg.to].filter(Boolean).map((k) => this.keyOf(k)))];
  }

  /**
   * A message written on the phone (or our own send echoed back): only the former is reported.
   * An echo usually fires before the send call returns the id that tells them apart, so it is
   * held while a send to its chat is in flight. The chat is found whatever id the echo carries:
   * a hidden id is resolved to its phone first; one that cannot be resolved waits for any send.
   */
  private ownEcho(gen: number, msg: WaMessage): void {
    const id = msg.id._serialized;
    if (this.sent.has(id)) return;
    const inFlight = () => {
      const keys = this.echoKeys(msg);
      if (keys.some((k) => (this.sending.get(k) ?? 0) > 0)) return true;
      return keys.every((k) => k.endsWith('@lid')) && this.sending.size > 0;
    };
    const check = (waited: number) => {
      if (gen !== this.generation || this.closed || this.sent.has(id) || this.isUncertainSend(msg)) return;
      // A send to this chat is still waiting for its id: keep holding (bounded).
      if (inFlight() && waited < this.d.timing.sendTimeoutMs) {
        this.later(this.d.timing.ownEchoHoldMs, () => check(waited + this.d.timing.ownEchoHoldMs));
        return;
      }
      void this.receive(gen, msg);
    };
    const hidden = this.echoKeys(msg).find((k) => k.endsWith('@lid'));
    const resolving = hidden ? this.lookupLid(gen, hidden) : Promise.resolve(null);
    void resolving.then(() => this.later(this.d.timing.ownEchoHoldMs, () => check(this.d.timing.ownEchoHoldMs)));
  }

  /** The phone chat id behind a hidden id (null when WhatsApp does not say); remembered. */
  private async lookupLid(gen: number, lid: string): Promise<string | null> {
    const known = this.chatKey.get(lid);
    if (known) return known;
    const client = this.client;
    if (!client?.getContactLidAndPhone || gen !== this.generation) return null;
    try {
      const [found] = await withTimeout(client.getContactLidAndPhone([lid]), 15_000, 'lid lookup');
      if (!found?.pn || !phoneOfWid(found.pn)) return null;
      this.learn(lid, found.pn);
      return found.pn;
    } catch (err) {
      this.d.log.warn({ err, numberId: this.d.numberId }, 'hidden id lookup failed');
      return null;
    }
  }

  private async identify(gen: number, lid: string): Promise<void> {
    if (this.identified.has(lid)) return;
    const pn = await this.lookupLid(gen, lid);
    const phone = pn ? phoneOfWid(pn) : null;
    if (!phone) return;
    this.identified.add(lid);
    await this.d.listener.onChatIdentified?.(lid, phone)?.catch((err: unknown) => this.d.log.warn({ err, numberId: this.d.numberId }, 'hidden id not recorded'));
  }

  private onAck(msg: WaMessage, ack: number): void {
    if (!msg.fromMe) return;
    const status = ackStatus(ack);
    if (!status) return;
    void this.d.listener
      .onAck(msg.id._serialized, status, status === 'failed' ? 'WhatsApp reported a delivery error' : undefined)
      .catch((err) => this.d.log.warn({ err, numberId: this.d.numberId }, 'ack not recorded'));
  }

  // ------------------------------------------------------------------ the port

  private readyClient(): { client: WaClient; gen: number } {
    if (this.closed || this.phase !== 'ready' || this.degraded || !this.client) throw new Error(NOT_READY);
    return { client: this.client, gen: this.generation };
  }

  async send(out: Outbound): Promise<{ waMessageId: string }> {
    const { client, gen } = this.readyClient();
    let target = out.chatId;
    try {
      if (out.chatId.endsWith('@c.us')) target = await this.resolveTarget(client, out.chatId);
      const options: WaSendOptions = { sendSeen: false };
      if (out.quotedWaMessageId) options.quotedMessageId = out.quotedWaMessageId;
      let content: string | ReturnType<typeof toWaMedia>;
      if (out.media) {
        content = toWaMedia(out.media.mimetype, out.media.data, out.media.filename);
        if (out.text) options.caption = out.text;
        if (out.type === 'voice' || out.ptt) options.sendAudioAsVoice = true;
        if (out.type === 'document') options.sendMediaAsDocument = true;
      } else {
        if (!out.text) throw new PermanentSendError('nothing to send: no text and no media');
        content = out.text;
      }
      const key = out.chatId;
      this.sending.set(key, (this.sending.get(key) ?? 0) + 1);
      let msg: WaMessage | null | undefined;
      try {
        msg = await withTimeout(client.sendMessage(target, content, options), this.d.timing.sendTimeoutMs, 'send');
      } finally {
        const n = (this.sending.get(key) ?? 1) - 1;
        if (n > 0) this.sending.set(key, n);
        else this.sending.delete(key);
      }
      if (!msg) throw new PermanentSendError('WhatsApp could not open this chat');
      const waMessageId = msg.id._serialized;
      // Where WhatsApp Web filed it (a hidden id, perhaps): later echoes of this chat are ours to match.
      this.learn(msg.id.remote, key);
      this.learn(msg.to, key);
      this.sent.set(waMessageId, {
        waMessageId,
        chatId: out.chatId,
        type: out.type,
        text: out.text,
        mediaSha256: out.media ? crypto.createHash('sha256').update(out.media.data).digest('hex') : null,
        timestamp: msg.timestamp ? msg.timestamp * 1000 : Date.now(),
      });
      // The message may already carry an ack whose event fired before we knew the id: report it
      // once the caller has linked the id (the domain also holds early acks briefly).
      const status = ackStatus(msg.ack);
      if (status) setImmediate(() => void this.d.listener.onAck(waMessageId, status).catch(() => {}));
      return { waMessageId };
    } catch (err) {
      if (!(err instanceof PermanentSendError)) {
        const now = Date.now();
        this.uncertain = this.uncertain.filter((u) => now - u.at < UNCERTAIN_MS).slice(-100);
        this.uncertain.push({ chatIds: [out.chatId, ...(target !== out.chatId ? [target] : [])], type: out.type, text: out.text, at: now });
      }
      this.failed(gen, err);
      throw err;
    }
  }

  private mapping(onDownloadError: 'throw' | 'unavailable') {
    return {
      mediaMaxBytes: this.d.mediaMaxBytes,
      downloadTimeoutMs: this.d.timing.downloadTimeoutMs,
      downloadRetryMs: this.d.timing.downloadRetryMs,
      onDownloadError,
    };
  }

  /**
   * The id to send to for a phone chat: getNumberId before the first message to it (not on
   * WhatsApp → a permanent failure), then remembered. The chat's hidden id is looked up at the
   * same time, so the echo of the send can be matched even when it is addressed to the lid.
   */
  private async resolveTarget(client: WaClient, chatId: string): Promise<string> {
    const cached = this.resolved.get(chatId);
    if (cached) return cached;
    const wid = await withTimeout(client.getNumberId(chatId.split('@')[0]!), this.d.timing.sendTimeoutMs, 'number lookup');
    if (!wid) throw new PermanentSendError('not on WhatsApp');
    const target = wid._serialized;
    this.learn(target, chatId);
    if (client.getContactLidAndPhone) {
      try {
        const [ids] = await withTimeout(client.getContactLidAndPhone([target]), 5_000, 'lid lookup');
        this.learn(ids?.lid, chatId);
      } catch (err) {
        this.d.log.warn({ err, numberId: this.d.numberId }, 'hidden id lookup failed');
      }
    }
    this.resolved.set(chatId, target);
    return target;
  }

  /** An own message that may be the echo of a send whose outcome we never learned. */
  private isUncertainSend(m: WaMessage): boolean {
    if (!m.fromMe || this.uncertain.length === 0) return false;
    const at = m.timestamp * 1000;
    const type = messageType(m.type);
    const keys = this.echoKeys(m);
    return this.uncertain.some(
      (u) => u.chatIds.some((c) => keys.includes(this.keyOf(c))) && u.type === type && (u.text ?? '') === (m.body ?? '') && Math.abs(at - u.at) < UNCERTAIN_MS,
    );
  }

  async *fetchSince(since: Date): AsyncIterable<Inbound> {
    const { client, gen } = this.readyClient();
    const from = since.getTime();
    const ms = this.d.timing.sendTimeoutMs;
    try {
      const chats = await withTimeout(client.getChats(), ms, 'chat list');
      for (const chat of chats) {
        const chatId = chat.id._serialized;
        if (!isPersonalChat(chatId) || (chat.timestamp ?? 0) * 1000 < from) continue;
        const messages = await withTimeout(chat.fetchMessages({ limit: 200 }), ms, 'message list');
        for (const m of messages) {
          if (m.timestamp * 1000 < from || this.sent.has(m.id._serialized) || this.isUncertainSend(m)) continue;
          // A download that keeps failing on a fresh page ends as unavailable here: one bad
          // message must not block every catch-up after it. A page gone still throws.
          const inb = await toInbound(m, this.mapping('unavailable'));
          if (inb?.mediaUnavailable && m.hasMedia) this.d.log.warn({ numberId: this.d.numberId, waMessageId: inb.waMessageId }, 'catch-up: media unavailable');
          if (inb) yield inb;
        }
      }
    } catch (err) {
      this.failed(gen, err);
      throw err;
    }
  }

  /** A page call failed: a page gone (closed, hung, WWebJS missing) is reconnected. */
  private failed(gen: number, err: unknown): void {
    if (isPageGone(err)) this.lost(gen, err instanceof Error ? err.message : String(err));
  }

  async recentSent(chatId: string, since: Date): Promise<SentRecord[]> {
    const { client, gen } = this.readyClient();
    const ms = this.d.timing.sendTimeoutMs;
    let messages: WaMessage[];
    try {
      const chat = await withTimeout(client.getChatById(chatId), ms, 'chat lookup');
      if (!chat) return [];
      messages = await withTimeout(chat.fetchMessages({ limit: 50, fromMe: true }), ms, 'message list');
    } catch (err) {
      this.failed(gen, err);
      throw err;
    }
    const out: SentRecord[] = [];
    for (const m of messages) {
      const at = m.timestamp * 1000;
      if (!m.fromMe || at < since.getTime()) continue;
      const known = this.sent.get(m.id._serialized);
      if (known) {
        out.push(known);
        continue;
      }
      const type = messageType(m.type) ?? 'other';
      out.push({ waMessageId: m.id._serialized, chatId, type, text: m.body || null, mediaSha256: null, timestamp: at });
    }
    return out;
  }

  async markSeen(chatId: string): Promise<void> {
    const { client, gen } = this.readyClient();
    try {
      await withTimeout(client.sendSeen(chatId), this.d.timing.sendTimeoutMs, 'mark seen');
    } catch (err) {
      this.failed(gen, err);
      throw err;
    }
  }
}
