import type { ConversationView, MediaStore } from '../domain/ports';
import type { LiveEvent, HistoryMessage, WaNumber } from '../domain/types';

// The JSON shapes the widget API speaks. Media appear as signed, expiring URLs.

export function presentMessage(m: HistoryMessage, media: MediaStore) {
  return {
    id: m.id,
    conversationId: m.conversationId,
    direction: m.direction,
    type: m.type,
    text: m.revoked ? null : m.text,
    status: m.status,
    error: m.error ?? undefined,
    createdAt: new Date(m.createdAt).toISOString(),
    media: m.media && !m.revoked
      ? { url: media.url(m.media), mimetype: m.media.mimetype, size: m.media.size, filename: m.media.filename }
      : undefined,
    ptt: m.ptt || undefined,
    fromPhone: m.fromPhone || undefined,
    revoked: m.revoked || undefined,
    quotedMessageId: m.quotedMessageId ?? undefined,
  };
}

export function presentNumber(n: WaNumber) {
  return {
    id: n.id,
    phone: n.phone,
    state: n.state,
    stateDetail: n.stateDetail,
    qr: n.state === 'qr' ? n.qr : null,
    lastReadyAt: n.lastReadyAt ? new Date(n.lastReadyAt).toISOString() : null,
  };
}

export function presentConversation(c: ConversationView, media: MediaStore) {
  return {
    id: c.id,
    numberId: c.numberId,
    numberPhone: c.numberPhone,
    phone: c.phone,
    waId: c.waId,
    name: c.name,
    unreadCount: c.unreadCount,
    lastMessageAt: c.lastMessageAt ? new Date(c.lastMessageAt).toISOString() : null,
    lastMessage: c.lastMessage ? presentMessage(c.lastMessage, media) : null,
  };
}

export function presentEvent(e: LiveEvent, media: MediaStore): { name: string; data: unknown } {
  switch (e.type) {
    case 'message':
      return { name: 'message', data: presentMessage(e.message, media) };
    case 'status':
      return { name: 'status', data: { messageId: e.messageId, conversationId: e.conversationId, status: e.status, error: e.error ?? undefined } };
    case 'conversation':
      return {
        name: 'conversation',
        data: { id: e.conversationId, unreadCount: e.unreadCount, lastMessageAt: e.lastMessageAt ? new Date(e.lastMessageAt).toISOString() : null },
      };
    case 'number':
      return { name: 'number', data: presentNumber(e.number) };
    case 'alert':
      return { name: 'alert', data: { id: e.alertId, userIds: e.userIds, text: e.text, link: e.link } };
    case 'licence':
      return { name: 'licence', data: e.licence };
  }
}
