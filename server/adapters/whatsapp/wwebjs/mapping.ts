// whatsapp-web.js messages and acks → the port's vocabulary.
import type { AckStatus, Inbound, InboundMedia } from '../../../domain/ports';
import type { MessageType } from '../../../domain/types';
import type { WaMessage } from './client';
import { isPageGone, MediaDownloadError, withTimeout } from './errors';

/** whatsapp-web.js `MessageAck`. */
export const MessageAck = { ACK_ERROR: -1, ACK_PENDING: 0, ACK_SERVER: 1, ACK_DEVICE: 2, ACK_READ: 3, ACK_PLAYED: 4 } as const;

/** ACK levels → statuses (DESIGN §4); ACK_PENDING means "not yet on the server" and reports nothing. */
export function ackStatus(ack: number): AckStatus | null {
  switch (ack) {
    case MessageAck.ACK_SERVER:
      return 'sent';
    case MessageAck.ACK_DEVICE:
      return 'delivered';
    case MessageAck.ACK_READ:
      return 'read';
    case MessageAck.ACK_PLAYED:
      return 'played';
    case MessageAck.ACK_ERROR:
      return 'failed';
    default:
      return null;
  }
}

const TYPES: Record<string, MessageType> = {
  chat: 'text',
  ptt: 'voice',
  audio: 'audio',
  image: 'image',
  video: 'video',
  document: 'document',
  sticker: 'sticker',
  location: 'location',
  vcard: 'other',
  multi_vcard: 'other',
  poll_creation: 'other',
};

/** The message kinds that are conversation content; notifications, reactions, ciphertext, etc. are not. */
export function messageType(waType: string): MessageType | null {
  return TYPES[waType] ?? null;
}

/** One-to-one chats only: groups, broadcasts, status updates and channels are outside the CRM's model. */
export function isPersonalChat(chatId: string): boolean {
  return /@(c\.us|lid)$/.test(chatId);
}

export function phoneOfWid(wid: string): string | null {
  const m = /^(\d{8,15})@c\.us$/.exec(wid);
  return m ? '+' + m[1] : null;
}

/** The other side of a message: the sender for inbound, the recipient for our own. */
export function chatIdOfMessage(msg: WaMessage): string {
  return msg.fromMe ? msg.to : msg.from;
}

const MEDIA_TYPES = new Set<MessageType>(['image', 'video', 'audio', 'voice', 'document', 'sticker']);

export interface MappingOptions {
  mediaMaxBytes: number;
  /** One downloadMedia() call may take this long (default 2 min): a page that stopped answering. */
  downloadTimeoutMs?: number;
  /** Attempts for a download that throws (not page gone) before giving up (default 3). */
  downloadAttempts?: number;
  /** Pause before the second attempt, doubled after (default 1 s). */
  downloadRetryMs?: number;
  /**
   * What a download that kept throwing (page still there) becomes: an error (default; the message
   * is not stored and comes back) or media shown unavailable (the catch-up's last word).
   */
  onDownloadError?: 'throw' | 'unavailable';
}

/**
 * Builds the port's Inbound, downloading media at once (WhatsApp's copy expires). Returns null
 * for messages that are not conversation content.
 *
 * Media is "unavailable" only when WhatsApp says so: downloadMedia() resolving undefined (expired,
 * 404, error stage) or null (message not found, REUPLOADING), or when it is over the size cap. A
 * download that throws is not an answer: it is retried, then a MediaDownloadError is thrown (the
 * message is not stored; the session reconnects on a page-gone error and the catch-up brings it
 * back). Page-gone errors, including a download that timed out, are thrown at once.
 */
export async function toInbound(msg: WaMessage, opts: MappingOptions): Promise<Inbound | null> {
  const type = messageType(msg.type);
  if (!type || msg.isStatus) return null;
  const chatId = chatIdOfMessage(msg);
  if (!isPersonalChat(chatId)) return null;

  let media: InboundMedia | null = null;
  let mediaUnavailable = false;
  if (msg.hasMedia) {
    const declared = msg._data?.size ?? null;
    if (declared !== null && declared > opts.mediaMaxBytes) {
      mediaUnavailable = true; // too big to keep: shown as unavailable, the text still arrives
    } else {
      const got = await download(msg, opts);
      if (got === 'gave up') {
        mediaUnavailable = true;
      } else if (got && got.data) {
        const data = Buffer.from(got.data, 'base64');
        if (data.length > opts.mediaMaxBytes) mediaUnavailable = true;
        else media = { data, mimetype: got.mimetype, filename: got.filename ?? msg._data?.filename ?? null };
      } else {
        mediaUnavailable = true; // WhatsApp no longer has it (undefined/null): no retry loop
      }
    }
  }

  let text: string | null = msg.body ? msg.body : null;
  if (type === 'location' && msg.location) {
    const l = msg.location;
    const label = [l.name, l.address, l.description].filter(Boolean).join(', ');
    text = `${label ? label + ' ' : ''}https://maps.google.com/?q=${l.latitude},${l.longitude}`;
  }
  if (MEDIA_TYPES.has(type)) {
    // For media, body is the caption; without a download path it may hold a base64 thumbnail instead.
    text = msg.hasMedia ? msg.body || null : msg._data?.caption || null;
    if (!msg.hasMedia) mediaUnavailable = true;
  }

  let quotedWaMessageId: string | null = null;
  if (msg.hasQuotedMsg && msg.getQuotedMessage) {
    try {
      quotedWaMessageId = (await msg.getQuotedMessage())?.id._serialized ?? null;
    } catch {
      quotedWaMessageId = null;
    }
  }

  return {
    waMessageId: msg.id._serialized,
    chatId,
    phone: phoneOfWid(chatId),
    name: msg.fromMe ? null : msg._data?.notifyName ?? null,
    type,
    text,
    media,
    ...(mediaUnavailable ? { mediaUnavailable: true } : {}),
    ptt: type === 'voice',
    timestamp: msg.timestamp * 1000,
    ...(msg.fromMe ? { fromMe: true } : {}),
    quotedWaMessageId,
  };
}

async function download(msg: WaMessage, opts: MappingOptions): Promise<Awaited<ReturnType<WaMessage['downloadMedia']>> | 'gave up'> {
  const attempts = Math.max(1, opts.downloadAttempts ?? 3);
  let pause = opts.downloadRetryMs ?? 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await withTimeout(msg.downloadMedia(), opts.downloadTimeoutMs ?? 120_000, 'media download');
    } catch (err) {
      const gone = isPageGone(err);
      if (gone || attempt >= attempts) {
        if (!gone && opts.onDownloadError === 'unavailable') return 'gave up';
        throw new MediaDownloadError(err, gone);
      }
      await new Promise((r) => setTimeout(r, pause));
      pause *= 2;
    }
  }
}
