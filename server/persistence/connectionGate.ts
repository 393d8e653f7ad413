import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Who may use SQLite's one connection, and in which order.
 *
 * The server keeps a single SQLite connection (SQLite has one writer; a second connection would
 * wait on the file lock by polling). What made that connection the bottleneck was not SQLite but
 * the event loop: a query holds the connection until its result has been picked up by the loop,
 * and on a busy server that wait is most of the hold. So:
 *
 * - Plain statements *share* the connection: up to `MAX_SHARED` are in the driver at once (SQLite
 *   runs them one after another on its own mutex), so their waits for the loop overlap. Each is
 *   its own autocommit transaction, exactly as before.
 * - A transaction takes the connection *exclusively* (BEGIN … COMMIT must not take in anybody
 *   else's statements), once the shared statements in flight have finished.
 * - Foreground work (requests, sends, engine events) goes before background jobs (CRM mirroring,
 *   alerts, licence ticks), which still get at least every `BACKGROUND_EVERY`th turn, so a busy
 *   foreground never starves them. Background is marked with `inBackground` by the job lanes.
 *
 * Measured with `npm run bench`: with a plain FIFO and one holder at a time, outbound sends at
 * 100 messages/s fell behind by seconds.
 */

const background = new AsyncLocalStorage<true>();

/** Runs `fn` with its database work marked as background (a job lane does this for its jobs). */
export function inBackground<T>(fn: () => Promise<T>): Promise<T> {
  return background.run(true, fn);
}

export type GateMode = 'shared' | 'exclusive';

const BACKGROUND_EVERY = 4;
// A few at a time: they all wait on one SQLite mutex, and each blocks a libuv pool thread (shared
// with file and crypto work) while it waits.
const MAX_SHARED = 3;

interface Waiter {
  mode: GateMode;
  grant: () => void;
}

export class ConnectionGate {
  private shared = 0;
  private exclusive = false;
  private readonly foreground: Waiter[] = [];
  private readonly backgroundQueue: Waiter[] = [];
  private foregroundTurns = 0;

  /** Resolves when the caller may use the connection in `mode`; then call `release()` once. */
  acquire(mode: GateMode): Promise<void> {
    if (this.foreground.length === 0 && this.backgroundQueue.length === 0 && this.fits(mode)) {
      this.take(mode);
      return Promise.resolve();
    }
    return new Promise((grant) => (background.getStore() ? this.backgroundQueue : this.foreground).push({ mode, grant }));
  }

  /** Gives back what the caller holds (the gate knows which: exclusive excludes everything else). */
  release(): void {
    if (this.exclusive) this.exclusive = false;
    else this.shared--;
    this.pump();
  }

  private fits(mode: GateMode): boolean {
    if (this.exclusive) return false;
    return mode === 'exclusive' ? this.shared === 0 : this.shared < MAX_SHARED;
  }

  private take(mode: GateMode): void {
    if (mode === 'exclusive') this.exclusive = true;
    else this.shared++;
  }

  // Grants waiters in order while the next one fits. The next one blocks those behind it (a
  // transaction is not overtaken for ever by a stream of statements).
  private pump(): void {
    for (;;) {
      const queue = this.nextQueue();
      const head = queue?.[0];
      if (!queue || !head || !this.fits(head.mode)) return;
      queue.shift();
      this.foregroundTurns = queue === this.foreground ? this.foregroundTurns + 1 : 0;
      this.take(head.mode);
      head.grant();
    }
  }

  private nextQueue(): Waiter[] | null {
    const fg = this.foreground.length > 0;
    const bg = this.backgroundQueue.length > 0;
    if (bg && (!fg || this.foregroundTurns >= BACKGROUND_EVERY - 1)) return this.backgroundQueue;
    return fg ? this.foreground : null;
  }
}
