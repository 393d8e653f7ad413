import type { Knex } from 'knex';
import type { ConversationRepo, ConversationView } from '../../domain/ports';
import { selectMessages } from './messages';
import { strOrNull, toConversation, toMessage, type Row } from './rows';

async function views(db: Knex | Knex.Transaction, rows: Row[]): Promise<ConversationView[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => Number(r.id));
  const lastIds = await db('messages').whereIn('conversation_id', ids).groupBy('conversation_id').select('conversation_id').max({ id: 'id' });
  const last = lastIds.length
    ? await selectMessages(db).whereIn('msg.id', lastIds.map((r) => Number(r.id)))
    : [];
  const byConv = new Map(last.map((r: Row) => [Number(r.conversation_id), toMessage(r)]));
  return rows.map((r) => ({
    ...toConversation(r),
    phone: strOrNull(r.c_phone),
    waId: String(r.c_wa_id),
    name: strOrNull(r.c_name),
    numberPhone: strOrNull(r.n_phone),
    lastMessage: byConv.get(Number(r.id)) ?? null,
  }));
}

function selectViews(db: Knex | Knex.Transaction) {
  return db('conversations as cv')
    .join('contacts as c', 'c.id', 'cv.contact_id')
    .join('numbers as n', 'n.id', 'cv.number_id')
    .select('cv.*', 'c.phone as c_phone', 'c.wa_id as c_wa_id', 'c.name as c_name', 'n.phone as n_phone');
}

export function conversationRepo(db: Knex | Knex.Transaction): ConversationRepo {
  return {
    async upsert(portalId, numberId, contactId) {
      // `merge` of an unchanged column makes the upsert return the existing row too.
      const [row] = await db('conversations')
        .insert({ portal_id: portalId, number_id: numberId, contact_id: contactId, unread_count: 0, created_at: Date.now() })
        .onConflict(['number_id', 'contact_id'])
        .merge(['portal_id'])
        .returning('*');
      return toConversation(row);
    },
    async get(portalId, id) {
      const row = await db('conversations').where({ portal_id: portalId, id }).first();
      return row ? toConversation(row) : null;
    },
    async view(portalId, id) {
      const rows = await selectViews(db).where({ 'cv.portal_id': portalId, 'cv.id': id });
      return (await views(db, rows))[0] ?? null;
    },
    async listByPhones(portalId, phones) {
      const rows = await selectViews(db)
        .where('cv.portal_id', portalId)
        .whereIn('c.phone', phones)
        .orderByRaw('cv.last_message_at DESC NULLS LAST, cv.id DESC');
      return views(db, rows);
    },
    async touch(id, at, unreadDelta) {
      const [row] = await db('conversations')
        .where({ id })
        .update({
          last_message_at: db.raw('CASE WHEN last_message_at IS NULL OR last_message_at < ? THEN ? ELSE last_message_at END', [at, at]),
          unread_count: db.raw('unread_count + ?', [unreadDelta]),
        })
        .returning('*');
      return toConversation(row);
    },
    async markRead(portalId, id) {
      const rows = await db('conversations').where({ portal_id: portalId, id }).update({ unread_count: 0 }).returning('*');
      return rows[0] ? toConversation(rows[0]) : null;
    },
  };
}
