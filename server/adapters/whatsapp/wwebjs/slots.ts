/**
 * The cap on browsers running at once (WA_MAX_SESSIONS). Numbers beyond it wait in order; a
 * waiter that is closed meanwhile leaves the queue. Waiters are told their position whenever it
 * changes (the settings tab shows it).
 */
export class Slots<T> {
  private readonly holders = new Set<T>();
  private readonly queue: { owner: T; resolve: (got: boolean) => void; onPosition?: (position: number) => void; position: number }[] = [];

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

  /**
   * Resolves true with a slot, false if cancelled while waiting. `queued` is told the position
   * when the owner must wait, and again each time it moves up.
   */
  acquire(owner: T, queued?: (position: number) => void): Promise<boolean> {
    if (this.holders.has(owner)) return Promise.resolve(true);
    if (this.holders.size < this.max && this.queue.length === 0) {
      this.holders.add(owner);
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const position = this.queue.length + 1;
      this.queue.push({ owner, resolve, onPosition: queued, position });
      queued?.(position);
    });
  }

  /** Takes a free slot now (or keeps the one held); false when that would mean waiting. */
  tryAcquire(owner: T): boolean {
    if (this.holders.has(owner)) return true;
    if (this.holders.size >= this.max || this.queue.length > 0) return false;
    this.holders.add(owner);
    return true;
  }

  release(owner: T): void {
    this.cancel(owner);
    if (!this.holders.delete(owner)) return;
    this.pump();
  }

  cancel(owner: T): void {
    const i = this.queue.findIndex((w) => w.owner === owner);
    if (i < 0) return;
    this.queue.splice(i, 1)[0]!.resolve(false);
    this.renumber();
  }

  private pump(): void {
    let moved = false;
    while (this.holders.size < this.max && this.queue.length > 0) {
      const next = this.queue.shift()!;
      this.holders.add(next.owner);
      next.resolve(true);
      moved = true;
    }
    if (moved) this.renumber();
  }

  private renumber(): void {
    this.queue.forEach((w, i) => {
      if (w.position === i + 1) return;
      w.position = i + 1;
      w.onPosition?.(w.position);
    });
  }
}
