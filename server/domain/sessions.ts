import type { DomainContext } from './context';
import { AppError, badRequest, notFound } from './errors';
import { InboundPipeline } from './inbound';
import { JOB_SEND, type OutboundService, type SessionLookup } from './outbound';
import type { SessionListener, WhatsAppEngine, WhatsAppSession } from './ports';
import type { NumberState, Principal, WaNumber } from './types';

export const JOB_NUMBER_ALERT = 'number.alert';

/** Catch-up looks this far before the last moment the session was known to be up. */
const CATCHUP_MARGIN_MS = 2 * 60_000;
/** How often a ready session records that it is still up (the catch-up starting point). */
const HEARTBEAT_MS = 30_000;

interface Live {
  number: WaNumber;
  session: WhatsAppSession | null;
  state: NumberState;
  /** Set while a catch-up runs, so a second `ready` does not start another. */
  catchingUp: Promise<void> | null;
  /**
   * Whether `last_ready_at` may move on. It is the mark the next catch-up starts from, so it
   * stays put from a `ready` until that ready's catch-up has succeeded: a catch-up that fails, or
   * a process that dies during it, leaves the gap to the next one.
   */
  caughtUp: boolean;
}

/** Number limit and licence checks for connecting a number; the licence issue plugs in here. */
export type ConnectGuard = (portalId: number) => Promise<void>;

/** Turns the engine's QR payload into what widgets show (an image data URL). */
export type QrRenderer = (payload: string) => Promise<string>;

/**
 * Owns one engine session per connected number: opens and restores them, follows their states,
 * catches up after a gap, and routes their events into the inbound and outbound paths.
 */
export class SessionManager implements SessionLookup {
  private readonly live = new Map<number, Live>();
  private heartbeat: NodeJS.Timeout | null = null;
  private closing = false;
  private outbound: OutboundService | null = null;
  readonly inbound: InboundPipeline;

  constructor(
    private readonly ctx: DomainContext,
    private readonly engine: WhatsAppEngine,
    private readonly renderQr: QrRenderer,
    private readonly connectGuard: ConnectGuard = async () => {},
  ) {
    this.inbound = new InboundPipeline(ctx);
  }

  /** Whether a portal's sessions may run (the licence closes them some days after access ends). */
  private mayRun: (portalId: number) => Promise<boolean> = async () => true;

  setRunFilter(fn: (portalId: number) => Promise<boolean>): void {
    this.mayRun = fn;
  }

  /**
   * Closes every session of a portal keeping its login (not a logout): the numbers show
   * `offline` with the reason and come back with `resumePortal`, without a new QR.
   */
  async pausePortal(portalId: number, reason: string): Promise<number> {
    const entries = [...this.live.values()].filter((l) => l.number.portalId === portalId);
    for (const l of entries) {
      this.live.delete(l.number.id);
      await l.session?.close().catch((err) => this.ctx.log.warn({ err, numberId: l.number.id }, 'engine close failed'));
    }
    for (const n of await this.ctx.db.repos.numbers.list(portalId)) {
      await this.ctx.db.repos.numbers.setState(n.id, 'offline', `paused: ${reason}`, null);
      await this.publishNumber(n.id);
    }
    return entries.length;
  }

  /** Opens again the sessions `pausePortal` closed (access is back). */
  async resumePortal(portalId: number): Promise<number> {
    let n = 0;
    for (const number of await this.ctx.db.repos.numbers.list(portalId)) {
      if (this.live.has(number.id)) continue;
      await this.open(number).catch((err) => this.ctx.log.error({ err, numberId: number.id }, 'reopen failed'));
      n++;
    }
    return n;
  }

  /** The outbound service receives acks; wired after both exist (they reference each other). */
  attach(outbound: OutboundService): void {
    this.outbound = outbound;
  }

  readySession(numberId: number): WhatsAppSession | null {
    const l = this.live.get(numberId);
    return l && l.state === 'ready' ? l.session : null;
  }

  stateOf(numberId: number): NumberState | null {
    return this.live.get(numberId)?.state ?? null;
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const l of this.live.values()) out[l.state] = (out[l.state] ?? 0) + 1;
    return out;
  }

  /** Opens every number that had a login (or was waiting for a QR) when the server stopped. */
  async restoreAll(): Promise<void> {
    const all = await this.ctx.db.repos.numbers.listRestorable();
    const allowed = new Map<number, boolean>();
    for (const n of all) if (!allowed.has(n.portalId)) allowed.set(n.portalId, await this.mayRun(n.portalId).catch(() => true));
    const numbers = all.filter((n) => allowed.get(n.portalId));
    await Promise.all(numbers.map((n) => this.open(n).catch((err) => this.ctx.log.error({ err, numberId: n.id }, 'restore failed'))));
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  async connect(p: Principal): Promise<WaNumber> {
    await this.connectGuard(p.portalId);
    const number = await this.ctx.db.repos.numbers.create(p.portalId);
    await this.ctx.db.repos.audit.append({ portalId: p.portalId, actor: `user:${p.userId}`, action: 'number.connect', details: { numberId: number.id } });
    await this.open(number);
    return (await this.ctx.db.repos.numbers.get(p.portalId, number.id))!;
  }

  /** Starts the session of a number that stopped (QR expired, failed): the admin's "try again". */
  async restart(p: Principal, numberId: number): Promise<WaNumber> {
    const number = await this.ctx.db.repos.numbers.get(p.portalId, numberId);
    if (!number) throw notFound('number');
    const l = this.live.get(numberId);
    if (l && (l.state === 'ready' || l.state === 'starting' || l.state === 'qr')) return number;
    if (!(await this.mayRun(p.portalId))) {
      // The licence's own refusal when it has one (403 suspended, 402 expired), else this one.
      await this.connectGuard(p.portalId);
      throw new AppError(402, 'licence_expired', 'the sessions of this portal are closed until its licence is paid');
    }
    if (l?.session) await l.session.close().catch(() => {});
    this.live.delete(numberId);
    await this.open(number);
    return (await this.ctx.db.repos.numbers.get(p.portalId, numberId))!;
  }

  async logout(p: Principal, numberId: number): Promise<void> {
    const number = await this.ctx.db.repos.numbers.get(p.portalId, numberId);
    if (!number) throw notFound('number');
    if (number.state === 'logged_out') throw badRequest('number is already logged out');
    const l = this.live.get(numberId);
    this.live.delete(numberId);
    if (l?.session) await l.session.logout().catch((err) => this.ctx.log.warn({ err, numberId }, 'engine logout failed'));
    await this.ctx.db.repos.numbers.setState(numberId, 'logged_out', 'disconnected by an admin', null);
    await this.ctx.db.repos.audit.append({ portalId: p.portalId, actor: `user:${p.userId}`, action: 'number.logout', details: { numberId } });
    await this.publishNumber(numberId);
  }

  /** Closes every session keeping its login (SIGTERM). */
  async closeAll(): Promise<void> {
    this.closing = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.beat();
    const all = [...this.live.values()];
    this.live.clear();
    await Promise.allSettled(all.map((l) => l.session?.close()));
    // Messages the engines reported before closing are still being written: let them land
    // before the database closes.
    await this.inbound.idle();
  }

  private async beat(): Promise<void> {
    const now = this.ctx.clock.now();
    for (const l of this.live.values()) {
      if (l.state === 'ready' && l.caughtUp) await this.ctx.db.repos.numbers.markReady(l.number.id, now).catch(() => {});
    }
  }

  private async open(number: WaNumber): Promise<void> {
    const entry: Live = { number, session: null, state: 'starting', catchingUp: null, caughtUp: false };
    this.live.set(number.id, entry);
    await this.ctx.db.repos.numbers.setState(number.id, 'starting', null, null);
    await this.publishNumber(number.id);
    try {
      entry.session = await this.engine.open(number.id, this.listenerFor(entry));
    } catch (err) {
      await this.setState(entry, 'failed', (err as Error).message, null);
    }
  }

  private listenerFor(entry: Live): SessionListener {
    const isCurrent = () => this.live.get(entry.number.id) === entry && !this.closing;
    return {
      onState: (state, detail) => {
        if (!isCurrent()) return;
        void this.onState(entry, state, detail).catch((err) => this.ctx.log.error({ err, numberId: entry.number.id }, 'state update failed'));
      },
      // Engines drop what these return (they have nobody to tell): a failure is logged here, and the
      // message comes back through the next catch-up, whose mark does not pass it.
      onInbound: async (msg) => {
        await this.inbound.receive(entry.number, msg).catch((err: unknown) => {
          this.ctx.log.error({ err, numberId: entry.number.id, waMessageId: msg.waMessageId }, 'inbound message not stored');
          entry.caughtUp = false;
          throw err;
        });
      },
      onAck: async (waMessageId, status, error) => {
        await this.outbound?.ack(entry.number.id, waMessageId, status, error).catch((err: unknown) => {
          this.ctx.log.warn({ err, numberId: entry.number.id, waMessageId, status }, 'ack not applied');
          throw err;
        });
      },
      onRevoked: async (waMessageId) => {
        await this.inbound.revoked(entry.number, waMessageId);
      },
      onChatIdentified: async (hiddenChatId, phone) => {
        await this.ctx.db.repos.contacts.identify(entry.number.portalId, hiddenChatId, phone);
      },
    };
  }

  private async onState(entry: Live, state: NumberState, detail?: { reason?: string; qr?: string; phone?: string }): Promise<void> {
    const id = entry.number.id;
    const was = entry.state;
    if (state === 'ready') {
      if (detail?.phone && detail.phone !== entry.number.phone) {
        await this.ctx.db.repos.numbers.setPhone(id, detail.phone);
        entry.number = { ...entry.number, phone: detail.phone };
      }
      // `ready` may fire again while already ready (WhatsApp Web re-syncs): nothing new to do.
      if (was === 'ready') return;
      const fresh = await this.ctx.db.repos.numbers.getAny(id);
      const since = fresh?.lastReadyAt ?? null;
      const readyAt = this.ctx.clock.now();
      await this.setState(entry, 'ready', null, null);
      // Sends that waited for this number go now, including those sleeping in a retry backoff.
      await this.ctx.db.repos.jobs.release(entry.number.portalId, [JOB_SEND], readyAt);
      this.ctx.wakeJobs(JOB_SEND);
      if (since === null) {
        // First login: nothing to catch up on.
        await this.ctx.db.repos.numbers.markReady(id, readyAt);
        entry.caughtUp = true;
      } else if (!entry.catchingUp) {
        entry.caughtUp = false;
        entry.catchingUp = this.catchUp(entry, new Date(since - CATCHUP_MARGIN_MS), readyAt).finally(() => (entry.catchingUp = null));
      }
      return;
    }
    const qr = state === 'qr' && detail?.qr ? await this.renderQr(detail.qr) : null;
    await this.setState(entry, state, detail?.reason ?? null, qr);
    if (was === 'ready' && (state === 'offline' || state === 'logged_out' || state === 'failed')) {
      this.ctx.metrics.sessionEvent('reconnect');
      await this.ctx.db.repos.jobs.enqueue({
        kind: JOB_NUMBER_ALERT,
        portalId: entry.number.portalId,
        payload: { numberId: id, state, reason: detail?.reason ?? null },
      });
      this.ctx.wakeJobs(JOB_NUMBER_ALERT);
    }
    if (state === 'logged_out') {
      // The phone unlinked us: the login is gone, so this number will not be restored.
      this.live.delete(id);
    }
  }

  private async catchUp(entry: Live, since: Date, readyAt: number): Promise<void> {
    const session = entry.session;
    if (!session) return;
    let n = 0;
    try {
      for await (const msg of session.fetchSince(since)) {
        if (await this.inbound.receive(entry.number, msg)) n++;
      }
      this.ctx.metrics.sessionEvent('catchup', n);
      if (n > 0) this.ctx.log.info({ numberId: entry.number.id, recovered: n }, 'catch-up stored missed messages');
      // Everything up to this ready is stored: the mark may move on.
      await this.ctx.db.repos.numbers.markReady(entry.number.id, readyAt);
      entry.caughtUp = true;
    } catch (err) {
      this.ctx.log.warn({ err, numberId: entry.number.id }, 'catch-up failed; it runs again at the next ready');
    }
  }

  private async setState(entry: Live, state: NumberState, detail: string | null, qr: string | null): Promise<void> {
    entry.state = state;
    await this.ctx.db.repos.numbers.setState(entry.number.id, state, detail, qr);
    await this.publishNumber(entry.number.id);
  }

  private async publishNumber(id: number): Promise<void> {
    const n = await this.ctx.db.repos.numbers.getAny(id);
    if (n) this.ctx.live.publish(n.portalId, { type: 'number', number: n });
  }
}
