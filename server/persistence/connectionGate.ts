import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Who gets SQLite's one connection next: foreground work (HTTP requests, sends, engine events)
 * before background jobs (CRM mirroring, alerts, licence ticks).
 *
 * SQLite has a single writer, so the server keeps one connection and every query waits its turn.
 * With a plain FIFO, sixteen CRM jobs draining a backlog put sixteen queries ahead of each step of
 * a manager's send: at 100 messages/s the send path fell behind by seconds (`npm run bench`). Here
 * a foreground waiter goes first, and a background waiter is still served at least every
 * `BACKGROUND_EVERY`th turn, so a busy foreground never starves the jobs.
 */

const background = new AsyncLocalStorage<true>();

/** Runs `fn` with its database work marked as background (a job lane does this for its jobs). */
export function inBackground<T>(fn: () => Promise<T>): Promise<T> {
  return background.run(true, fn);
}

const BACKGROUND_EVERY = 4;

export class ConnectionGate {
  private busy = false;
  private readonly foreground: (() => void)[] = [];
  private readonly backgroundQueue: (() => void)[] = [];
  private foregroundTurns = 0;

  /** Resolves when the caller may use the connection; call `release()` when done with it. */
  acquire(): Promise<void> {
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => (background.getStore() ? this.backgroundQueue : this.foreground).push(resolve));
  }

  release(): void {
    const takeBackground =
      this.backgroundQueue.length > 0 && (this.foreground.length === 0 || this.foregroundTurns >= BACKGROUND_EVERY - 1);
    const next = takeBackground ? this.backgroundQueue.shift() : this.foreground.shift();
    if (!next) {
      this.busy = false;
      return;
    }
    this.foregroundTurns = takeBackground ? 0 : this.foregroundTurns + 1;
    next(); // the connection passes straight to the next waiter: `busy` stays true
  }
}
