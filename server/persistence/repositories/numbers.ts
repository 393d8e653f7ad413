import type { Knex } from 'knex';
import type { NumberRepo } from '../../domain/ports';
import { toNumber, type Row } from './rows';

export function numberRepo(db: Knex | Knex.Transaction): NumberRepo {
  return {
    async create(portalId) {
      const now = Date.now();
      const [row] = await db('numbers')
        .insert({ portal_id: portalId, state: 'starting', created_at: now, updated_at: now })
        .returning('*');
      return toNumber(row);
    },
    async get(portalId, id) {
      const row = await db('numbers').where({ id, portal_id: portalId }).first();
      return row ? toNumber(row) : null;
    },
    async getAny(id) {
      const row = await db('numbers').where({ id }).first();
      return row ? toNumber(row) : null;
    },
    async list(portalId) {
      return (await db('numbers').where({ portal_id: portalId }).whereNot({ state: 'logged_out' }).orderBy('id')).map(toNumber);
    },
    async listRestorable() {
      return (await db('numbers').whereNot({ state: 'logged_out' }).orderBy('id')).map(toNumber);
    },
    async setState(id, state, detail, qr) {
      await db('numbers').where({ id }).update({ state, state_detail: detail, qr, updated_at: Date.now() });
    },
    async setPhone(id, phone) {
      await db('numbers').where({ id }).update({ phone, updated_at: Date.now() });
    },
    async markReady(id, at) {
      await db('numbers').where({ id }).update({ last_ready_at: at, updated_at: Date.now() });
    },
    async countByState() {
      const rows = (await db('numbers').select('state').count({ n: '*' }).groupBy('state')) as Row[];
      return Object.fromEntries(rows.map((r) => [String(r.state), Number(r.n)]));
    },
  };
}
