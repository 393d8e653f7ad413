import type { Clock, Database, Job, JobLane } from './ports';

export interface JobHandler {
  run(job: Job): Promise<void>;
  /** Called once when the job is buried after its last attempt (e.g. to mark a message failed). */
  giveUp?(job: Job, error: Error): Promise<void>;
}

/** Thrown by a handler whose job can never succeed: it is buried at once, without more attempts. */
export class PermanentJobError extends Error {}

/**
 * Thrown by a handler whose job may not run yet (e.g. the portal's licence has no access): the
 * job goes back to pending until `runAt` without using up an attempt, so waiting never kills it.
 */
export class DeferJobError extends Error {
  constructor(
    message: string,
    readonly runAt: number,
  ) {
    super(message);
    this.name = 'DeferJobError';
  }
}

export interface JobRunnerOptions {
  worker: string;
  concurrency: number;
  leaseMs: number;
  /** Longest sleep between looks at the table when nobody wakes the runner. */
  pollMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** The kinds this runner takes (default: all). */
  lane?: JobLane;
  /**
   * Wraps each job's run, so the composition root can mark a lane's work (e.g. its database
   * queries as background, behind requests and sends). Default: runs it as it is.
   */
  around?: (run: () => Promise<void>) => Promise<void>;
}

export interface JobEvents {
  finished?(kind: string, outcome: 'done' | 'retry' | 'dead' | 'deferred'): void;
  error?(err: unknown, job?: Job): void;
}

/** Exponential backoff with jitter: spreads retries of many failed jobs instead of synchronising them. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * Durable job runner over the jobs table. Claims are leases: a job whose worker died is picked
 * up again when its lease runs out. In-process producers call `wake()` after their commit so
 * new work starts at once; otherwise the runner sleeps until the next due job or `pollMs`.
 */
export class JobRunner {
  private running = false;
  private inFlight = new Set<Promise<void>>();
  private readonly inHand = new Set<number>();
  private renewTimer: NodeJS.Timeout | null = null;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  /** There may be due work this runner has not claimed yet (see the slot-freed wake). */
  private backlog = true;
  private loopDone: Promise<void> | null = null;

  constructor(
    private readonly db: Database,
    private readonly handlers: Record<string, JobHandler>,
    private readonly opts: JobRunnerOptions,
    private readonly clock: Clock,
    private readonly events: JobEvents = {},
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
    // Leases are short so a dead worker's jobs come back soon; live workers keep renewing theirs.
    this.renewTimer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.opts.leaseMs / 3)));
    this.renewTimer.unref();
  }

  /** New work may be due. Without a kind, or with one of this lane's kinds, the runner looks. */
  wake(kind?: string): void {
    if (kind !== undefined && !this.takes(kind)) return;
    this.woken = true;
    this.wakeUp?.();
  }

  takes(kind: string): boolean {
    const lane = this.opts.lane;
    if (lane?.only?.length) return lane.only.includes(kind);
    if (lane?.except?.length) return !lane.except.includes(kind);
    return true;
  }

  /** Stops claiming and waits for the jobs in hand to finish. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loopDone;
    await Promise.allSettled([...this.inFlight]);
    if (this.renewTimer) clearInterval(this.renewTimer);
  }

  private async renew(): Promise<void> {
    if (this.inHand.size === 0) return;
    try {
      await this.db.repos.jobs.extendLease([...this.inHand], this.opts.worker, this.clock.now() + this.opts.leaseMs);
    } catch (err) {
      this.events.error?.(err);
    }
  }

  private async loop(): Promise<void> {
    // Refill in batches: claiming one job each time one finishes cost a claim (and an idle look-up)
    // per job under load. Wait for a quarter of the slots, or take work at once when idle.
    const batch = Math.max(1, Math.floor(this.opts.concurrency / 4));
    while (this.running) {
      let claimed: Job[] = [];
      const free = this.opts.concurrency - this.inFlight.size;
      const wasWoken = this.woken;
      this.woken = false;
      const claimNow = free >= batch || (free > 0 && this.inFlight.size === 0);
      if (claimNow) {
        this.backlog = false;
        try {
          claimed = await this.db.repos.jobs.claim(this.opts.worker, free, this.clock.now(), this.opts.leaseMs, this.opts.lane);
        } catch (err) {
          this.events.error?.(err);
          this.backlog = true;
        }
        if (claimed.length === free) this.backlog = true;
      } else if (wasWoken) {
        // Woken with no slot free: remember it for when one frees.
        this.backlog = true;
      }
      const around = this.opts.around ?? ((run: () => Promise<void>) => run());
      for (const job of claimed) {
        this.inHand.add(job.id);
        const p = around(() => this.execute(job)).finally(() => {
          this.inHand.delete(job.id);
          this.inFlight.delete(p);
          // A freed slot is worth a look only if there may be more due work: the last claim was
          // full, or a wake came while every slot was busy. Otherwise a look would find nothing
          // (new work wakes us itself, other processes' work is found by the poll).
          if (this.backlog) this.wake();
        });
        this.inFlight.add(p);
      }
      if (claimed.length > 0 && claimed.length === free) continue;
      if (!this.running) break;
      if (this.woken) continue;
      // Slots busy, or work just taken: a finishing job or new work wakes us, the poll finds the
      // rest. Nothing due at all: sleep until the next job that is due later (a retry, say).
      await this.sleep(claimNow && claimed.length === 0 ? await this.idleDelay() : this.opts.pollMs);
    }
  }

  private async idleDelay(): Promise<number> {
    try {
      const next = await this.db.repos.jobs.nextRunAt(this.opts.lane);
      if (next !== null) return Math.max(0, Math.min(this.opts.pollMs, next - this.clock.now()));
    } catch (err) {
      this.events.error?.(err);
    }
    return this.opts.pollMs;
  }

  private sleep(ms: number): Promise<void> {
    if (this.woken || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = null;
        done();
      };
    });
  }

  private async execute(job: Job): Promise<void> {
    const handler = this.handlers[job.kind];
    const jobs = this.db.repos.jobs;
    try {
      if (!handler) throw new PermanentJobError(`no handler for job kind ${job.kind}`);
      await handler.run(job);
      await jobs.complete(job.id, this.opts.worker);
      this.events.finished?.(job.kind, 'done');
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      if (err instanceof DeferJobError) {
        try {
          await jobs.defer(job.id, this.opts.worker, err.runAt, err.message);
          this.events.finished?.(job.kind, 'deferred');
        } catch (inner) {
          this.events.error?.(inner, job);
        }
        return;
      }
      try {
        if (err instanceof PermanentJobError || job.attempts >= job.maxAttempts) {
          await handler?.giveUp?.(job, err);
          await jobs.bury(job.id, this.opts.worker, err.message);
          this.events.finished?.(job.kind, 'dead');
        } else {
          const delay = backoffDelay(job.attempts, this.opts.backoffBaseMs, this.opts.backoffMaxMs);
          await jobs.retryLater(job.id, this.opts.worker, this.clock.now() + delay, err.message);
          this.events.finished?.(job.kind, 'retry');
        }
      } catch (inner) {
        // The lease will run out and the job will be claimed again: delayed, not lost.
        this.events.error?.(inner, job);
      }
      this.events.error?.(err, job);
    }
  }
}

/** Several runners (one per lane) started, woken and stopped together. */
export class RunnerGroup {
  constructor(private readonly runners: JobRunner[]) {}

  start(): void {
    for (const r of this.runners) r.start();
  }

  wake(kind?: string): void {
    for (const r of this.runners) r.wake(kind);
  }

  async stop(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.stop()));
  }
}
