// The operator's commands, shared by the HTTP API (/api/v1/operator/*) and the CLI
// (`npm run operator -- …`): one schema and one implementation per command.
import { z } from 'zod';
import { badRequest } from './errors';
import type { LicenceService } from './licenceService';
import { maintenanceDays } from './licence';
import type { AuditEntry, Database } from './ports';

const when = z.union([z.number().int(), z.string().min(1)]).transform((v, ctx) => {
  const t = typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(t)) ctx.addIssue({ code: 'custom', message: `"${v}" is not a date (use ISO 8601, e.g. 2026-01-31T22:00:00Z)` });
  return t;
});

/** Euros as a number or a decimal string ("39", "39.90"); "" or a blank is refused, not €0. */
const amountEur = z
  .union([z.number(), z.string().trim().regex(/^\d+(\.\d{1,2})?$/, 'an amount in EUR such as 39 or 39.90').transform(Number)], {
    error: 'an amount in EUR such as 39 or 39.90',
  })
  .pipe(z.number().nonnegative().max(1_000_000));

export const paymentInput = z
  .object({
    plan: z.string().min(1).max(40).optional(),
    amountEur: amountEur.optional(),
    reference: z.string().min(1).max(200).optional(),
  })
  .strict();
export const planInput = z.object({ plan: z.string().min(1).max(40) }).strict();
export const suspendInput = z.object({ reason: z.string().trim().min(1, 'say why (admins see it)').max(500) }).strict();
export const maintenanceInput = z.object({ startAt: when, endAt: when, reason: z.string().trim().min(1).max(500) }).strict();
export const expiringInput = z.object({ days: z.coerce.number().int().min(0).max(366).default(7) });

export function parseInput<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const i = r.error.issues[0]!;
  throw badRequest(`${i.path.join('.') || 'input'}: ${i.message}`);
}

export class OperatorCommands {
  constructor(
    private readonly licences: LicenceService,
    private readonly db: Database,
  ) {}

  listPortals() {
    return this.licences.listPortals();
  }

  showPortal(portalId: number) {
    return this.licences.overview(portalId);
  }

  async recordPayment(portalId: number, input: unknown, actor: string) {
    const p = parseInput(paymentInput, input);
    const res = await this.licences.recordPayment(portalId, { planCode: p.plan ?? null, amountEur: p.amountEur ?? null, reference: p.reference ?? null }, actor);
    return { payment: res.payment, licence: (await this.licences.overview(portalId)).licence };
  }

  async changePlan(portalId: number, input: unknown, actor: string) {
    const p = parseInput(planInput, input);
    const res = await this.licences.schedulePlanChange(portalId, p.plan, actor);
    return { effectiveAt: new Date(res.effectiveAt).toISOString(), licence: (await this.licences.overview(portalId)).licence };
  }

  async suspend(portalId: number, input: unknown, actor: string) {
    const p = parseInput(suspendInput, input);
    await this.licences.suspend(portalId, p.reason, actor);
    return { licence: (await this.licences.overview(portalId)).licence };
  }

  async unsuspend(portalId: number, actor: string) {
    await this.licences.unsuspend(portalId, actor);
    return { licence: (await this.licences.overview(portalId)).licence };
  }

  async declareMaintenance(input: unknown, actor: string) {
    const p = parseInput(maintenanceInput, input);
    const { window, credited } = await this.licences.declareMaintenance(p, actor);
    return { window: presentWindow(window), days: maintenanceDays(window), credited };
  }

  async listMaintenance() {
    const out = [];
    for (const w of await this.licences.windows(true)) {
      const credits = await this.db.repos.licences.credits(w.id);
      // `credits`: the days each portal got (fewer than `days` where an earlier overlapping window gave some).
      out.push({ ...presentWindow(w), days: maintenanceDays(w), credited: credits.map((c) => c.portalId), credits });
    }
    return out;
  }

  expiring(input: unknown) {
    return this.licences.expiringSoon(parseInput(expiringInput, input).days);
  }

  /** The audit log as JSON lines (one entry per line), oldest first. */
  async exportAudit(q: { afterId?: number; portalId?: number } = {}): Promise<string> {
    const entries = await this.db.repos.audit.list({ afterId: q.afterId, portalId: q.portalId, limit: 100_000 });
    return entries.map((e) => JSON.stringify(presentAudit(e))).join('\n') + (entries.length ? '\n' : '');
  }
}

export function presentAudit(e: AuditEntry) {
  return { id: e.id, at: new Date(e.at).toISOString(), portalId: e.portalId, actor: e.actor, action: e.action, details: e.details };
}

function presentWindow(w: { id: number; startAt: number; endAt: number; reason: string; appliedAt: number | null }) {
  return { id: w.id, startAt: new Date(w.startAt).toISOString(), endAt: new Date(w.endAt).toISOString(), reason: w.reason, appliedAt: w.appliedAt === null ? null : new Date(w.appliedAt).toISOString() };
}
