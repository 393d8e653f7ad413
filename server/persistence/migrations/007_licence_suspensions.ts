import type { Knex } from 'knex';

// The suspensions of each portal as intervals, past ones included: a maintenance credit asks
// whether the portal had access during the window, and a suspension that was lifted before the
// credit ran still took that access away. `until_at` is null while the suspension lasts.
//
// Existing suspensions are rebuilt from the append-only audit log (licence.suspend /
// licence.unsuspend, in order); a portal suspended now keeps its `suspended_at` as the start.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('licence_suspensions', (t) => {
    t.increments('id').primary();
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.bigInteger('from_at').notNullable();
    t.bigInteger('until_at').nullable();
    t.text('reason').notNullable();
    t.index(['portal_id', 'from_at']);
  });

  const open = new Map<number, { from: number; reason: string }>();
  const rows: { portal_id: number; from_at: number; until_at: number | null; reason: string }[] = [];
  const entries = (await knex('audit_log')
    .whereIn('action', ['licence.suspend', 'licence.unsuspend'])
    .whereNotNull('portal_id')
    .orderBy('id')
    .select('portal_id', 'action', 'details', 'at')) as { portal_id: number | string; action: string; details: string; at: number | string }[];
  for (const e of entries) {
    const portalId = Number(e.portal_id);
    const at = Number(e.at);
    if (e.action === 'licence.suspend') {
      if (open.has(portalId)) continue;
      let reason = '';
      try {
        reason = String((JSON.parse(e.details) as { reason?: unknown }).reason ?? '');
      } catch {
        /* keep it empty */
      }
      open.set(portalId, { from: at, reason });
    } else {
      const o = open.get(portalId);
      if (!o) continue;
      rows.push({ portal_id: portalId, from_at: o.from, until_at: at, reason: o.reason });
      open.delete(portalId);
    }
  }
  const licences = (await knex('licences').select('portal_id', 'suspended_reason', 'suspended_at', 'updated_at')) as {
    portal_id: number | string;
    suspended_reason: string | null;
    suspended_at: number | string | null;
    updated_at: number | string;
  }[];
  for (const l of licences) {
    const portalId = Number(l.portal_id);
    const o = open.get(portalId);
    open.delete(portalId);
    if (l.suspended_reason !== null) {
      const from = l.suspended_at === null ? (o?.from ?? Number(l.updated_at)) : Number(l.suspended_at);
      rows.push({ portal_id: portalId, from_at: from, until_at: null, reason: l.suspended_reason });
    } else if (o) {
      rows.push({ portal_id: portalId, from_at: o.from, until_at: Math.max(o.from, Number(l.updated_at)), reason: o.reason });
    }
  }
  for (let i = 0; i < rows.length; i += 200) await knex('licence_suspensions').insert(rows.slice(i, i + 200));
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('licence_suspensions');
}
