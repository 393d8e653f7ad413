import type { Knex } from 'knex';
import type { LicenceRecord, PlanChange } from '../../domain/licence';
import type { LicenceRepo, Payment, StoredWindow } from '../../domain/licencePorts';
import { bool, num, numOrNull, strOrNull, type Row } from './rows';

function toRecord(r: Row): LicenceRecord {
  return {
    portalId: num(r.portal_id),
    billing: r.billing === 'market' ? 'market' : 'direct',
    planCode: strOrNull(r.plan_code),
    nextPlanCode: strOrNull(r.next_plan_code),
    nextPlanFrom: numOrNull(r.next_plan_from),
    laterPlans: planList(r.later_plans),
    trialStartedAt: num(r.trial_started_at),
    trialEndsAt: num(r.trial_ends_at),
    paidUntil: numOrNull(r.paid_until),
    perpetual: bool(r.perpetual),
    suspendedReason: strOrNull(r.suspended_reason),
    suspendedAt: numOrNull(r.suspended_at),
    expiryChangedAt: num(r.expiry_changed_at),
    sessionsClosedAt: numOrNull(r.sessions_closed_at),
    marketStatus: strOrNull(r.market_status),
  };
}

/** The changes after the next one (006_plan_schedule), stored as JSON `[{code, from}]`. */
function planList(v: unknown): PlanChange[] {
  if (typeof v !== 'string' || !v) return [];
  const parsed: unknown = JSON.parse(v);
  if (!Array.isArray(parsed)) return [];
  return parsed
    .filter((c): c is { code: string; from: number | string } => !!c && typeof c === 'object' && typeof (c as PlanChange).code === 'string' && Number.isFinite(Number((c as PlanChange).from)))
    .map((c) => ({ code: c.code, from: Number(c.from) }));
}

function toColumns(rec: LicenceRecord) {
  return {
    billing: rec.billing,
    plan_code: rec.planCode,
    next_plan_code: rec.nextPlanCode,
    next_plan_from: rec.nextPlanFrom,
    later_plans: rec.laterPlans.length ? JSON.stringify(rec.laterPlans) : null,
    trial_started_at: rec.trialStartedAt,
    trial_ends_at: rec.trialEndsAt,
    paid_until: rec.paidUntil,
    perpetual: rec.perpetual,
    suspended_reason: rec.suspendedReason,
    suspended_at: rec.suspendedAt,
    expiry_changed_at: rec.expiryChangedAt,
    sessions_closed_at: rec.sessionsClosedAt,
    market_status: rec.marketStatus,
  };
}

function toPayment(r: Row): Payment {
  return {
    id: num(r.id),
    portalId: num(r.portal_id),
    planCode: String(r.plan_code),
    amountEur: r.amount_eur === null || r.amount_eur === undefined ? null : Number(r.amount_eur),
    from: num(r.from_at),
    until: num(r.until_at),
    reference: strOrNull(r.reference),
    actor: String(r.actor),
    at: num(r.at),
  };
}

function toWindow(r: Row): StoredWindow {
  return { id: num(r.id), startAt: num(r.start_at), endAt: num(r.end_at), reason: String(r.reason), createdAt: num(r.created_at), appliedAt: numOrNull(r.applied_at) };
}

export function licenceRepo(db: Knex | Knex.Transaction): LicenceRepo {
  return {
    async get(portalId) {
      const row = (await db('licences').where({ portal_id: portalId }).first()) as Row | undefined;
      return row ? { record: toRecord(row), version: num(row.version) } : null;
    },
    async insertIfMissing(rec, now) {
      await db('licences')
        .insert({ portal_id: rec.portalId, ...toColumns(rec), version: 0, updated_at: now })
        .onConflict('portal_id')
        .ignore();
    },
    async save(rec, version, now) {
      const n = await db('licences')
        .where({ portal_id: rec.portalId, version })
        .update({ ...toColumns(rec), version: version + 1, updated_at: now });
      return Number(n) === 1;
    },
    async list() {
      return ((await db('licences').orderBy('portal_id')) as Row[]).map(toRecord);
    },
    async addPayment(p) {
      const [row] = await db('licence_payments')
        .insert({ portal_id: p.portalId, plan_code: p.planCode, amount_eur: p.amountEur, from_at: p.from, until_at: p.until, reference: p.reference, actor: p.actor, at: p.at })
        .returning('*');
      return toPayment(row as Row);
    },
    async payments(portalId) {
      return ((await db('licence_payments').where({ portal_id: portalId }).orderBy('id', 'desc')) as Row[]).map(toPayment);
    },
    async periods(portalId) {
      const pays = (await db('licence_payments').where({ portal_id: portalId }).select('from_at', 'until_at')) as Row[];
      const credits = (await db('maintenance_credits').where({ portal_id: portalId }).select('from_at', 'until_at')) as Row[];
      return [...pays, ...credits].map((r) => ({ from: num(r.from_at), until: num(r.until_at) }));
    },
    async addWindow(w, now) {
      const [row] = await db('maintenance_windows').insert({ start_at: w.startAt, end_at: w.endAt, reason: w.reason, created_at: now }).returning('*');
      return toWindow(row as Row);
    },
    async windows() {
      return ((await db('maintenance_windows').orderBy('start_at')) as Row[]).map(toWindow);
    },
    async markWindowApplied(id, at) {
      await db('maintenance_windows').where({ id }).whereNull('applied_at').update({ applied_at: at });
    },
    async addCredit(c) {
      const rows = await db('maintenance_credits')
        .insert({ window_id: c.windowId, portal_id: c.portalId, days: c.days, from_at: c.from, until_at: c.until, at: c.at })
        .onConflict(['window_id', 'portal_id'])
        .ignore()
        .returning('portal_id');
      return (rows as unknown[]).length > 0;
    },
    async credits(windowId) {
      return ((await db('maintenance_credits').where({ window_id: windowId }).orderBy('portal_id')) as Row[]).map((r) => ({ portalId: num(r.portal_id), days: num(r.days) }));
    },
    async creditedWindows(portalId) {
      const rows = (await db('maintenance_credits as c')
        .join('maintenance_windows as w', 'w.id', 'c.window_id')
        .where('c.portal_id', portalId)
        .orderBy('w.start_at')
        .select('c.window_id', 'c.days', 'w.start_at', 'w.end_at')) as Row[];
      return rows.map((r) => ({ windowId: num(r.window_id), startAt: num(r.start_at), endAt: num(r.end_at), days: num(r.days) }));
    },
    async openSuspension(portalId, from, reason) {
      if (await db('licence_suspensions').where({ portal_id: portalId }).whereNull('until_at').first()) return;
      await db('licence_suspensions').insert({ portal_id: portalId, from_at: from, until_at: null, reason });
    },
    async closeSuspension(portalId, until) {
      await db('licence_suspensions').where({ portal_id: portalId }).whereNull('until_at').update({ until_at: until });
    },
    async suspensions(portalId) {
      const rows = (await db('licence_suspensions').where({ portal_id: portalId }).orderBy('from_at')) as Row[];
      return rows.map((r) => ({ from: num(r.from_at), until: numOrNull(r.until_at) ?? Number.POSITIVE_INFINITY }));
    },
    async alertsDone(portalId, expiresAt) {
      const rows = (await db('licence_alerts').where({ portal_id: portalId, expires_at: expiresAt }).select('threshold')) as Row[];
      return new Set(rows.map((r) => num(r.threshold)));
    },
    async markAlerts(portalId, expiresAt, thresholds, at) {
      const fresh: number[] = [];
      for (const threshold of thresholds) {
        const rows = await db('licence_alerts')
          .insert({ portal_id: portalId, expires_at: expiresAt, threshold, at })
          .onConflict(['portal_id', 'expires_at', 'threshold'])
          .ignore()
          .returning('threshold');
        if ((rows as unknown[]).length > 0) fresh.push(threshold);
      }
      return fresh;
    },
  };
}
