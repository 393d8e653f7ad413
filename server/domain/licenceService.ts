// The licence service: loads a portal's record, applies the rules of licence.ts, stores the
// result with an audit entry, and tells the rest of the server (sessions, jobs, live widgets).
// Every change goes through `change()`: a compare-and-swap save, so two processes (the server
// and the operator CLI) never lose each other's update.
import type { DomainContext } from './context';
import { AppError, badRequest, notFound } from './errors';
import type { JobHandler } from './jobs';
import {
  DAY_MS,
  EXPIRING_NOTICE_DAYS,
  LicenceRuleError,
  MAINTENANCE_NOTICE_MS,
  SESSION_GRACE_MS,
  accessRanDuring,
  applyPayment,
  creditDays,
  dueAlert,
  evaluate,
  maintenanceCredit,
  maintenanceDays,
  newTrial,
  numberAllowance,
  planChanges,
  schedulePlanChange,
  settle,
  suspend,
  unsuspend,
  type LicenceRecord,
  type LicenceState,
} from './licence';
import { applyAppInfo } from './licenceMarket';
import { planName, type PlanCatalog } from './licencePlans';
import type { LicenceEffects, Payment, PortalMailer, StoredWindow } from './licencePorts';
import { texts } from './licenceText';
import { KeyedMutex } from './mutex';
import type { CrmRegistry } from './ports';
import type { LicenceView } from './types';

export const JOB_LICENCE_ALERT = 'licence.alert';
export const JOB_LICENCE_MAIL = 'licence.mail';

export interface LicenceOptions {
  trialDays: number;
  /** How long a looked-up state may be reused by the hot paths (send guard, mirroring). */
  cacheMs?: number;
}

class Conflict extends Error {}

/** The answer of a change: the record before and after, for the caller's report. */
export interface Changed {
  before: LicenceRecord;
  after: LicenceRecord;
  state: LicenceState;
}

export class LicenceService {
  private readonly cache = new Map<number, { state: LicenceState; at: number }>();
  private readonly published = new Map<number, string>();
  private readonly lock = new KeyedMutex();
  private effects: LicenceEffects | null = null;
  private windowCache: StoredWindow[] | null = null;

  constructor(
    private readonly ctx: DomainContext,
    readonly catalog: PlanCatalog,
    private readonly opts: LicenceOptions,
  ) {}

  /** Sessions and the job queue, wired after they exist. */
  attach(effects: LicenceEffects): void {
    this.effects = effects;
  }

  // ------------------------------------------------------------ reading

  /** The record, created as a trial from the portal's creation the first time it is looked at. */
  async record(portalId: number): Promise<{ record: LicenceRecord; version: number }> {
    const repo = this.ctx.db.repos.licences;
    const found = await repo.get(portalId);
    if (found) return found;
    const portal = await this.ctx.db.repos.portals.get(portalId);
    if (!portal) throw notFound('portal');
    await this.install(portalId, portal.createdAt);
    return (await repo.get(portalId))!;
  }

  /** Starts the portal's trial (idempotent: a reinstall does not start a new one). */
  async install(portalId: number, at = this.ctx.clock.now()): Promise<void> {
    await this.ctx.db.repos.licences.insertIfMissing(newTrial(portalId, at, this.opts.trialDays), this.ctx.clock.now());
  }

  async state(portalId: number, fresh = false): Promise<LicenceState> {
    const now = this.ctx.clock.now();
    const hit = this.cache.get(portalId);
    if (!fresh && hit && now - hit.at < (this.opts.cacheMs ?? 2000) && now >= hit.at) return hit.state;
    const { record } = await this.record(portalId);
    const state = evaluate(record, now);
    this.cache.set(portalId, { state, at: now });
    return state;
  }

  async view(portalId: number, lang?: string | null): Promise<LicenceView> {
    const { record } = await this.record(portalId);
    return this.viewOf(record, lang ?? 'en', await this.windows());
  }

  private viewOf(record: LicenceRecord, lang: string, windows: StoredWindow[]): LicenceView {
    const now = this.ctx.clock.now();
    const s = evaluate(record, now);
    const plan = this.catalog.get(s.planCode);
    const t = texts(lang);
    const trial = record.paidUntil === null;
    let notice: LicenceView['notice'] = null;
    if (s.status === 'suspended') notice = { kind: 'suspended', message: t.suspended(s.reason ?? '') };
    else if (s.status === 'expired') notice = { kind: 'expired', message: t.expired(trial) };
    else {
      const during = windows.find((w) => w.startAt <= now && now < w.endAt);
      const soon = windows.filter((w) => w.startAt > now && w.startAt - now <= MAINTENANCE_NOTICE_MS).sort((a, b) => a.startAt - b.startAt)[0];
      const maintenance = during ? t.maintenanceNow(during.endAt, during.reason) : soon ? t.maintenanceSoon(soon.startAt, soon.endAt, soon.reason) : null;
      const expiring = s.expiresAt !== null && s.daysLeft !== null && s.daysLeft <= EXPIRING_NOTICE_DAYS ? t.expiring(s.daysLeft, s.expiresAt, trial) : null;
      // A window is announced before and during it even to a portal near its end (a trial always
      // is): the maintenance notice comes first and carries the expiry text too.
      if (maintenance) notice = { kind: 'maintenance', message: expiring ? `${maintenance} ${expiring}` : maintenance };
      else if (expiring) notice = { kind: 'expiring', message: expiring };
    }
    return {
      status: s.status,
      plan: plan ? { code: plan.code, name: planName(plan, lang) } : null,
      paidUntil: s.expiresAt === null ? null : new Date(s.expiresAt).toISOString(),
      daysLeft: s.daysLeft,
      reason: s.reason,
      canSend: s.access,
      notice,
    };
  }

  async payments(portalId: number): Promise<Payment[]> {
    return this.ctx.db.repos.licences.payments(portalId);
  }

  async windows(fresh = false): Promise<StoredWindow[]> {
    if (fresh || !this.windowCache) this.windowCache = await this.ctx.db.repos.licences.windows();
    return this.windowCache;
  }

  // ------------------------------------------------------------ enforcement hooks

  /** Refuses a send (and a retry) without access: 402 expired, 403 suspended. */
  async guardSend(portalId: number): Promise<void> {
    const s = await this.state(portalId);
    if (s.access) return;
    throw this.refusal(s);
  }

  private refusal(s: LicenceState): AppError {
    const t = texts('en');
    if (s.status === 'suspended') return new AppError(403, 'licence_suspended', t.suspendedSend(s.reason ?? ''), { reason: s.reason });
    return new AppError(402, 'licence_expired', t.expiredSend);
  }

  /** Connecting a number: needs access and room in the plan. */
  async guardConnect(portalId: number): Promise<void> {
    const s = await this.state(portalId, true);
    if (!s.access) throw this.refusal(s);
    const limit = numberAllowance(s, this.catalog);
    const used = (await this.ctx.db.repos.numbers.list(portalId)).length;
    if (used >= limit) {
      const plan = this.catalog.get(s.planCode);
      throw new AppError(402, 'number_limit', texts('en').numberLimit(limit, plan ? plan.names.en : 'trial'), { limit, used, plan: plan?.code ?? null });
    }
  }

  /** CRM mirroring runs only with access; otherwise its jobs wait. */
  async mayMirror(portalId: number): Promise<boolean> {
    return (await this.state(portalId)).access;
  }

  /**
   * Whether sessions of this portal should run: not when they were closed for lack of access and
   * it has not come back (restore at start and an admin's restart skip those). Once access is
   * back they may run before the next rule run clears the flag (a payment from the CLI).
   */
  async mayRunSessions(portalId: number): Promise<boolean> {
    const { record } = await this.record(portalId);
    return record.sessionsClosedAt === null || evaluate(record, this.ctx.clock.now()).access;
  }

  // ------------------------------------------------------------ changes

  private async change(
    portalId: number,
    actor: string,
    action: string,
    fn: (rec: LicenceRecord, now: number) => { record: LicenceRecord; details?: Record<string, unknown>; payment?: Omit<Payment, 'id' | 'portalId' | 'actor' | 'at'> },
  ): Promise<Changed & { payment: Payment | null }> {
    const res = await this.lock.run(`licence:${portalId}`, async () => {
      for (let attempt = 0; ; attempt++) {
        const { record: before, version } = await this.record(portalId);
        const now = this.ctx.clock.now();
        let out;
        try {
          out = fn(before, now);
        } catch (err) {
          if (err instanceof LicenceRuleError) throw badRequest(err.message);
          throw err;
        }
        const after = out.record;
        try {
          const payment = await this.ctx.db.transaction(async (r) => {
            if (!(await r.licences.save(after, version, now))) throw new Conflict();
            // Suspensions are kept as intervals (maintenance credits subtract them later).
            if (before.suspendedReason === null && after.suspendedReason !== null) await r.licences.openSuspension(portalId, after.suspendedAt ?? now, after.suspendedReason);
            else if (before.suspendedReason !== null && after.suspendedReason === null) await r.licences.closeSuspension(portalId, now);
            const pay = out.payment ? await r.licences.addPayment({ ...out.payment, portalId, actor, at: now }) : null;
            await r.audit.append({
              portalId,
              actor,
              action,
              details: { ...out.details, ...(pay ? { paymentId: pay.id } : {}), before: summary(before, now), after: summary(after, now) },
            });
            return pay;
          });
          return { before, after, state: evaluate(after, now), payment };
        } catch (err) {
          if (err instanceof Conflict && attempt < 5) continue;
          throw err;
        }
      }
    });
    // Outside the lock: resuming after a change may itself change the record.
    await this.afterChange(portalId, res.before, res.after);
    return res;
  }

  /** After any change: fresh caches, a live event when the widget's view moved, access effects. */
  private async afterChange(portalId: number, before: LicenceRecord, after: LicenceRecord): Promise<void> {
    const now = this.ctx.clock.now();
    this.cache.delete(portalId);
    const was = evaluate(before, now).access;
    const is = evaluate(after, now).access;
    await this.publish(portalId, after);
    if (!was && is) await this.regained(portalId, after);
  }

  private async regained(portalId: number, rec: LicenceRecord): Promise<void> {
    try {
      await this.effects?.releaseDeferred(portalId);
      // Only a process that runs sessions can reopen them (the CLI cannot): the flag stays set
      // until one did, so the server's next rule run picks it up.
      if (rec.sessionsClosedAt !== null && this.effects && (await this.effects.reopenSessions(portalId))) {
        await this.change(portalId, 'system', 'licence.sessions_reopened', (r) => ({ record: { ...r, sessionsClosedAt: null } }));
      }
    } catch (err) {
      this.ctx.log.warn({ err, portalId }, 'could not resume the portal after access returned; the next tick tries again');
    }
  }

  private async publish(portalId: number, rec: LicenceRecord): Promise<void> {
    const view = this.viewOf(rec, 'en', await this.windows());
    const key = JSON.stringify(view);
    if (this.published.get(portalId) === key) return;
    this.published.set(portalId, key);
    this.ctx.live.publish(portalId, { type: 'licence', licence: view });
  }

  async recordPayment(portalId: number, p: { planCode?: string | null; amountEur?: number | null; reference?: string | null }, actor: string) {
    const res = await this.change(portalId, actor, 'licence.payment', (rec, now) => {
      if (rec.billing === 'market') throw new LicenceRuleError('this portal pays through the Bitrix24 Market; its status comes from there');
      const paid = applyPayment(rec, this.catalog, now, p.planCode ?? null);
      return {
        record: paid.record,
        details: { plan: paid.plan.code, amountEur: p.amountEur ?? paid.plan.priceEur, from: iso(paid.from), until: iso(paid.until), reference: p.reference ?? null },
        payment: { planCode: paid.plan.code, amountEur: p.amountEur ?? paid.plan.priceEur, from: paid.from, until: paid.until, reference: p.reference ?? null },
      };
    });
    return res;
  }

  async schedulePlanChange(portalId: number, planCode: string, actor: string) {
    let effectiveAt = 0;
    const res = await this.change(portalId, actor, 'licence.plan_change', (rec, now) => {
      const out = schedulePlanChange(rec, this.catalog, now, planCode);
      effectiveAt = out.effectiveAt;
      return { record: out.record, details: { plan: planCode, effectiveAt: iso(out.effectiveAt) } };
    });
    return { ...res, effectiveAt };
  }

  async suspend(portalId: number, reason: string, actor: string) {
    return this.change(portalId, actor, 'licence.suspend', (rec, now) => ({ record: suspend(rec, reason, now), details: { reason } }));
  }

  async unsuspend(portalId: number, actor: string) {
    return this.change(portalId, actor, 'licence.unsuspend', (rec) => {
      if (rec.suspendedReason === null) throw new LicenceRuleError('the portal is not suspended');
      return { record: unsuspend(rec), details: { reason: rec.suspendedReason } };
    });
  }

  /**
   * Bitrix24 Market billing: the Bitrix24 adapter calls this with `app.info`'s answer (at
   * install, on ONAPPPAYMENT, and from time to time). From then on the Market drives the licence.
   */
  async applyMarketStatus(portalId: number, appInfo: unknown) {
    return this.change(portalId, 'bitrix24-market', 'licence.market_status', (rec, now) => {
      try {
        return { record: applyAppInfo(rec, appInfo, now), details: { appInfo: pick(appInfo, ['STATUS', 'PAYMENT_EXPIRED', 'DAYS']) } };
      } catch (err) {
        if (err instanceof Error && 'issues' in err) {
          const issue = (err as Error & { issues: { path: PropertyKey[]; message: string }[] }).issues[0];
          throw new LicenceRuleError(`app.info: ${issue ? `${issue.path.map(String).join('.')}: ${issue.message}` : err.message}`);
        }
        throw err;
      }
    });
  }

  // ------------------------------------------------------------ maintenance

  async declareMaintenance(w: { startAt: number; endAt: number; reason: string }, actor: string): Promise<{ window: StoredWindow; credited: number[] }> {
    if (!(w.endAt > w.startAt)) throw badRequest('endAt: must be after startAt');
    if (!w.reason.trim()) throw badRequest('reason: say why (admins see it)');
    const now = this.ctx.clock.now();
    const window = await this.ctx.db.repos.licences.addWindow({ ...w, reason: w.reason.trim() }, now);
    await this.ctx.db.repos.audit.append({
      portalId: null,
      actor,
      action: 'maintenance.declare',
      details: { windowId: window.id, startAt: iso(w.startAt), endAt: iso(w.endAt), reason: window.reason, days: maintenanceDays(w) },
    });
    await this.windows(true);
    const credited = await this.applyMaintenance();
    await this.publishAll();
    return { window, credited: credited.get(window.id) ?? [] };
  }

  /**
   * Hands out the credits of every window that has ended: each portal whose access ran during it
   * gets its length in whole days, once (the credits table makes a second run a no-op).
   * Returns window id → portals credited by this run.
   */
  async applyMaintenance(): Promise<Map<number, number[]>> {
    const repo = this.ctx.db.repos.licences;
    const now = this.ctx.clock.now();
    const out = new Map<number, number[]>();
    const due = (await this.windows(true)).filter((w) => w.endAt <= now && w.appliedAt === null);
    if (due.length === 0) return out;
    const portals = await this.ctx.db.repos.portals.list();
    for (const w of due) {
      const list: number[] = [];
      for (const p of portals) {
        if (await this.credit(p.id, w)) list.push(p.id);
      }
      await repo.markWindowApplied(w.id, now);
      out.set(w.id, list);
    }
    await this.windows(true);
    return out;
  }

  /**
   * One window's credit to one portal: only when its access ran during the window outside every
   * suspension (past ones too), and only the days the window adds to the windows already credited
   * to the portal (overlapping windows give the days of their union, not the overlap twice).
   */
  private async credit(portalId: number, w: StoredWindow): Promise<boolean> {
    const res = await this.lock.run(`licence:${portalId}`, async (): Promise<{ before: LicenceRecord; after: LicenceRecord } | null> => {
      for (let attempt = 0; attempt < 6; attempt++) {
        const { record, version } = await this.record(portalId);
        const repo = this.ctx.db.repos.licences;
        const [periods, suspensions, credited] = [await repo.periods(portalId), await repo.suspensions(portalId), await repo.creditedWindows(portalId)];
        if (credited.some((c) => c.windowId === w.id)) return null;
        if (!accessRanDuring(record, periods, w, suspensions)) return null;
        const days = maintenanceCredit(w, credited);
        if (days === 0) return null; // overlapping windows already gave these days
        const now = this.ctx.clock.now();
        const c = creditDays(record, days, now);
        try {
          const given = await this.ctx.db.transaction(async (r) => {
            if (!(await r.licences.addCredit({ windowId: w.id, portalId, days, from: c.from, until: c.until, at: now }))) return false;
            if (!(await r.licences.save(c.record, version, now))) throw new Conflict();
            await r.audit.append({
              portalId,
              actor: 'system',
              action: 'licence.maintenance_credit',
              details: { windowId: w.id, days, from: iso(c.from), until: iso(c.until), before: summary(record, now), after: summary(c.record, now) },
            });
            return true;
          });
          return given ? { before: record, after: c.record } : null;
        } catch (err) {
          if (err instanceof Conflict) continue;
          throw err;
        }
      }
      throw new Error(`could not credit portal ${portalId}: its licence kept changing`);
    });
    if (res) await this.afterChange(portalId, res.before, res.after);
    return res !== null;
  }

  // ------------------------------------------------------------ the periodic rule run

  /**
   * Runs the time-driven rules for every portal: due plan changes, maintenance credits, expiry
   * alerts, closing sessions after the grace period and reopening them, live events for views
   * that changed with time. Idempotent; the server runs it every minute, tests call it directly.
   */
  async tick(): Promise<void> {
    await this.applyMaintenance();
    const windows = await this.windows(true);
    for (const p of await this.ctx.db.repos.portals.list()) {
      try {
        await this.tickPortal(p.id, windows);
      } catch (err) {
        this.ctx.log.warn({ err, portalId: p.id }, 'licence rules failed for a portal');
      }
    }
  }

  private async tickPortal(portalId: number, windows: StoredWindow[]): Promise<void> {
    const now = this.ctx.clock.now();
    let { record } = await this.record(portalId);
    const settled = settle(record, now);
    if (settled.planCode !== record.planCode) {
      record = (await this.change(portalId, 'system', 'licence.plan_changed', (r, n) => ({ record: settle(r, n), details: { plan: settled.planCode } }))).after;
    }
    const state = evaluate(record, now);
    this.cache.set(portalId, { state, at: now });
    await this.alerts(portalId, record, state, now);
    if (!state.access && state.since !== null && now - state.since >= SESSION_GRACE_MS && record.sessionsClosedAt === null) {
      const reason = state.status === 'suspended' ? `licence suspended: ${state.reason}` : 'licence expired';
      // Close first, then record it: a close that fails is tried again at the next run, and a
      // process that cannot close sessions (the CLI) leaves the flag for the server to set.
      const closed = this.effects ? await this.effects.closeSessions(portalId, reason) : false;
      if (closed !== false) await this.change(portalId, 'system', 'licence.sessions_closed', (r, n) => ({ record: { ...r, sessionsClosedAt: n }, details: { reason } }));
    } else if (state.access && record.sessionsClosedAt !== null) {
      await this.regained(portalId, record);
    }
    const view = this.viewOf(record, 'en', windows);
    const key = JSON.stringify(view);
    if (this.published.get(portalId) !== key) {
      const first = !this.published.has(portalId);
      this.published.set(portalId, key);
      if (!first) this.ctx.live.publish(portalId, { type: 'licence', licence: view });
    }
  }

  private async publishAll(): Promise<void> {
    for (const p of await this.ctx.db.repos.portals.list()) {
      const { record } = await this.record(p.id);
      await this.publish(p.id, record);
    }
  }

  private async alerts(portalId: number, record: LicenceRecord, state: LicenceState, now: number): Promise<void> {
    if (state.expiresAt === null || state.status === 'suspended') return;
    const repo = this.ctx.db.repos.licences;
    const done = await repo.alertsDone(portalId, state.expiresAt);
    const due = dueAlert(state, record, now, done);
    if (!due) return;
    const expiresAt = state.expiresAt;
    const enqueued = await this.ctx.db.transaction(async (r) => {
      const fresh = await r.licences.markAlerts(portalId, expiresAt, due.mark, now);
      if (!fresh.includes(due.send)) return false; // another process sent it
      const payload = { threshold: due.send, expiresAt, trial: record.paidUntil === null };
      await r.jobs.enqueue([
        { kind: JOB_LICENCE_ALERT, portalId, payload, dedupeKey: `licence-alert:${portalId}:${expiresAt}:${due.send}` },
        { kind: JOB_LICENCE_MAIL, portalId, payload, dedupeKey: `licence-mail:${portalId}:${expiresAt}:${due.send}` },
      ]);
      await r.audit.append({ portalId, actor: 'system', action: 'licence.alert', details: { threshold: due.send, expiresAt: iso(expiresAt) } });
      return true;
    });
    if (enqueued) this.ctx.wakeJobs();
  }

  /** The alert jobs: a CRM notification to the portal's admins, and e-mail when configured. */
  alertJobs(crm: CrmRegistry, mailer: PortalMailer | null): Record<string, JobHandler> {
    const textOf = (p: Record<string, unknown>) => {
      const t = texts('en');
      const threshold = Number(p.threshold);
      const trial = p.trial === true;
      return threshold === 0 ? t.expired(trial) : t.expiring(threshold, Number(p.expiresAt), trial);
    };
    return {
      [JOB_LICENCE_ALERT]: {
        run: async (job) => {
          const portal = await this.ctx.db.repos.portals.get(Number(job.portalId));
          if (!portal) return;
          // The portal's admins (they pay): an empty list with no record is "the admins" to every
          // adapter (the CRM port's alert contract, as for a number that drops).
          await crm(portal.crm).alert(portal, [], `InCRM: ${textOf(job.payload)}`, null);
        },
      },
      // One job per alert fans out into one job per linked account: each address gets its own
      // message (no shared To), and a failure to one address retries that one only.
      [JOB_LICENCE_MAIL]: {
        run: async (job) => {
          if (!mailer) return;
          const portal = await this.ctx.db.repos.portals.get(Number(job.portalId));
          if (!portal) return;
          const to = job.payload.to;
          if (typeof to !== 'string') {
            const recipients = await mailer.recipients(portal.id);
            if (recipients.length === 0) return;
            const key = `licence-mail:${portal.id}:${Number(job.payload.expiresAt)}:${Number(job.payload.threshold)}`;
            await this.ctx.db.repos.jobs.enqueue(recipients.map((addr) => ({ kind: JOB_LICENCE_MAIL, portalId: portal.id, payload: { ...job.payload, to: addr }, dedupeKey: `${key}:${addr}` })));
            this.ctx.wakeJobs();
            return;
          }
          const threshold = Number(job.payload.threshold);
          const subject = threshold === 0 ? `InCRM: access for ${portal.name} has ended` : `InCRM: access for ${portal.name} ends in ${threshold} day${threshold === 1 ? '' : 's'}`;
          await mailer.send(to, subject, `${textOf(job.payload)}\n\nPortal: ${portal.name} (#${portal.id})\n`);
        },
      },
    };
  }

  // ------------------------------------------------------------ operator views

  async overview(portalId: number) {
    const portal = await this.ctx.db.repos.portals.get(portalId);
    if (!portal) throw notFound('portal');
    const now = this.ctx.clock.now();
    // Settled: a change whose time has come shows as the plan, even before the next rule run.
    const record = settle((await this.record(portalId)).record, now);
    const s = evaluate(record, now);
    const numbers = await this.ctx.db.repos.numbers.list(portalId);
    return {
      portal: { id: portal.id, crm: portal.crm, name: portal.name, externalId: portal.externalId, createdAt: iso(portal.createdAt) },
      licence: {
        ...this.viewOf(record, 'en', await this.windows()),
        billing: record.billing,
        trialEndsAt: iso(record.trialEndsAt),
        nextPlan: record.nextPlanCode ? { code: record.nextPlanCode, from: iso(record.nextPlanFrom!) } : null,
        /** Every scheduled change (the next one and those after it), in time order. */
        planChanges: planChanges(record).map((c) => ({ code: c.code, from: iso(c.from) })),
        marketStatus: record.marketStatus,
        sessionsClosedAt: record.sessionsClosedAt === null ? null : iso(record.sessionsClosedAt),
        numberLimit: numberAllowance({ ...s, access: true }, this.catalog),
      },
      numbers: numbers.map((n) => ({ id: n.id, phone: n.phone, state: n.state })),
      payments: (await this.payments(portalId)).map(presentPayment),
    };
  }

  async listPortals() {
    const now = this.ctx.clock.now();
    const out = [];
    for (const p of await this.ctx.db.repos.portals.list()) {
      const { record } = await this.record(p.id);
      const s = evaluate(record, now);
      out.push({ id: p.id, crm: p.crm, name: p.name, status: s.status, plan: s.planCode, expiresAt: s.expiresAt === null ? null : iso(s.expiresAt), daysLeft: s.daysLeft, billing: record.billing });
    }
    return out;
  }

  /** Licences (trial or paid) that end within `days`. */
  async expiringSoon(days: number) {
    const now = this.ctx.clock.now();
    return (await this.listPortals()).filter((p) => (p.status === 'trial' || p.status === 'active') && p.expiresAt !== null && Date.parse(p.expiresAt) - now <= days * DAY_MS);
  }
}

export function presentPayment(p: Payment) {
  return { id: p.id, plan: p.planCode, amountEur: p.amountEur, from: iso(p.from), until: iso(p.until), reference: p.reference, by: p.actor, at: iso(p.at) };
}

const iso = (t: number) => new Date(t).toISOString();

function summary(r: LicenceRecord, now: number) {
  const s = evaluate(r, now);
  return {
    status: s.status,
    plan: r.planCode,
    nextPlan: r.nextPlanCode,
    ...(r.laterPlans.length ? { laterPlans: r.laterPlans.map((c) => `${c.code}@${iso(c.from)}`) } : {}),
    paidUntil: r.paidUntil === null ? null : iso(r.paidUntil),
    trialEndsAt: iso(r.trialEndsAt),
    suspended: r.suspendedReason,
    billing: r.billing,
  };
}

function pick(v: unknown, keys: string[]): Record<string, unknown> {
  if (!v || typeof v !== 'object') return {};
  return Object.fromEntries(keys.filter((k) => k in (v as object)).map((k) => [k, (v as Record<string, unknown>)[k]]));
}
