import crypto from 'node:crypto';
import type { LivePublisher } from '../domain/ports';
import type { LiveEvent } from '../domain/types';

export interface StoredEvent {
  id: string;
  seq: number;
  event: LiveEvent;
}

type Subscriber = (e: StoredEvent) => void;

/**
 * Per-portal fan-out of live events to SSE clients, with a short replay buffer so a client that
 * reconnects with Last-Event-ID gets what it missed. Ids are `<boot>-<seq>`: after a restart the
 * old boot id is unknown and the client is told to reload instead of silently missing events.
 */
export class LiveHub implements LivePublisher {
  readonly boot = crypto.randomBytes(4).toString('hex');
  private seq = 0;
  private readonly buffers = new Map<number, StoredEvent[]>();
  private readonly subs = new Map<number, Set<Subscriber>>();

  constructor(private readonly bufferSize = 1000) {}

  publish(portalId: number, event: LiveEvent): void {
    const seq = ++this.seq;
    const stored: StoredEvent = { id: `${this.boot}-${seq}`, seq, event };
    let buf = this.buffers.get(portalId);
    if (!buf) this.buffers.set(portalId, (buf = []));
    buf.push(stored);
    if (buf.length > this.bufferSize) buf.splice(0, buf.length - this.bufferSize);
    for (const s of this.subs.get(portalId) ?? []) s(stored);
  }

  subscribe(portalId: number, fn: Subscriber): () => void {
    let set = this.subs.get(portalId);
    if (!set) this.subs.set(portalId, (set = new Set()));
    set.add(fn);
    return () => set!.delete(fn);
  }

  /** Events after `lastEventId`, or null when they cannot be replayed (unknown boot, too old). */
  since(portalId: number, lastEventId: string): StoredEvent[] | null {
    const m = /^([a-f0-9]+)-(\d+)$/.exec(lastEventId);
    if (!m || m[1] !== this.boot) return null;
    const after = Number(m[2]);
    const buf = this.buffers.get(portalId) ?? [];
    if (buf.length > 0 && buf[0]!.seq > after + 1 && after < this.seq) {
      // Some events between `after` and the buffer's start may have been this portal's: gone.
      const dropped = buf.length >= this.bufferSize;
      if (dropped) return null;
    }
    return buf.filter((e) => e.seq > after);
  }

  clientCount(): number {
    let n = 0;
    for (const s of this.subs.values()) n += s.size;
    return n;
  }
}
