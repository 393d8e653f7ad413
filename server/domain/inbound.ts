import type { DomainContext } from './context';
import { phoneOfChatId } from './phone';
import type { Inbound, MediaStore } from './ports';
import type { MediaRef, WaNumber } from './types';

export const JOB_CRM_MIRROR = 'crm.mirror';
export const JOB_CRM_ALERT = 'crm.alert';

async function storeMedia(media: MediaStore, inb: Inbound): Promise<MediaRef | null> {
  if (!inb.media) return null;
  return media.put(inb.media.data, inb.media.mimetype);
}

/**
 * The inbound path. Every message the engine reports, live or in a catch-up, comes through here;
 * the unique (number, WhatsApp id) constraint makes a repeat a no-op, so the engine may report a
 * message as often as it likes.
 */
export class InboundPipeline {
  constructor(private readonly ctx: DomainContext) {}

  async receive(number: WaNumber, inb: Inbound): Promise<boolean> {
    const { db, clock } = this.ctx;
    // Cheap pre-check so a catch-up over known messages does not re-store their media.
    if (await db.repos.messages.findByWaId(number.id, inb.waMessageId)) {
      this.ctx.metrics.message(inb.fromMe ? 'out' : 'in', 'duplicate');
      return false;
    }
    let mediaRef: MediaRef | null = null;
    let mediaNote: string | null = inb.mediaUnavailable ? 'media unavailable' : null;
    try {
      mediaRef = await storeMedia(this.ctx.media, inb);
    } catch (err) {
      // Over the size cap (or unreadable): keep the message, say why the file is missing.
      mediaNote = `media not stored: ${(err as Error).message}`;
    }
    const now = clock.now();
    const result = await db.transaction(async (r) => {
      const contact = await r.contacts.upsert(number.portalId, {
        waId: inb.chatId,
        phone: inb.phone ?? phoneOfChatId(inb.chatId),
        name: inb.fromMe ? null : inb.name,
      });
      const conversation = await r.conversations.upsert(number.portalId, number.id, contact.id);
      const message = await r.messages.insertInboundOnce({
        portalId: number.portalId,
        conversationId: conversation.id,
        numberId: number.id,
        direction: inb.fromMe ? 'out' : 'in',
        type: inb.type,
        text: inb.text,
        status: inb.fromMe ? 'sent' : 'delivered',
        error: mediaNote,
        waMessageId: inb.waMessageId,
        mediaId: mediaRef?.id ?? null,
        mediaFilename: inb.media?.filename ?? null,
        ptt: inb.ptt ?? false,
        fromPhone: inb.fromMe ?? false,
        createdAt: inb.timestamp || now,
      });
      if (!message) return null;
      const touched = await r.conversations.touch(conversation.id, message.createdAt, inb.fromMe ? 0 : 1);
      await r.jobs.enqueue({ kind: JOB_CRM_MIRROR, portalId: number.portalId, payload: { messageId: message.id } });
      if (!inb.fromMe) {
        await r.jobs.enqueue({ kind: JOB_CRM_ALERT, portalId: number.portalId, payload: { messageId: message.id } });
      }
      return { message, conversation: touched };
    });
    if (!result) {
      this.ctx.metrics.message(inb.fromMe ? 'out' : 'in', 'duplicate');
      return false;
    }
    this.ctx.metrics.message(inb.fromMe ? 'out' : 'in', 'stored');
    this.ctx.live.publish(number.portalId, { type: 'message', conversationId: result.conversation.id, message: result.message });
    this.ctx.live.publish(number.portalId, {
      type: 'conversation',
      conversationId: result.conversation.id,
      unreadCount: result.conversation.unreadCount,
      lastMessageAt: result.conversation.lastMessageAt,
    });
    this.ctx.wakeJobs();
    return true;
  }

  async revoked(number: WaNumber, waMessageId: string): Promise<void> {
    const msg = await this.ctx.db.repos.messages.markRevoked(number.id, waMessageId);
    if (msg) this.ctx.live.publish(number.portalId, { type: 'message', conversationId: msg.conversationId, message: msg });
  }
}
