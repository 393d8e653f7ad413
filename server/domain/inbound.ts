import type { DomainContext } from './context';
import { phoneOfChatId } from './phone';
import type { Inbound, JobSpec, MediaStore, Repositories } from './ports';
import type { Conversation, MediaRef, Message, WaNumber } from './types';

export const JOB_CRM_MIRROR = 'crm.mirror';
export const JOB_CRM_ALERT = 'crm.alert';

async function storeMedia(media: MediaStore, inb: Inbound): Promise<MediaRef | null> {
  if (!inb.media) return null;
  return media.put(inb.media.data, inb.media.mimetype);
}

/** A bounded map in insertion order, used as a small LRU. */
class BoundedCache<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
  clear(): void {
    this.map.clear();
  }
}

interface Pending {
  number: WaNumber;
  inb: Inbound;
  mediaRef: MediaRef | null;
  mediaNote: string | null;
  resolve(stored: boolean): void;
  reject(err: unknown): void;
}

type Stored = { message: Message; conversation: Conversation } | null;

const BATCH_MAX = 200;

/**
 * The inbound path. Every message the engine reports, live or in a catch-up, comes through here;
 * the unique (number, WhatsApp id) constraint makes a repeat a no-op, so the engine may report a
 * message as often as it likes.
 *
 * Writes are group-committed: messages that arrive while a transaction is running are stored
 * together in the next one. A quiet chat still gets a transaction of its own at once; a burst
 * pays for one commit per batch instead of one per message.
 */
export class InboundPipeline {
  // A busy chat sends many messages: its contact and conversation rows are looked up once, not
  // per message. Only ids (and the known name) are cached; they never change once created.
  private readonly contacts = new BoundedCache<{ id: number; name: string | null }>(50_000);
  private readonly conversations = new BoundedCache<number>(50_000);
  private queue: Pending[] = [];
  private writing = false;
  private drained: Promise<void> | null = null;

  constructor(private readonly ctx: DomainContext) {}

  async receive(number: WaNumber, inb: Inbound): Promise<boolean> {
    const direction = inb.fromMe ? 'out' : 'in';
    let mediaRef: MediaRef | null = null;
    let mediaNote: string | null = inb.mediaUnavailable ? 'media unavailable' : null;
    if (inb.media) {
      // Cheap pre-check so a catch-up over known messages does not re-store their media.
      if (await this.ctx.db.repos.messages.findByWaId(number.id, inb.waMessageId)) {
        this.ctx.metrics.message(direction, 'duplicate');
        return false;
      }
      try {
        mediaRef = await storeMedia(this.ctx.media, inb);
      } catch (err) {
        // Over the size cap (or unreadable): keep the message, say why the file is missing.
        mediaNote = `media not stored: ${(err as Error).message}`;
      }
    }
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ number, inb, mediaRef, mediaNote, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  /** Resolves once every message handed to `receive` so far is written (or has failed). */
  async idle(): Promise<void> {
    while (this.writing || this.queue.length > 0) await (this.drained ?? Promise.resolve());
  }

  private async drain(): Promise<void> {
    this.writing = true;
    let done!: () => void;
    this.drained = new Promise<void>((r) => (done = r));
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, BATCH_MAX);
        let results: (Stored | Error)[];
        try {
          results = await this.ctx.db.transaction(async (r) => {
            const out: Stored[] = [];
            for (const item of batch) out.push(await this.write(r, item));
            return out;
          });
        } catch {
          // One bad message must not sink the others: retry them one transaction each.
          this.forgetIds();
          results = [];
          for (const item of batch) {
            try {
              results.push(await this.ctx.db.transaction((r) => this.write(r, item)));
            } catch (err) {
              results.push(err instanceof Error ? err : new Error(String(err)));
            }
          }
        }
        batch.forEach((item, i) => {
          const res = results[i] ?? null;
          if (res instanceof Error) item.reject(res);
          else this.finish(item, res);
        });
      }
    } finally {
      this.writing = false;
      this.drained = null;
      done();
    }
  }

  private forgetIds(): void {
    // A cached id may point at a row deleted meanwhile (portal data erased) or never committed.
    this.contacts.clear();
    this.conversations.clear();
  }

  private async write(r: Repositories, item: Pending): Promise<Stored> {
    const { number, inb } = item;
    const name = inb.fromMe ? null : inb.name;
    const contactKey = `${number.portalId}|${inb.chatId}`;
    let contact = this.contacts.get(contactKey);
    if (contact === undefined || (name !== null && contact.name !== name)) {
      const row = await r.contacts.upsert(number.portalId, { waId: inb.chatId, phone: inb.phone ?? phoneOfChatId(inb.chatId), name });
      contact = { id: row.id, name: row.name };
      this.contacts.set(contactKey, contact);
    }
    const convKey = `${number.id}|${contact.id}`;
    let conversationId = this.conversations.get(convKey);
    if (conversationId === undefined) {
      conversationId = (await r.conversations.upsert(number.portalId, number.id, contact.id)).id;
      this.conversations.set(convKey, conversationId);
    }
    // Our own send, reported back after a crash cut the send job off before it learned the id:
    // it belongs to the waiting outbound message (whose job then finishes), not to a new copy.
    if (inb.fromMe && (await r.messages.adoptPendingSend(conversationId, inb.type, inb.text, inb.waMessageId)) !== null) return null;
    const message = await r.messages.insertInboundOnce({
      portalId: number.portalId,
      conversationId,
      numberId: number.id,
      direction: inb.fromMe ? 'out' : 'in',
      type: inb.type,
      text: inb.text,
      status: inb.fromMe ? 'sent' : 'delivered',
      error: item.mediaNote,
      waMessageId: inb.waMessageId,
      mediaId: item.mediaRef?.id ?? null,
      mediaFilename: inb.media?.filename ?? null,
      ptt: inb.ptt ?? false,
      fromPhone: inb.fromMe ?? false,
      createdAt: inb.timestamp || this.ctx.clock.now(),
    });
    if (!message) return null;
    const conversation = await r.conversations.touch(conversationId, message.createdAt, inb.fromMe ? 0 : 1);
    const jobs: JobSpec[] = [{ kind: JOB_CRM_MIRROR, portalId: number.portalId, payload: { messageId: message.id } }];
    if (!inb.fromMe) jobs.push({ kind: JOB_CRM_ALERT, portalId: number.portalId, payload: { messageId: message.id } });
    await r.jobs.enqueue(jobs);
    return { message, conversation };
  }

  private finish(item: Pending, stored: Stored): void {
    const direction = item.inb.fromMe ? 'out' : 'in';
    if (!stored) {
      this.ctx.metrics.message(direction, 'duplicate');
      item.resolve(false);
      return;
    }
    const portalId = item.number.portalId;
    this.ctx.metrics.message(direction, 'stored');
    this.ctx.live.publish(portalId, { type: 'message', conversationId: stored.conversation.id, message: stored.message });
    this.ctx.live.publish(portalId, {
      type: 'conversation',
      conversationId: stored.conversation.id,
      unreadCount: stored.conversation.unreadCount,
      lastMessageAt: stored.conversation.lastMessageAt,
    });
    this.ctx.wakeJobs(JOB_CRM_MIRROR);
    item.resolve(true);
  }

  async revoked(number: WaNumber, waMessageId: string): Promise<void> {
    const msg = await this.ctx.db.repos.messages.markRevoked(number.id, waMessageId);
    if (msg) this.ctx.live.publish(number.portalId, { type: 'message', conversationId: msg.conversationId, message: msg });
  }
}
