import type { Knex } from 'knex';
import type { ContactRepo } from '../../domain/ports';
import { toContact } from './rows';

export function contactRepo(db: Knex | Knex.Transaction): ContactRepo {
  return {
    async upsert(portalId, c) {
      // One row per (portal, WhatsApp id). A later message may bring the name or phone the
      // first one lacked; it never blanks what is known.
      const [row] = await db('contacts')
        .insert({ portal_id: portalId, wa_id: c.waId, phone: c.phone, name: c.name, created_at: Date.now() })
        .onConflict(['portal_id', 'wa_id'])
        .merge({
          name: db.raw('COALESCE(excluded.name, contacts.name)'),
          phone: db.raw('COALESCE(excluded.phone, contacts.phone)'),
        })
        .returning('*');
      return toContact(row);
    },
    async get(portalId, id) {
      const row = await db('contacts').where({ portal_id: portalId, id }).first();
      return row ? toContact(row) : null;
    },
    async findByPhone(portalId, phone) {
      const row = await db('contacts').where({ portal_id: portalId, phone }).orderBy('id').first();
      return row ? toContact(row) : null;
    },
    async setCrmEntity(id, ref) {
      await db('contacts').where({ id }).update({ crm_entity_type: ref.type, crm_entity_id: ref.id });
    },
    async identify(portalId, hiddenWaId, phone) {
      // The hidden-id contact keeps its conversations; it just learns its phone.
      await db('contacts').where({ portal_id: portalId, wa_id: hiddenWaId }).update({ phone });
      const row = await db('contacts').where({ portal_id: portalId, wa_id: hiddenWaId }).first();
      return row ? toContact(row) : null;
    },
  };
}
