import type { Knex } from 'knex';
import type { AuditRepo } from '../../domain/ports';
import { num, type Row } from './rows';

// The audit log is append-only: this repository has no update or delete, and nothing else in the
// code base writes to `audit_log`.
export function auditRepo(db: Knex | Knex.Transaction): AuditRepo {
  return {
    async append(e) {
      await db('audit_log').insert({
        portal_id: e.portalId,
        actor: e.actor,
        action: e.action,
        details: JSON.stringify(e.details ?? {}),
        at: Date.now(),
      });
    },
    async list(q = {}) {
      const query = db('audit_log').where('id', '>', q.afterId ?? 0).orderBy('id').limit(Math.min(q.limit ?? 10_000, 100_000));
      if (q.portalId !== undefined && q.portalId !== null) query.andWhere({ portal_id: q.portalId });
      return ((await query) as Row[]).map((r) => ({
        id: num(r.id),
        portalId: r.portal_id === null ? null : num(r.portal_id),
        actor: String(r.actor),
        action: String(r.action),
        details: JSON.parse(String(r.details)) as Record<string, unknown>,
        at: num(r.at),
      }));
    },
  };
}
