import type { Knex } from 'knex';
import type { PortalRepo } from '../../domain/ports';
import type { Portal, PortalSettings } from '../../domain/types';
import { num, strOrNull, type Row } from './rows';

function toPortal(r: Row): Portal {
  return {
    id: num(r.id),
    crm: r.crm as Portal['crm'],
    name: String(r.name),
    externalId: strOrNull(r.external_id),
    settings: JSON.parse(String(r.settings)) as PortalSettings,
    createdAt: num(r.created_at),
  };
}

export function portalRepo(db: Knex | Knex.Transaction): PortalRepo {
  return {
    async create(p) {
      const [row] = await db('portals')
        .insert({ crm: p.crm, name: p.name, external_id: p.externalId ?? null, settings: JSON.stringify(p.settings ?? {}), created_at: Date.now() })
        .returning('*');
      return toPortal(row);
    },
    async get(id) {
      const row = await db('portals').where({ id }).first();
      return row ? toPortal(row) : null;
    },
    async setSettings(id, settings) {
      const rows: Row[] = await db('portals').where({ id }).update({ settings: JSON.stringify(settings) }).returning('*');
      return rows[0] ? toPortal(rows[0]) : null;
    },
    async list() {
      return (await db('portals').orderBy('id')).map(toPortal);
    },
  };
}
