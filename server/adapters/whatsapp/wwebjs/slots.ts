/**
 * The cap on browsers running at once (WA_MAX_SESSIONS). Numbers beyond it wait in order; a
 * waiter that is closed meanwhile leaves the queue.
 */
export class Slots<T> {
  private readonly holders = new Set<T>();
  private readonly queue: { owner: T; resolve: (got: boolean) => void }[] = [];

  constructor(readonly max: number) {}

  get used(): number {
    return this.holders.size;
  }

  holds(owner: T): boolean {
    return this.holders.has(owner);
  }

  /** Position in the queue (1 = next), or 0 when not waiting. */
  position(owner: T): number {
    return this.queue.findIndex((w) => w.owner === owner) + 1;
  }

  /** Resolves true with a slot, false if cancelled while waiting. `queued` is told when it must wait. */
  acquire(owner: T, queued?: (position: number) => void): Promise<boolean> {
    if (this.holders.has(owner)) return Promise.resolve(true);
    if (this.holders.size < this.max && this.queue.length === 0) {
      this.holders.add(owner);
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      this.queue.push({ owner, resolve });
      queued?.(this.queue.length);
    });
  }

  release(owner: T): void {
    this.cancel(owner);
    if (!this.holders.delete(owner)) return;
    this.pump();
  }

  cancel(owner: T): void {
    const i = this.queue.findIndex((w) => w.owner === owner);
    if (i >= 0) this.queue.splice(i, 1)[0]!.resolve(false);
  }

  private pump(): void {
    while (this.holders.size < this.max && this.queue.length > 0) {
      const next = this.queue.shift()!;
      this.holders.add(next.owner);
      next.resolve(true);
    }
  }
}
