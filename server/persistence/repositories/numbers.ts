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
      // Not restored: logged out; stopped before ever logging in (failed with no last_ready_at);
      // stopped because nobody scanned its QR (the wwebjs engine's QR_EXPIRED_REASON). Those
      // keep their `failed` state and reason until an admin restarts them, so abandoned QR
      // numbers do not take WA_MAX_SESSIONS slots at every start. A QR episode the stop
      // interrupted (starting/qr, no login yet) is restored, after every number with a login.
      // Order: ready first, then the other numbers with a login, then those without; by id.
      return (
        await db('numbers')
          .whereNot({ state: 'logged_out' })
          .whereRaw("NOT (state = 'failed' AND last_ready_at IS NULL)")
          .whereRaw("NOT (state = 'failed' AND COALESCE(state_detail, '') LIKE ?)", ['QR code not scanned%'])
          .orderByRaw("CASE WHEN state = 'ready' THEN 0 WHEN last_ready_at IS NOT NULL THEN 1 ELSE 2 END")
          .orderBy('id')
      ).map(toNumber);
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
