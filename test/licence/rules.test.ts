import { expect } from 'chai';
import { DAY_MS, accessRanDuring, applyPayment, creditDays, evaluate, maintenanceCredit, newTrial, schedulePlanChange, suspend, type LicenceRecord } from '../../server/domain/licence';
import { applyAppInfo } from '../../server/domain/licenceMarket';
import { parsePlans } from '../../server/domain/licencePlans';
import { loadPlans } from '../../server/licence/plansFile';
import type { RunningServer } from '../../server/main';
import { testDatabases } from '../helpers/databases';
import { waitFor } from '../helpers/server';
import { licenceServer, newPortal, type OffsetClock } from './world';

const catalog = loadPlans();
const T0 = Date.UTC(2026, 0, 1);

describe('licence rules (pure)', () => {
  it('loads and validates manifest/plans.json, and refuses a bad file naming the field', () => {
    expect(catalog.version).to.equal(1);
    expect(catalog.get('team')?.numbers).to.equal(3);
    expect(() => parsePlans({ version: 1, plans: [{ code: 'x', names: { en: 'X' }, priceEur: 1, periodDays: 30, numbers: 1 }] })).to.throw(/plans\.0\.names\.ru/);
    expect(() => parsePlans({ version: 2, plans: [] })).to.throw(/version/);
    const dup = { code: 'a', names: { en: 'A', ru: 'A', es: 'A', pt: 'A' }, priceEur: 1, periodDays: 30, numbers: 1 };
    expect(() => parsePlans({ version: 1, plans: [dup, dup] })).to.throw(/duplicate plan code "a"/);
  });

  it('trial runs for its days, then expires', () => {
    const rec = newTrial(1, T0, 3);
    expect(evaluate(rec, T0)).to.include({ status: 'trial', daysLeft: 3, access: true });
    expect(evaluate(rec, T0 + 2.5 * DAY_MS)).to.include({ status: 'trial', daysLeft: 1 });
    expect(evaluate(rec, T0 + 3 * DAY_MS)).to.include({ status: 'expired', daysLeft: 0, access: false });
  });

  it('a payment extends from the later of now and paidUntil', () => {
    const rec = newTrial(1, T0, 3);
    const first = applyPayment(rec, catalog, T0 + DAY_MS, 'team');
    expect(first.record.paidUntil).to.equal(T0 + DAY_MS + 30 * DAY_MS);
    const early = applyPayment(first.record, catalog, T0 + 10 * DAY_MS);
    expect(early.record.paidUntil).to.equal(T0 + 61 * DAY_MS);
    const late = applyPayment(early.record, catalog, T0 + 100 * DAY_MS);
    expect(late.from).to.equal(T0 + 100 * DAY_MS);
    expect(late.record.paidUntil).to.equal(T0 + 130 * DAY_MS);
    expect(() => applyPayment(rec, catalog, T0)).to.throw(/say which plan/);
    expect(() => applyPayment(rec, catalog, T0, 'gold')).to.throw(/unknown plan "gold"/);
  });

  it('a maintenance credit moves a plan change due at the end of the paid period along with it', () => {
    const paid = applyPayment(newTrial(1, T0, 3), catalog, T0, 'business').record; // business until day 30
    const changed = schedulePlanChange(paid, catalog, T0 + DAY_MS, 'start');
    expect(changed.effectiveAt).to.equal(T0 + 30 * DAY_MS);
    const credited = creditDays(changed.record, 2, T0 + 5 * DAY_MS).record;
    expect(credited.paidUntil).to.equal(T0 + 32 * DAY_MS);
    expect(credited.nextPlanFrom, 'the change waits for the end of the lengthened period').to.equal(T0 + 32 * DAY_MS);
    expect(evaluate(credited, T0 + 31 * DAY_MS)).to.include({ status: 'active', planCode: 'business' });
    expect(evaluate(credited, T0 + 32 * DAY_MS).planCode).to.equal('start');
    // A credit without a change waiting leaves the schedule empty.
    expect(creditDays(paid, 1, T0).record).to.include({ nextPlanCode: null, nextPlanFrom: null });
  });

  it('a period paid ahead for another plan keeps its plan when a later change or payment is scheduled', () => {
    const team = applyPayment(newTrial(1, T0, 3), catalog, T0, 'team').record; // team: days 0–30
    const ahead = applyPayment(team, catalog, T0 + DAY_MS, 'business').record; // business: days 30–60
    expect(ahead).to.include({ nextPlanCode: 'business', nextPlanFrom: T0 + 30 * DAY_MS, paidUntil: T0 + 60 * DAY_MS });
    const plans = (r: LicenceRecord) => [10, 45, 61].map((d) => evaluate(r, T0 + d * DAY_MS).planCode);

    const toStart = schedulePlanChange(ahead, catalog, T0 + 2 * DAY_MS, 'start');
    expect(toStart.effectiveAt, 'after the period paid for business').to.equal(T0 + 60 * DAY_MS);
    expect(plans(toStart.record)).to.deep.equal(['team', 'business', 'start']);
    // Changing the mind again replaces the change at the period end, not the paid period.
    const toCorporate = schedulePlanChange(toStart.record, catalog, T0 + 3 * DAY_MS, 'corporate');
    expect(plans(toCorporate.record)).to.deep.equal(['team', 'business', 'corporate']);
    // Back to the plan in force now: after the business period, and nothing else is dropped.
    const back = schedulePlanChange(toCorporate.record, catalog, T0 + 3 * DAY_MS, 'team');
    expect(back.effectiveAt).to.equal(T0 + 60 * DAY_MS);
    expect(plans(back.record)).to.deep.equal(['team', 'business', 'team']);
    // The plan already paid ahead: in force from the start of its period, schedule unchanged.
    const same = schedulePlanChange(ahead, catalog, T0 + 2 * DAY_MS, 'business');
    expect(same.effectiveAt).to.equal(T0 + 30 * DAY_MS);
    expect(plans(same.record)).to.deep.equal(['team', 'business', 'business']);

    // A second payment ahead, for a third plan, follows the business period instead of replacing it.
    const third = applyPayment(ahead, catalog, T0 + 2 * DAY_MS, 'start');
    expect(third.from).to.equal(T0 + 60 * DAY_MS);
    expect(third.record.paidUntil).to.equal(T0 + 90 * DAY_MS);
    expect(plans(third.record)).to.deep.equal(['team', 'business', 'start']);
    // Paying ahead without naming a plan pays for the plan in force when the period starts.
    expect(applyPayment(third.record, catalog, T0 + 3 * DAY_MS).plan.code).to.equal('start');
    // Every change settles in turn.
    const settledLater = evaluate(third.record, T0 + 89 * DAY_MS);
    expect(settledLater).to.include({ status: 'active', planCode: 'start' });
    // A credit lengthens the last period; the business period keeps its start.
    const credited = creditDays(third.record, 2, T0 + 4 * DAY_MS).record;
    expect(plans(credited)).to.deep.equal(['team', 'business', 'start']);
    expect(evaluate(credited, T0 + 59 * DAY_MS).planCode).to.equal('business');
    expect(evaluate(credited, T0 + 91 * DAY_MS)).to.include({ status: 'active', planCode: 'start' });
  });

  it('access during a window leaves out suspensions, past ones too', () => {
    const paid = applyPayment(newTrial(1, T0, 3), catalog, T0, 'team');
    const periods = [{ from: paid.from, until: paid.until }];
    const w = { startAt: T0 + 5 * DAY_MS, endAt: T0 + 6 * DAY_MS };
    expect(accessRanDuring(paid.record, periods, w)).to.equal(true);
    // Suspended from day 4 to day 7, lifted since: no access during the window.
    expect(accessRanDuring(paid.record, periods, w, [{ from: T0 + 4 * DAY_MS, until: T0 + 7 * DAY_MS }])).to.equal(false);
    // Suspended for part of the window only: access ran in the rest of it.
    expect(accessRanDuring(paid.record, periods, w, [{ from: T0 + 4 * DAY_MS, until: T0 + 5.5 * DAY_MS }])).to.equal(true);
    // Two suspensions that together cover the window.
    expect(accessRanDuring(paid.record, periods, w, [{ from: T0 + 4 * DAY_MS, until: T0 + 5.5 * DAY_MS }, { from: T0 + 5.5 * DAY_MS, until: T0 + 8 * DAY_MS }])).to.equal(false);
    // The current suspension counts without an interval row (since before the window).
    expect(accessRanDuring(suspend(paid.record, 'abuse', T0 + 4 * DAY_MS), periods, w)).to.equal(false);
    expect(accessRanDuring(suspend(paid.record, 'abuse', T0 + 5.5 * DAY_MS), periods, w)).to.equal(true);
  });

  it('overlapping windows credit the days of their union, never the overlap twice', () => {
    const h = 3600_000;
    const a = { startAt: T0, endAt: T0 + 30 * h }; // 30 h: 2 days
    expect(maintenanceCredit(a, [])).to.equal(2);
    const b = { startAt: T0 + 20 * h, endAt: T0 + 54 * h }; // 34 h alone: 2 days; with a: 54 h, 3 days
    expect(maintenanceCredit(b, [{ ...a, days: 2 }])).to.equal(1);
    const inside = { startAt: T0 + h, endAt: T0 + 2 * h };
    expect(maintenanceCredit(inside, [{ ...a, days: 2 }]), 'a window inside another adds nothing').to.equal(0);
    // c overlaps only b, which overlaps a: the three together span 80 h, 4 days.
    const c = { startAt: T0 + 50 * h, endAt: T0 + 80 * h };
    expect(maintenanceCredit(c, [{ ...a, days: 2 }, { ...b, days: 1 }])).to.equal(1);
    // Disjoint windows each count on their own.
    expect(maintenanceCredit({ startAt: T0 + 100 * h, endAt: T0 + 101 * h }, [{ ...a, days: 2 }])).to.equal(1);
  });

  describe('Bitrix24 Market status (app.info)', () => {
    const base: LicenceRecord = newTrial(7, T0, 3);
    const now = T0 + DAY_MS;
    it('P and S: paid until now + DAYS; PAYMENT_EXPIRED=Y: expired', () => {
      for (const STATUS of ['P', 'S']) {
        const r = applyAppInfo(base, { STATUS, PAYMENT_EXPIRED: 'N', DAYS: '25' }, now);
        expect(r.billing).to.equal('market');
        expect(evaluate(r, now)).to.include({ status: 'active', daysLeft: 25 });
        const gone = applyAppInfo(base, { STATUS, PAYMENT_EXPIRED: 'Y', DAYS: -4 }, now);
        expect(evaluate(gone, now).status).to.equal('expired');
        const expiredButDays = applyAppInfo(base, { STATUS, PAYMENT_EXPIRED: 'Y', DAYS: 5 }, now);
        expect(evaluate(expiredButDays, now).status, 'PAYMENT_EXPIRED wins over DAYS').to.equal('expired');
      }
    });
    it('D and T: trial until now + DAYS, expired when the payment expired', () => {
      for (const STATUS of ['D', 'T']) {
        const r = applyAppInfo(base, { STATUS, PAYMENT_EXPIRED: 'N', DAYS: 14 }, now);
        expect(evaluate(r, now)).to.include({ status: 'trial', daysLeft: 14 });
        expect(evaluate(applyAppInfo(base, { STATUS, PAYMENT_EXPIRED: 'Y', DAYS: 0 }, now), now).status).to.equal('expired');
      }
    });
    it('F and L: access without an end', () => {
      for (const STATUS of ['F', 'L']) {
        const r = applyAppInfo(base, { STATUS, PAYMENT_EXPIRED: 'N', DAYS: null }, now);
        expect(evaluate(r, now + 1000 * DAY_MS)).to.include({ status: 'active', expiresAt: null, daysLeft: null, access: true });
      }
    });
    it('the same answer later does not move the end; suspension survives; a bad status is refused', () => {
      const a = applyAppInfo(base, { STATUS: 'P', PAYMENT_EXPIRED: 'N', DAYS: 10 }, now);
      const b = applyAppInfo(a, { STATUS: 'P', PAYMENT_EXPIRED: 'N', DAYS: 10 }, now + 3600_000);
      expect(b.paidUntil).to.equal(a.paidUntil);
      expect(b.expiryChangedAt).to.equal(a.expiryChangedAt);
      const suspended = applyAppInfo({ ...a, suspendedReason: 'abuse', suspendedAt: now }, { STATUS: 'P', DAYS: 10 }, now);
      expect(evaluate(suspended, now).status).to.equal('suspended');
      expect(() => applyAppInfo(base, { STATUS: 'X' }, now)).to.throw();
    });
  });
});

for (const target of testDatabases()) {
  describe(`licence rules with a controllable clock on ${target.name}`, function () {
    let srv: RunningServer;
    let clock: OffsetClock;
    before(async () => {
      const url = await target.create();
      ({ srv, clock } = await licenceServer(url ? { DATABASE_URL: url } : {}));
    });
    after(async () => {
      await srv?.close();
      await target.dropAll();
    });
    const L = () => srv.licences;
    afterEach(() => {
      clock.offset = 0;
    });
    const audit = async (portalId: number) => (await srv.db.repos.audit.list({ portalId })).map((e) => e.action);

    it('a new portal is on trial from install, then expires', async () => {
      const p = await newPortal(srv);
      const v = (await p.user.get('/licence')).body;
      expect(v).to.deep.include({ status: 'trial', plan: null, daysLeft: 3, canSend: true, reason: null });
      expect(v.notice.kind).to.equal('expiring');
      const start = clock.offset;
      clock.days(3);
      const gone = (await p.user.get('/licence?lang=ru')).body;
      expect(gone).to.deep.include({ status: 'expired', daysLeft: 0, canSend: false });
      expect(gone.notice.kind).to.equal('expired');
      expect(gone.notice.message).to.match(/Пробный период закончился/);
      clock.offset = start;
    });

    it('payment before and after expiry', async () => {
      const p = await newPortal(srv);
      const start = clock.offset;
      clock.days(1);
      const t1 = clock.now();
      const r1 = await L().recordPayment(p.portalId, { planCode: 'team' }, 'test');
      expect(r1.after.paidUntil! - t1).to.be.within(30 * DAY_MS, 30 * DAY_MS + 1000);
      const v = (await p.user.get('/licence', { 'Accept-Language': 'es-ES,es;q=0.9' })).body;
      expect(v).to.deep.include({ status: 'active', daysLeft: 30, canSend: true });
      expect(v.plan).to.deep.equal({ code: 'team', name: 'Equipo' });
      // Before expiry: from paidUntil.
      clock.days(10);
      const r2 = await L().recordPayment(p.portalId, {}, 'test');
      expect(r2.after.paidUntil).to.equal(r1.after.paidUntil! + 30 * DAY_MS);
      // After expiry: from now.
      clock.days(80);
      expect((await L().state(p.portalId, true)).status).to.equal('expired');
      const t3 = clock.now();
      const r3 = await L().recordPayment(p.portalId, { amountEur: 40, reference: 'INV-3' }, 'test');
      expect(r3.after.paidUntil! - t3).to.be.within(30 * DAY_MS, 30 * DAY_MS + 1000);
      expect((await L().state(p.portalId, true)).status).to.equal('active');
      const pays = await L().payments(p.portalId);
      expect(pays.map((x) => x.amountEur)).to.deep.equal([40, 39, 39]);
      expect(await audit(p.portalId)).to.include.members(['licence.payment']);
      clock.offset = start;
    });

    it('a plan change takes effect at the end of the paid period', async () => {
      const p = await newPortal(srv);
      const start = clock.offset;
      const paid = await L().recordPayment(p.portalId, { planCode: 'business' }, 'test');
      clock.days(5);
      const change = await L().schedulePlanChange(p.portalId, 'start', 'test');
      expect(change.effectiveAt).to.equal(paid.after.paidUntil);
      expect((await L().state(p.portalId, true)).planCode).to.equal('business');
      // Paying ahead pays for the next period, on the new plan's terms.
      const ahead = await L().recordPayment(p.portalId, {}, 'test');
      expect(ahead.payment!.planCode).to.equal('start');
      expect(ahead.after.paidUntil).to.equal(paid.after.paidUntil! + 30 * DAY_MS);
      clock.days(26);
      expect((await L().state(p.portalId, true)).planCode).to.equal('start');
      await L().tick();
      const { record } = await L().record(p.portalId);
      expect(record.planCode).to.equal('start');
      expect(record.nextPlanCode).to.equal(null);
      expect(await audit(p.portalId)).to.include('licence.plan_changed');
      clock.offset = start;
    });

    it('a plan change after a payment ahead for another plan: the period paid for runs on the plan paid for', async () => {
      const p = await newPortal(srv);
      const start = clock.offset;
      const team = await L().recordPayment(p.portalId, { planCode: 'team' }, 'test');
      const P1 = team.after.paidUntil!;
      const ahead = await L().recordPayment(p.portalId, { planCode: 'business' }, 'test');
      const P2 = ahead.after.paidUntil!;
      const change = await L().schedulePlanChange(p.portalId, 'start', 'test');
      expect(change.effectiveAt).to.equal(P2);
      const o = await L().overview(p.portalId);
      expect(o.licence.nextPlan).to.deep.equal({ code: 'business', from: new Date(P1).toISOString() });
      expect(o.licence.planChanges.map((c) => c.code)).to.deep.equal(['business', 'start']);
      // The schedule survives a reload from the database and settles step by step.
      clock.advance(P1 - clock.now() + DAY_MS);
      await L().tick();
      expect((await L().record(p.portalId)).record).to.include({ planCode: 'business', nextPlanCode: 'start', nextPlanFrom: P2 });
      clock.advance(P2 - clock.now() + 3600_000);
      await L().tick();
      expect((await L().record(p.portalId)).record).to.include({ planCode: 'start', nextPlanCode: null });
      expect((await L().record(p.portalId)).record.laterPlans).to.deep.equal([]);
      clock.offset = start;
    });

    it('a maintenance credit keeps a plan change at the end of the lengthened paid period', async () => {
      const p = await newPortal(srv, 'credited change');
      const start = clock.offset;
      const t0 = clock.now();
      const paid = await L().recordPayment(p.portalId, { planCode: 'business' }, 'test');
      await L().schedulePlanChange(p.portalId, 'start', 'test');
      clock.advance(3 * 3600_000);
      await srv.operator.declareMaintenance({ startAt: t0 + 3600_000, endAt: t0 + 2 * 3600_000, reason: 'network' }, 'test');
      const { record } = await L().record(p.portalId);
      expect(record.paidUntil).to.equal(paid.after.paidUntil! + DAY_MS);
      expect(record.nextPlanFrom).to.equal(record.paidUntil);
      clock.advance(paid.after.paidUntil! - clock.now() + 3600_000); // inside the credited day
      await L().tick();
      expect((await L().state(p.portalId, true)).planCode, 'the credited day is on the paid plan').to.equal('business');
      clock.offset = start;
    });

    it('suspension over an active licence, and back', async () => {
      const p = await newPortal(srv);
      await L().recordPayment(p.portalId, { planCode: 'team' }, 'test');
      const until = (await L().record(p.portalId)).record.paidUntil;
      await L().suspend(p.portalId, 'chargeback under review', 'test');
      const v = (await p.user.get('/licence')).body;
      expect(v).to.deep.include({ status: 'suspended', canSend: false, reason: 'chargeback under review' });
      expect(v.notice).to.deep.equal({ kind: 'suspended', message: 'InCRM is suspended for this portal: chargeback under review' });
      await L().unsuspend(p.portalId, 'test');
      expect((await p.user.get('/licence')).body).to.deep.include({ status: 'active', canSend: true });
      expect((await L().record(p.portalId)).record.paidUntil).to.equal(until);
    });

    it('the number limit of the plan', async () => {
      const p = await newPortal(srv);
      await L().recordPayment(p.portalId, { planCode: 'start' }, 'test');
      expect((await p.admin.post('/numbers')).status).to.equal(201);
      const second = await p.admin.post('/numbers');
      expect(second.status).to.equal(402);
      expect(second.body.error.code).to.equal('number_limit');
      expect(second.body.error.message).to.equal('The Start plan includes 1 WhatsApp number; disconnect one or change the plan to connect another.');
    });

    it('a maintenance window credits exactly the portals with access during it, exactly once', async () => {
      const start = clock.offset;
      const t0 = clock.now();
      const paid = await newPortal(srv, 'paid');
      await L().recordPayment(paid.portalId, { planCode: 'team' }, 'test');
      const lapsed = await newPortal(srv, 'lapsed'); // trial ends at t0 + 3d, before the window
      await L().install(lapsed.portalId, t0);
      const suspended = await newPortal(srv, 'suspended');
      await L().recordPayment(suspended.portalId, { planCode: 'team' }, 'test');
      const later = await newPortal(srv, 'installed after');
      await L().install(later.portalId, t0 + 7 * DAY_MS); // its install comes after the window
      const trial = await newPortal(srv, 'trial in window');
      clock.days(4);
      await L().suspend(suspended.portalId, 'abuse', 'test');
      await L().install(trial.portalId, clock.now() + DAY_MS / 2); // trial from t0 + 4.5d
      const before = async (id: number) => (await L().record(id)).record;
      const snap = new Map<number, { paidUntil: number | null; trialEndsAt: number }>();
      for (const id of [paid.portalId, lapsed.portalId, suspended.portalId, trial.portalId]) {
        const r = await before(id);
        snap.set(id, { paidUntil: r.paidUntil, trialEndsAt: r.trialEndsAt });
      }
      // Window t0+5d … t0+6d+1h: 25 hours, credited as 2 whole days.
      const declared = await srv.operator.declareMaintenance({ startAt: t0 + 5 * DAY_MS, endAt: t0 + 6 * DAY_MS + 3600_000, reason: 'database move' }, 'test');
      expect(declared.days).to.equal(2);
      expect(declared.credited, 'nothing before the window ends').to.deep.equal([]);
      const soon = (await paid.user.get('/licence')).body.notice;
      expect(soon.kind, 'notice before the window').to.equal('maintenance');
      expect(soon.message).to.match(/^Planned maintenance .*database move/);
      clock.days(1.5); // inside the window
      await L().tick();
      const during = (await paid.user.get('/licence')).body.notice;
      expect(during.kind).to.equal('maintenance');
      expect(during.message).to.match(/Maintenance in progress until .*database move/);
      clock.days(1.5); // t0 + 7d: the window is over
      await L().tick();
      await L().tick();
      await L().applyMaintenance();
      const after = async (id: number) => (await L().record(id)).record;
      expect((await after(paid.portalId)).paidUntil).to.equal(snap.get(paid.portalId)!.paidUntil! + 2 * DAY_MS);
      expect((await after(trial.portalId)).trialEndsAt).to.equal(snap.get(trial.portalId)!.trialEndsAt + 2 * DAY_MS);
      expect((await after(lapsed.portalId)).trialEndsAt).to.equal(snap.get(lapsed.portalId)!.trialEndsAt);
      expect((await after(suspended.portalId)).paidUntil).to.equal(snap.get(suspended.portalId)!.paidUntil);
      expect((await after(later.portalId)).trialEndsAt).to.equal(t0 + 10 * DAY_MS);
      const credits = await srv.db.repos.licences.credits(declared.window.id);
      expect(credits.map((c) => c.portalId).filter((id) => [paid.portalId, trial.portalId, lapsed.portalId, suspended.portalId, later.portalId].includes(id)).sort()).to.deep.equal(
        [paid.portalId, trial.portalId].sort(),
      );
      expect((await srv.db.repos.audit.list({ portalId: paid.portalId })).filter((e) => e.action === 'licence.maintenance_credit')).to.have.length(1);
      clock.offset = start;
    });

    it('a trial portal (and any portal in its last 7 days) sees the maintenance notice before and during a window, with its expiry', async () => {
      const start = clock.offset;
      clock.days(200); // far from the other tests' windows
      const trial = await newPortal(srv, 'trial sees maintenance');
      const ending = await newPortal(srv, 'last days');
      await L().recordPayment(ending.portalId, { planCode: 'team' }, 'test');
      clock.days(25); // the trial has expired by now; restart it so it runs through the window
      await L().record(trial.portalId);
      await srv.db.knex('licences').where({ portal_id: trial.portalId }).update({ trial_started_at: clock.now(), trial_ends_at: clock.now() + 3 * DAY_MS });
      const t = clock.now();
      expect((await trial.user.get('/licence')).body.notice.kind, 'no window yet').to.equal('expiring');
      await srv.operator.declareMaintenance({ startAt: t + DAY_MS, endAt: t + DAY_MS + 2 * 3600_000, reason: 'storage upgrade' }, 'test');
      for (const p of [trial, ending]) {
        const before = (await p.user.get('/licence')).body;
        expect(before.status).to.be.oneOf(['trial', 'active']);
        expect(before.notice.kind, 'before the window').to.equal('maintenance');
        expect(before.notice.message).to.match(/^Planned maintenance .*storage upgrade/);
        expect(before.notice.message, 'the expiry is still told').to.match(/ends in [35] days/);
      }
      expect((await trial.user.get('/licence')).body.notice.message).to.include('The trial ends in 3 days');
      clock.advance(DAY_MS + 3600_000);
      const during = (await trial.user.get('/licence')).body.notice;
      expect(during.kind).to.equal('maintenance');
      expect(during.message).to.match(/^Maintenance in progress until .*storage upgrade.*The trial ends in 2 days/);
      const ru = (await trial.user.get('/licence?lang=ru')).body.notice.message;
      expect(ru).to.match(/^Идут технические работы/).and.include('Пробный период');
      clock.advance(2 * 3600_000); // the window is over: the expiry notice alone again
      expect((await trial.user.get('/licence')).body.notice.kind).to.equal('expiring');
      clock.offset = start;
    });

    it('a portal suspended through a window gets no credit, even when unsuspended before the credit runs', async () => {
      const start = clock.offset;
      clock.days(400); // clear of the other tests' windows
      const t0 = clock.now();
      const p = await newPortal(srv, 'suspended through');
      await L().recordPayment(p.portalId, { planCode: 'team' }, 'test');
      const partly = await newPortal(srv, 'suspended for part');
      await L().recordPayment(partly.portalId, { planCode: 'team' }, 'test');
      clock.days(1);
      await L().suspend(p.portalId, 'chargeback', 'test');
      clock.days(0.5);
      await L().suspend(partly.portalId, 'abuse report', 'test'); // from day 1.5, into the window
      clock.days(3);
      await L().unsuspend(p.portalId, 'test');
      await L().unsuspend(partly.portalId, 'test');
      const before = { p: (await L().record(p.portalId)).record.paidUntil!, partly: (await L().record(partly.portalId)).record.paidUntil! };
      // Declared afterwards, for day 1.25 to day 2.25.
      const w = await srv.operator.declareMaintenance({ startAt: t0 + 1.25 * DAY_MS, endAt: t0 + 2.25 * DAY_MS, reason: 'datacenter power' }, 'test');
      await L().tick();
      expect(w.credited).to.include(partly.portalId).and.not.include(p.portalId);
      expect((await L().record(p.portalId)).record.paidUntil, 'suspended from day 1 to day 4.5').to.equal(before.p);
      expect((await L().record(partly.portalId)).record.paidUntil, 'access ran from day 1.25 to 1.5').to.equal(before.partly + DAY_MS);
      const rows = await srv.db.knex('licence_suspensions').where({ portal_id: p.portalId });
      expect(rows).to.have.length(1);
      expect(Number(rows[0].from_at)).to.be.closeTo(t0 + DAY_MS, 1000);
      expect(Number(rows[0].until_at)).to.be.closeTo(t0 + 4.5 * DAY_MS, 1000);
      clock.offset = start;
    });

    it('two overlapping windows credit their union once, not the overlap twice', async () => {
      const start = clock.offset;
      clock.days(450);
      const t0 = clock.now();
      const p = await newPortal(srv, 'two windows');
      const paid = await L().recordPayment(p.portalId, { planCode: 'business-year' }, 'test');
      clock.days(5);
      const h = 3600_000;
      const a = await srv.operator.declareMaintenance({ startAt: t0 + DAY_MS, endAt: t0 + DAY_MS + 30 * h, reason: 'disk' }, 'test');
      const b = await srv.operator.declareMaintenance({ startAt: t0 + DAY_MS + 20 * h, endAt: t0 + DAY_MS + 54 * h, reason: 'disk again' }, 'test');
      expect([a.days, b.days]).to.deep.equal([2, 2]);
      await L().tick();
      expect((await L().record(p.portalId)).record.paidUntil! - paid.after.paidUntil!, '54 hours of maintenance: 3 days').to.equal(3 * DAY_MS);
      const listed = (await srv.operator.listMaintenance()).filter((x) => x.id === a.window.id || x.id === b.window.id);
      expect(listed.map((x) => x.credits.find((c) => c.portalId === p.portalId)?.days)).to.deep.equal([2, 1]);
      // A third window inside the first gives nothing more.
      await srv.operator.declareMaintenance({ startAt: t0 + DAY_MS + h, endAt: t0 + DAY_MS + 2 * h, reason: 'disk, once more' }, 'test');
      expect((await L().record(p.portalId)).record.paidUntil! - paid.after.paidUntil!).to.equal(3 * DAY_MS);
      clock.offset = start;
    });

    it('Market status drives a Bitrix24 portal; direct payments are refused for it', async () => {
      const p = await newPortal(srv);
      await L().applyMarketStatus(p.portalId, { STATUS: 'P', PAYMENT_EXPIRED: 'N', DAYS: '12', LICENSE: 'de_ent10000' });
      expect((await p.user.get('/licence')).body).to.deep.include({ status: 'active', daysLeft: 12 });
      await L().applyMarketStatus(p.portalId, { STATUS: 'P', PAYMENT_EXPIRED: 'Y', DAYS: '-2' });
      expect((await p.user.get('/licence')).body).to.deep.include({ status: 'expired', canSend: false });
      let err: unknown = null;
      await L().recordPayment(p.portalId, { planCode: 'team' }, 'test').catch((e) => (err = e));
      expect(String(err)).to.match(/Bitrix24 Market/);
      err = null;
      await L().applyMarketStatus(p.portalId, { STATUS: 'Q' }).catch((e) => (err = e));
      expect((err as { status: number }).status).to.equal(400);
    });

    it('alerts 7, 3, 1 days before expiry and on expiry: once each, to the CRM and as the banner', async () => {
      const start = clock.offset;
      const p = await newPortal(srv);
      await L().recordPayment(p.portalId, { planCode: 'team' }, 'test');
      const alerts = async () => (await srv.db.knex('crm_log').where({ portal_id: p.portalId, kind: 'alert' }).orderBy('id')).map((r) => JSON.parse(String(r.payload)) as { text: string; userIds: string[] });
      await L().tick();
      expect(await alerts()).to.have.length(0);
      for (const [day, n, text] of [
        [23.5, 1, /ends in 7 days/],
        [4, 2, /ends in 3 days/],
        [2, 3, /ends in 1 day /],
        [1, 4, /InCRM access has expired/],
      ] as const) {
        clock.days(day);
        await L().tick();
        await L().tick();
        const list = await waitFor(async () => ((await alerts()).length >= n ? alerts() : null), 3000, `alert ${n}`);
        expect(list).to.have.length(n);
        expect(list[n - 1]!.text).to.match(text);
        // No users named and no record: the CRM port's way of saying "the portal's admins".
        expect(list[n - 1]!.userIds).to.deep.equal([]);
      }
      expect((await p.user.get('/licence')).body.notice.kind).to.equal('expired');
      clock.offset = start;
    });
  });
}
