import type { Knex } from 'knex';
import type { AuditRepo } from '../../domain/ports';

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
  };
}
