// The licence rules, as pure functions over a record and a moment. No I/O here: the service
// (licenceService.ts) loads, applies and stores; tests drive these with any clock they like.
import type { Plan, PlanCatalog } from './licencePlans';

export const DAY_MS = 24 * 3600_000;

export type LicenceStatus = 'trial' | 'active' | 'expired' | 'suspended';
export type Billing = 'direct' | 'market';

/** What is stored per portal. Times are epoch milliseconds. */
export interface LicenceRecord {
  portalId: number;
  /** `market`: Bitrix24 Market's app status drives the licence (see licenceMarket.ts). */
  billing: Billing;
  /** The plan in force (null: never chose one, e.g. still on trial). */
  planCode: string | null;
  /** A plan change waiting for the end of the paid period. */
  nextPlanCode: string | null;
  nextPlanFrom: number | null;
  /**
   * Changes after the next one, in time order: a period paid ahead for another plan keeps its
   * plan when a later change is scheduled (team now, business paid from the 1st, then start).
   */
  laterPlans: PlanChange[];
  trialStartedAt: number;
  trialEndsAt: number;
  /** End of the prepaid access; null: never paid. */
  paidUntil: number | null;
  /** Access without an end (Bitrix24 Market's free and local apps). */
  perpetual: boolean;
  suspendedReason: string | null;
  suspendedAt: number | null;
  /** When the current expiry moment was set: alerts only count thresholds crossed after it. */
  expiryChangedAt: number;
  /** Set when the sessions were closed for lack of access; cleared when they reopen. */
  sessionsClosedAt: number | null;
  /** Last Market status seen (`P`, `T`, …), for the operator's eyes. */
  marketStatus: string | null;
}

/** From `from` on, `code` is the plan in force (until the next change). */
export interface PlanChange {
  code: string;
  from: number;
}

export interface LicenceState {
  status: LicenceStatus;
  /** Plan in force at this moment (a change due by now counts). */
  planCode: string | null;
  /** When the current access ends (trial end or paidUntil); null when it has no end. */
  expiresAt: number | null;
  /** Whole days left (rounded up); 0 once expired; null when suspended or without an end. */
  daysLeft: number | null;
  /** Access ended at this moment (expired) or was suspended at it. */
  since: number | null;
  reason: string | null;
  /** Sending, mirroring and running sessions are allowed. */
  access: boolean;
}

export function newTrial(portalId: number, startedAt: number, trialDays: number): LicenceRecord {
  return {
    portalId,
    billing: 'direct',
    planCode: null,
    nextPlanCode: null,
    nextPlanFrom: null,
    laterPlans: [],
    trialStartedAt: startedAt,
    trialEndsAt: startedAt + trialDays * DAY_MS,
    paidUntil: null,
    perpetual: false,
    suspendedReason: null,
    suspendedAt: null,
    expiryChangedAt: startedAt,
    sessionsClosedAt: null,
    marketStatus: null,
  };
}

/** Every scheduled plan change, in time order. */
export function planChanges(rec: LicenceRecord): PlanChange[] {
  const next = rec.nextPlanCode !== null && rec.nextPlanFrom !== null ? [{ code: rec.nextPlanCode, from: rec.nextPlanFrom }] : [];
  return [...next, ...(rec.laterPlans ?? [])];
}

/**
 * Stores a schedule: sorted by time, one change per moment (the last given wins), and no change
 * to the plan already in force at that moment.
 */
export function withPlanChanges(rec: LicenceRecord, changes: PlanChange[]): LicenceRecord {
  const byTime = new Map<number, string>();
  for (const c of [...changes].sort((a, b) => a.from - b.from)) byTime.set(c.from, c.code);
  const list: PlanChange[] = [];
  let inForce = rec.planCode;
  for (const [from, code] of [...byTime].sort((a, b) => a[0] - b[0])) {
    if (code === inForce) continue;
    list.push({ code, from });
    inForce = code;
  }
  const [next, ...later] = list;
  return { ...rec, nextPlanCode: next?.code ?? null, nextPlanFrom: next?.from ?? null, laterPlans: later };
}

/** The plan in force at moment `t` by the schedule (the record is taken as settled). */
export function planAt(rec: LicenceRecord, t: number): string | null {
  let code = rec.planCode;
  for (const c of planChanges(rec)) if (c.from <= t) code = c.code;
  return code;
}

/** Scheduled plan changes whose time has come become the plan in force. */
export function settle(rec: LicenceRecord, now: number): LicenceRecord {
  const all = planChanges(rec);
  const due = all.filter((c) => now >= c.from);
  if (due.length === 0) return rec;
  return withPlanChanges({ ...rec, planCode: due[due.length - 1]!.code }, all.filter((c) => now < c.from));
}

const daysUntil = (t: number, now: number) => Math.max(0, Math.ceil((t - now) / DAY_MS));

export function evaluate(input: LicenceRecord, now: number): LicenceState {
  const rec = settle(input, now);
  const planCode = rec.planCode;
  if (rec.suspendedReason !== null) {
    return { status: 'suspended', planCode, expiresAt: rec.paidUntil, daysLeft: null, since: rec.suspendedAt, reason: rec.suspendedReason, access: false };
  }
  if (rec.perpetual) return { status: 'active', planCode, expiresAt: null, daysLeft: null, since: null, reason: null, access: true };
  if (rec.paidUntil !== null && rec.paidUntil > now) {
    return { status: 'active', planCode, expiresAt: rec.paidUntil, daysLeft: daysUntil(rec.paidUntil, now), since: null, reason: null, access: true };
  }
  if (rec.paidUntil === null && rec.trialEndsAt > now) {
    return { status: 'trial', planCode, expiresAt: rec.trialEndsAt, daysLeft: daysUntil(rec.trialEndsAt, now), since: null, reason: null, access: true };
  }
  const ended = rec.paidUntil ?? rec.trialEndsAt;
  return { status: 'expired', planCode, expiresAt: ended, daysLeft: 0, since: ended, reason: null, access: false };
}

export class LicenceRuleError extends Error {}

/**
 * A recorded payment: access at once, `paidUntil` extended by the paid plan's period from the
 * later of now and the current `paidUntil`. Paying for a different plan while a paid period
 * runs is a plan change at that period's end; with no paid period running it applies at once.
 */
export function applyPayment(
  input: LicenceRecord,
  catalog: PlanCatalog,
  now: number,
  planCode?: string | null,
): { record: LicenceRecord; plan: Plan; from: number; until: number } {
  const rec = settle(input, now);
  const from = Math.max(now, rec.paidUntil ?? 0);
  // The plan in force when the paid period starts (a change due by then counts).
  const inForceAtFrom = planAt(rec, from);
  const code = planCode ?? inForceAtFrom;
  const plan = catalog.get(code);
  if (!plan) throw new LicenceRuleError(code ? `unknown plan "${code}"` : 'the portal has no plan yet: say which plan is paid');
  const until = from + plan.periodDays * DAY_MS;
  let next: LicenceRecord = { ...rec, paidUntil: until, perpetual: false, expiryChangedAt: now };
  if (from > now) {
    // Paying ahead: the paid period starts when the current one ends. Changes inside the time
    // already paid for stay (they were paid for too); one due exactly at `from` gives way.
    if (plan.code !== inForceAtFrom) next = withPlanChanges(next, [...planChanges(rec).filter((c) => c.from < from), { code: plan.code, from }]);
  } else {
    next = withPlanChanges({ ...next, planCode: plan.code }, []);
  }
  return { record: next, plan, from, until };
}

/**
 * A change of plan takes effect at the end of the paid period; with none running, at once.
 * Periods paid ahead for another plan (a change inside the paid time) keep their plan: the new
 * plan follows them. A change already scheduled for the end of the period is replaced.
 * `effectiveAt`: from when the plan is in force without a break up to the end of the paid time.
 */
export function schedulePlanChange(input: LicenceRecord, catalog: PlanCatalog, now: number, planCode: string): { record: LicenceRecord; effectiveAt: number } {
  const rec = settle(input, now);
  if (!catalog.get(planCode)) throw new LicenceRuleError(`unknown plan "${planCode}"`);
  if (rec.paidUntil !== null && rec.paidUntil > now) {
    const end = rec.paidUntil;
    const record = withPlanChanges(rec, [...planChanges(rec).filter((c) => c.from < end), { code: planCode, from: end }]);
    let since: number | null = record.planCode === planCode ? now : null;
    for (const c of planChanges(record)) since = c.code === planCode ? (since ?? c.from) : null;
    return { record, effectiveAt: since ?? end };
  }
  return { record: withPlanChanges({ ...rec, planCode }, []), effectiveAt: now };
}

export function suspend(rec: LicenceRecord, reason: string, now: number): LicenceRecord {
  const r = reason.trim();
  if (!r) throw new LicenceRuleError('a suspension needs a reason (the portal admins see it)');
  return { ...rec, suspendedReason: r, suspendedAt: rec.suspendedAt ?? now };
}

export function unsuspend(rec: LicenceRecord): LicenceRecord {
  return { ...rec, suspendedReason: null, suspendedAt: null };
}

/** How many numbers the licence allows right now (0 without access). */
export function numberAllowance(state: LicenceState, catalog: PlanCatalog): number {
  if (!state.access) return 0;
  const plan = catalog.get(state.planCode);
  if (state.status === 'trial' || !plan) return Math.max(plan?.numbers ?? 0, catalog.trialNumbers());
  return plan.numbers;
}

// ---------------------------------------------------------------- maintenance windows

export interface MaintenanceWindow {
  id: number;
  startAt: number;
  endAt: number;
  reason: string;
}

/** A window's length in whole days, a started day counting as a day (never less than one). */
export function maintenanceDays(w: { startAt: number; endAt: number }): number {
  return Math.max(1, Math.ceil((w.endAt - w.startAt) / DAY_MS));
}

export interface Interval {
  from: number;
  until: number;
}

/** Parts of `seg` not covered by any of `cuts`. */
function subtract(seg: Interval, cuts: Interval[]): Interval[] {
  let parts = [seg];
  for (const c of cuts) {
    const next: Interval[] = [];
    for (const p of parts) {
      if (c.until <= p.from || c.from >= p.until) next.push(p);
      else {
        if (c.from > p.from) next.push({ from: p.from, until: c.from });
        if (c.until < p.until) next.push({ from: c.until, until: p.until });
      }
    }
    parts = next;
  }
  return parts;
}

/**
 * Whether the portal had access at some moment of the window: its trial, a paid period or an
 * earlier credit overlaps it outside every suspension. `suspensions` are the portal's past and
 * current suspensions (`until` Infinity while one lasts); the record's current one counts too.
 */
export function accessRanDuring(rec: LicenceRecord, periods: Interval[], w: { startAt: number; endAt: number }, suspensions: Interval[] = []): boolean {
  if (rec.billing === 'market' || rec.perpetual) return false; // Bitrix24 runs those periods
  const cuts = [...suspensions];
  if (rec.suspendedReason !== null && rec.suspendedAt !== null) cuts.push({ from: rec.suspendedAt, until: Number.POSITIVE_INFINITY });
  const all = [{ from: rec.trialStartedAt, until: rec.trialEndsAt }, ...periods];
  return all.some((p) => {
    const seg = { from: Math.max(p.from, w.startAt), until: Math.min(p.until, w.endAt) };
    return seg.until > seg.from && subtract(seg, cuts).length > 0;
  });
}

/**
 * The whole days window `w` adds for a portal, given the windows already credited to it.
 * Overlapping windows (directly or through one another) together give the days of their union,
 * so an overlap is never credited twice; a window that overlaps none gives `maintenanceDays(w)`.
 */
export function maintenanceCredit(w: { startAt: number; endAt: number }, credited: { startAt: number; endAt: number; days: number }[]): number {
  let from = w.startAt;
  let until = w.endAt;
  const group = new Set<(typeof credited)[number]>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const c of credited) {
      if (!group.has(c) && c.startAt < until && c.endAt > from) {
        group.add(c);
        from = Math.min(from, c.startAt);
        until = Math.max(until, c.endAt);
        grew = true;
      }
    }
  }
  const given = [...group].reduce((n, c) => n + c.days, 0);
  return Math.max(0, maintenanceDays({ startAt: from, endAt: until }) - given);
}

/** Extends the current access by `days`: the paid period when there is one, else the trial. */
export function creditDays(rec: LicenceRecord, days: number, now: number): { record: LicenceRecord; from: number; until: number } {
  if (rec.paidUntil !== null) {
    const end = rec.paidUntil;
    const until = end + days * DAY_MS;
    // The credit lengthens the period that ends at `end`: a change due then moves with it.
    const changes = planChanges(rec).map((c) => (c.from >= end ? { ...c, from: c.from + days * DAY_MS } : c));
    return { record: withPlanChanges({ ...rec, paidUntil: until, expiryChangedAt: now }, changes), from: end, until };
  }
  const until = rec.trialEndsAt + days * DAY_MS;
  return { record: { ...rec, trialEndsAt: until, expiryChangedAt: now }, from: rec.trialEndsAt, until };
}

// ---------------------------------------------------------------- alerts and notices

/** Days before expiry at which admins are told; 0 means "on expiry". */
export const ALERT_THRESHOLDS = [7, 3, 1] as const;

/**
 * Which expiry alert is due now, if any. Each threshold fires once per expiry moment (the caller
 * keeps the record). Thresholds already behind when the expiry was set (a 3-day trial's "7 days
 * left") are skipped rather than fired together; of several due at once only the nearest is sent.
 * Returns the threshold to send and every threshold to mark as done.
 */
export function dueAlert(state: LicenceState, rec: LicenceRecord, now: number, done: Set<number>): { send: number; mark: number[] } | null {
  if (state.status === 'suspended' || state.expiresAt === null) return null;
  if (state.status === 'expired') return done.has(0) ? null : { send: 0, mark: [0] };
  const due = ALERT_THRESHOLDS.filter((t) => now >= state.expiresAt! - t * DAY_MS && state.expiresAt! - t * DAY_MS > rec.expiryChangedAt && !done.has(t));
  if (due.length === 0) return null;
  const send = Math.min(...due);
  return { send, mark: ALERT_THRESHOLDS.filter((t) => now >= state.expiresAt! - t * DAY_MS && !done.has(t)) };
}

export type NoticeKind = 'expiring' | 'expired' | 'suspended' | 'maintenance';

/** Notices start this long before a declared window and last until it ends. */
export const MAINTENANCE_NOTICE_MS = 3 * DAY_MS;
/** The "expiring" banner shows from this many days before the end. */
export const EXPIRING_NOTICE_DAYS = 7;
/** Sessions stay up this long after access ends, then close keeping their logins. */
export const SESSION_GRACE_MS = 3 * DAY_MS;
