import type { Clock } from '../../../domain/ports';

/**
 * A map whose entries count for `ttlMs` (on the given clock). Used for CRM facts that change
 * behind our back (which deal of a contact is open) and are asked for by every message: a short
 * life bounds how long we act on a stale answer. Expired entries are dropped as the map grows, so
 * a long-running server does not keep one per contact it ever saw.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; at: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly sweepAbove = 10_000,
  ) {}

  /** The value if it is still fresh; `undefined` otherwise (a cached `null` is a value). */
  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.clock.now() - e.at >= this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: V): void {
    const now = this.clock.now();
    if (this.entries.size >= this.sweepAbove) {
      for (const [k, e] of this.entries) if (now - e.at >= this.ttlMs) this.entries.delete(k);
    }
    this.entries.set(key, { value, at: now });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}
