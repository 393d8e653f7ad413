// Row ↔ domain mapping shared by the repositories. SQLite hands back 0/1 for booleans and
// PostgreSQL true/false; both come through `bool`.
import type { Contact, Conversation, HistoryMessage, MediaRef, Message, WaNumber } from '../../domain/types';

export type Row = Record<string, unknown>;

export const bool = (v: unknown): boolean => v === true || v === 1 || v === '1';
export const num = (v: unknown): number => Number(v);
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
export const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export function toNumber(r: Row): WaNumber {
  return {
    id: num(r.id),
    portalId: num(r.portal_id),
    phone: strOrNull(r.phone),
    state: r.state as WaNumber['state'],
    stateDetail: strOrNull(r.state_detail),
    qr: strOrNull(r.qr),
    lastReadyAt: numOrNull(r.last_ready_at),
    createdAt: num(r.created_at),
  };
}

export function toContact(r: Row): Contact {
  return {
    id: num(r.id),
    portalId: num(r.portal_id),
    phone: strOrNull(r.phone),
    waId: String(r.wa_id),
    name: strOrNull(r.name),
    crmEntityType: strOrNull(r.crm_entity_type),
    crmEntityId: strOrNull(r.crm_entity_id),
  };
}

export function toConversation(r: Row): Conversation {
  return {
    id: num(r.id),
    portalId: num(r.portal_id),
    numberId: num(r.number_id),
    contactId: num(r.contact_id),
    lastMessageAt: numOrNull(r.last_message_at),
    unreadCount: num(r.unread_count),
  };
}

export function toMedia(r: Row): MediaRef {
  return { id: num(r.id), sha256: String(r.sha256), mimetype: String(r.mimetype), size: num(r.size), filename: null };
}

/** The history columns plus the joined media columns (`m_sha256`, `m_mimetype`, `m_size`). */
export function toHistoryMessage(r: Row): HistoryMessage {
  return {
    id: num(r.id),
    conversationId: num(r.conversation_id),
    direction: r.direction as Message['direction'],
    type: r.type as Message['type'],
    text: strOrNull(r.text),
    status: r.status as Message['status'],
    error: strOrNull(r.error),
    media:
      r.media_id === null || r.media_id === undefined
        ? null
        : {
            id: num(r.media_id),
            sha256: String(r.m_sha256),
            mimetype: String(r.m_mimetype),
            size: num(r.m_size),
            filename: strOrNull(r.media_filename),
          },
    ptt: bool(r.ptt),
    quotedMessageId: numOrNull(r.quoted_message_id),
    fromPhone: bool(r.from_phone),
    revoked: bool(r.revoked),
    createdAt: num(r.created_at),
  };
}

/** All message columns plus the joined media columns. */
export function toMessage(r: Row): Message {
  return {
    ...toHistoryMessage(r),
    portalId: num(r.portal_id),
    numberId: num(r.number_id),
    waMessageId: strOrNull(r.wa_message_id),
    idempotencyKey: strOrNull(r.idempotency_key),
    sendStartedAt: numOrNull(r.send_started_at),
  };
}
