import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { SMTPServer } from 'smtp-server';
import { DAY_MS } from '../../server/domain/licence';
import type { RunningServer } from '../../server/main';
import { testDatabases } from '../helpers/databases';
import { client, portalWithNumber, startTestServer, tempDir, waitFor } from '../helpers/server';
import { OPERATOR_TOKEN, licenceServer, newPortal, operatorApi, type OffsetClock } from './world';

const run = promisify(execFile);
const L = (srv: RunningServer) => srv.licences;

for (const target of testDatabases()) {
  describe(`operator API on ${target.name}`, function () {
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
    afterEach(() => {
      clock.offset = 0;
    });

    it('refuses a missing or wrong token', async () => {
      expect((await client(srv.url + '/api/v1/operator').get('/portals')).status).to.equal(401);
      expect((await client(srv.url + '/api/v1/operator').post('/portals/abc/payments', { nonsense: true })).status, 'checked before any input').to.equal(401);
      const wrong = await operatorApi(srv, 'operator-token-0123456789abcdeX').get('/portals');
      expect(wrong.status).to.equal(401);
      expect(wrong.body.error.message).to.equal('operator token missing or wrong');
      const p = await newPortal(srv);
      expect((await client(srv.url + '/api/v1/operator', p.adminToken).get('/portals')).status, 'a portal admin token is not the operator').to.equal(401);
    });

    it('runs every command and records each in the audit log', async () => {
      const op = operatorApi(srv);
      const p = await newPortal(srv, 'Audited');
      const list = (await op.get('/portals')).body.items as { id: number; status: string }[];
      expect(list.find((x) => x.id === p.portalId)).to.deep.include({ status: 'trial' });

      const pay = await op.post(`/portals/${p.portalId}/payments`, { plan: 'team', amountEur: 39, reference: 'INV-100' });
      expect(pay.status).to.equal(201);
      expect(pay.body.payment).to.deep.include({ planCode: 'team', amountEur: 39, reference: 'INV-100', actor: 'operator:api' });
      expect(pay.body.licence).to.deep.include({ status: 'active', daysLeft: 30 });
      expect((await op.post(`/portals/${p.portalId}/payments`, { plan: 'gold' })).body.error.message).to.equal('unknown plan "gold"');
      expect((await op.post(`/portals/${p.portalId}/payments`, { plan: 'team', bogus: 1 })).status, 'unknown fields are refused').to.equal(400);
      for (const amountEur of ['', '   ', null, 'abc', -5]) {
        const bad = await op.post(`/portals/${p.portalId}/payments`, { plan: 'team', amountEur });
        expect(bad.status, `amountEur ${JSON.stringify(amountEur)} is not €0`).to.equal(400);
        expect(bad.body.error.message).to.match(/^amountEur: /);
      }
      expect((await L(srv).payments(p.portalId)).length, 'nothing recorded by the refused ones').to.equal(1);

      const plan = await op.post(`/portals/${p.portalId}/plan`, { plan: 'business' });
      expect(plan.status).to.equal(200);
      expect(plan.body.effectiveAt).to.equal(pay.body.licence.paidUntil);
      expect(plan.body.licence.nextPlan.code).to.equal('business');

      expect((await op.post(`/portals/${p.portalId}/suspend`, {})).status, 'a reason is required').to.equal(400);
      expect((await op.post(`/portals/${p.portalId}/suspend`, { reason: 'abuse report #9' })).body.licence).to.deep.include({ status: 'suspended', reason: 'abuse report #9' });
      expect((await op.post(`/portals/${p.portalId}/unsuspend`)).body.licence.status).to.equal('active');
      expect((await op.post(`/portals/${p.portalId}/unsuspend`)).status, 'not suspended').to.equal(400);

      clock.days(1);
      const now = clock.now();
      const win = await op.post('/maintenance', { startAt: new Date(now - 12 * 3600_000).toISOString(), endAt: new Date(now - 9 * 3600_000).toISOString(), reason: 'kernel upgrade' });
      expect(win.status).to.equal(201);
      expect(win.body.days).to.equal(1);
      expect(win.body.credited).to.include(p.portalId);
      expect((await op.post('/maintenance', { startAt: 'tomorrow', endAt: 'later', reason: 'x' })).body.error.message).to.match(/not a date/);
      const windows = (await op.get('/maintenance')).body.items as { id: number; credited: number[] }[];
      expect(windows.find((w) => w.id === win.body.window.id)!.credited).to.include(p.portalId);

      const show = (await op.get(`/portals/${p.portalId}`)).body;
      expect(show.portal.name).to.equal('Audited');
      expect(show.licence.daysLeft, '30 paid days, one used, one credited').to.equal(30);
      expect(show.payments).to.have.length(1);

      const soon = await newPortal(srv, 'Soon');
      const expiring = (await op.get('/expiring?days=3')).body.items as { id: number }[];
      expect(expiring.map((x) => x.id)).to.include(soon.portalId).and.not.include(p.portalId);

      const res = await fetch(`${srv.url}/api/v1/operator/audit?portalId=${p.portalId}`, { headers: { Authorization: `Bearer ${OPERATOR_TOKEN}` } });
      expect(res.headers.get('content-type')).to.match(/application\/x-ndjson/);
      const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as { action: string; actor: string; details: Record<string, unknown> });
      const actions = lines.map((l) => l.action);
      expect(actions).to.include.ordered.members(['licence.payment', 'licence.plan_change', 'licence.suspend', 'licence.unsuspend', 'licence.maintenance_credit']);
      expect(lines.find((l) => l.action === 'licence.suspend')).to.deep.include({ actor: 'operator:api' });
      expect(lines.find((l) => l.action === 'licence.payment')!.details.after).to.deep.include({ status: 'active', plan: 'team' });
      // Append-only in the database as well.
      let refused: unknown = null;
      await srv.db.knex('audit_log').where({ portal_id: p.portalId }).update({ action: 'forged' }).catch((e) => (refused = e));
      expect(String(refused)).to.include('append-only');
      refused = null;
      await srv.db.knex('audit_log').where({ portal_id: p.portalId }).delete().catch((e) => (refused = e));
      expect(String(refused)).to.include('append-only');
      const all = await (await fetch(`${srv.url}/api/v1/operator/audit`, { headers: { Authorization: `Bearer ${OPERATOR_TOKEN}` } })).text();
      expect(all).to.include('"action":"maintenance.declare"');
    });

    it('is absent (404) when OPERATOR_TOKEN is not set', async () => {
      const plain = await startTestServer({}, { licenceTickMs: 0 });
      try {
        const r = await operatorApi(plain).get('/portals');
        expect(r.status).to.equal(404);
        const doc = (await client(plain.url + '/api/v1').get('/openapi.json')).body;
        expect(Object.keys(doc.paths).some((k) => k.startsWith('/api/v1/operator'))).to.equal(false);
        expect(doc.paths['/api/v1/licence']).to.have.property('get');
      } finally {
        await plain.close();
      }
    });
  });
}

describe('operator CLI (npm run operator)', function () {
  this.timeout(60_000);
  const cliIn = (dataDir: string, env: Record<string, string> = {}) => (...args: string[]) =>
    run(process.execPath, ['--require', 'tsx/cjs', path.join(__dirname, '../../scripts/operator.ts'), ...args], {
      env: { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'silent', SECRET_KEY: 'test-secret-key-0123456789abcdef0123456789', ...env },
    });

  it('tick does not mark sessions closed that it cannot close: the server still closes them', async () => {
    const dataDir = tempDir();
    let srv = await startTestServer({ DATA_DIR: dataDir }, { licenceTickMs: 0 });
    const p = await portalWithNumber(srv);
    // The trial ended four days ago: past the 3-day grace period (the CLI runs on the real clock).
    const now = Date.now();
    await srv.db.knex('licences').where({ portal_id: p.portalId }).update({ trial_started_at: now - 7 * DAY_MS, trial_ends_at: now - 4 * DAY_MS, expiry_changed_at: now - 7 * DAY_MS });
    await srv.close();
    const cli = cliIn(dataDir);
    expect(JSON.parse((await cli('tick')).stdout)).to.deep.equal({ ok: true });
    const shown = JSON.parse((await cli('show', String(p.portalId))).stdout);
    expect(shown.licence.status).to.equal('expired');
    expect(shown.licence.sessionsClosedAt, 'the CLI closed nothing, so it records nothing').to.equal(null);
    srv = await startTestServer({ DATA_DIR: dataDir }, { licenceTickMs: 0 });
    try {
      const admin = client(srv.url + '/api/v1', p.adminToken);
      await waitFor(async () => (await admin.get(`/numbers/${p.numberId}`)).body.state === 'ready', 10_000, 'restored at start');
      await srv.licences.tick();
      expect((await admin.get(`/numbers/${p.numberId}`)).body).to.deep.include({ state: 'offline', stateDetail: 'paused: licence expired' });
      expect((await srv.licences.record(p.portalId)).record.sessionsClosedAt).to.be.a('number');
    } finally {
      await srv.close();
    }
  });

  it('runs the same commands on the configured database', async () => {
    const dataDir = tempDir();
    const srv = await startTestServer({ DATA_DIR: dataDir }, { licenceTickMs: 0 });
    const p = await newPortal(srv, 'CLI shop');
    await srv.close();
    const cli = (...args: string[]) =>
      run(process.execPath, ['--require', 'tsx/cjs', path.join(__dirname, '../../scripts/operator.ts'), ...args], {
        env: { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'silent', SECRET_KEY: 'test-secret-key-0123456789abcdef0123456789' },
      });
    const pay = JSON.parse((await cli('pay', String(p.portalId), '--plan', 'start', '--ref', 'CLI-1')).stdout);
    expect(pay.licence).to.deep.include({ status: 'active' });
    expect(pay.payment.actor).to.match(/^operator:cli:/);
    const shown = JSON.parse((await cli('show', String(p.portalId))).stdout);
    expect(shown.licence.plan.code).to.equal('start');
    await cli('suspend', String(p.portalId), 'card', 'declined');
    const list = JSON.parse((await cli('portals')).stdout) as { id: number; status: string }[];
    expect(list.find((x) => x.id === p.portalId)!.status).to.equal('suspended');
    const audit = (await cli('audit', '--portal', String(p.portalId))).stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(audit.map((e: { action: string }) => e.action)).to.include.members(['licence.payment', 'licence.suspend']);
    expect(audit.find((e: { action: string }) => e.action === 'licence.suspend').details.reason).to.equal('card declined');
    const bad = await cli('plan', String(p.portalId), 'gold').catch((e: { stderr: string; code: number }) => e);
    expect((bad as { stderr: string }).stderr).to.include('unknown plan "gold"');
    expect((bad as { code: number }).code).to.equal(1);
  });

  it('unsuspend, maintenance, windows, expiring and plans; an empty --amount is refused, not a €0 payment', async function () {
    this.timeout(120_000); // one process per command
    const dataDir = tempDir();
    const srv = await startTestServer({ DATA_DIR: dataDir }, { licenceTickMs: 0 });
    const paid = await newPortal(srv, 'CLI paid');
    const trial = await newPortal(srv, 'CLI trial');
    // Both installed a day ago (the CLI runs on the real clock): the window below falls in their trials.
    for (const x of [paid, trial]) await srv.licences.record(x.portalId);
    await srv.db.knex('licences').whereIn('portal_id', [paid.portalId, trial.portalId]).update({ trial_started_at: Date.now() - DAY_MS });
    await srv.close();
    const cli = cliIn(dataDir);
    const fails = (...args: string[]) => cli(...args).then(() => ({ stderr: '', code: 0 }), (e: { stderr: string; code: number }) => e);
    const id = String(paid.portalId);

    for (const args of [['--amount'], ['--amount', '--ref', 'X-1']]) {
      const empty = await fails('pay', id, '--plan', 'team', ...args);
      expect(empty.code, args.join(' ')).to.equal(1);
      expect(empty.stderr).to.include('amountEur: an amount in EUR such as 39 or 39.90');
    }
    expect(JSON.parse((await cli('show', id)).stdout).payments, 'no €0 payment was recorded').to.deep.equal([]);
    const pay = JSON.parse((await cli('pay', id, '--plan', 'team', '--amount', '35.50', '--ref', 'CLI-2')).stdout);
    expect(pay.payment).to.deep.include({ amountEur: 35.5, reference: 'CLI-2' });

    const plans = JSON.parse((await cli('plans')).stdout) as { code: string; priceEur: number; numbers: number }[];
    expect(plans.map((x) => x.code)).to.deep.equal(['start', 'team', 'business', 'business-year', 'corporate']);
    expect(plans.find((x) => x.code === 'team')).to.deep.include({ priceEur: 39, numbers: 3 });

    await cli('suspend', id, 'chargeback');
    const lifted = JSON.parse((await cli('unsuspend', id)).stdout);
    expect(lifted.licence).to.deep.include({ status: 'active', reason: null });
    expect((await fails('unsuspend', id)).stderr, 'not suspended').to.include('the portal is not suspended');

    // A window that ended an hour ago: the paid portal and the trial get a day, once.
    const now = Date.now();
    const declared = JSON.parse((await cli('maintenance', new Date(now - 3 * 3600_000).toISOString(), new Date(now - 3600_000).toISOString(), 'kernel', 'upgrade')).stdout);
    expect(declared.window.reason).to.equal('kernel upgrade');
    expect(declared.days).to.equal(1);
    expect(declared.credited).to.include.members([paid.portalId, trial.portalId]);
    const windows = JSON.parse((await cli('windows')).stdout) as { id: number; reason: string; days: number; credited: number[]; credits: { portalId: number; days: number }[] }[];
    expect(windows).to.have.length(1);
    expect(windows[0]).to.deep.include({ id: declared.window.id, reason: 'kernel upgrade', days: 1 });
    expect(windows[0]!.credits).to.deep.include({ portalId: paid.portalId, days: 1 });

    // The trial (3 + 1 days) ends within 7 days, the paid portal (30 + 1) not.
    const soon = (JSON.parse((await cli('expiring')).stdout) as { id: number; status: string; daysLeft: number }[]).map((x) => x.id);
    expect(soon).to.include(trial.portalId).and.not.include(paid.portalId);
    const month = (JSON.parse((await cli('expiring', '--days', '31')).stdout) as { id: number }[]).map((x) => x.id);
    expect(month).to.include.members([trial.portalId, paid.portalId]);

    const actions = (await cli('audit')).stdout.trim().split('\n').map((l) => (JSON.parse(l) as { action: string }).action);
    expect(actions).to.include.members(['licence.unsuspend', 'maintenance.declare', 'licence.maintenance_credit']);
  });

  it('a trial length from LICENCE_TRIAL_DAYS: the CLI starts trials of that length too', async () => {
    const dataDir = tempDir();
    const srv = await startTestServer({ DATA_DIR: dataDir, LICENCE_TRIAL_DAYS: '10' }, { licenceTickMs: 0 });
    const p = await newPortal(srv, 'Ten days');
    expect((await p.user.get('/licence')).body).to.deep.include({ status: 'trial', daysLeft: 10 });
    // A portal whose licence record the server never created: the CLI creates it with its own setting.
    const q = await newPortal(srv, 'Not looked at');
    await srv.db.knex('licences').where({ portal_id: q.portalId }).delete();
    await srv.close();
    const shown = JSON.parse((await cliIn(dataDir, { LICENCE_TRIAL_DAYS: '14' })('show', String(q.portalId))).stdout);
    expect(shown.licence).to.deep.include({ status: 'trial', daysLeft: 14 });
  });
});

describe('licence e-mail alerts (SMTP_URL)', () => {
  it('mails each linked account on its own at 7, 3 and 1 days and on expiry, through a local SMTP server', async () => {
    const mails: { to: string[]; body: string }[] = [];
    const smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      onData(stream, session, cb) {
        let body = '';
        stream.on('data', (c: Buffer) => (body += c.toString('utf8')));
        stream.on('end', () => {
          mails.push({ to: session.envelope.rcptTo.map((r) => r.address), body });
          cb();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    const port = (smtp.server.address() as { port: number }).port;
    const { srv, clock } = await licenceServer({ SMTP_URL: `smtp://127.0.0.1:${port}` });
    try {
      const p = await newPortal(srv, 'Mail shop');
      for (const email of ['billing@example.com', 'owner@example.com']) {
        const acc = await srv.accounts.register(email, 'correct horse battery');
        const { code } = await srv.accounts.createLinkCode(p.portalId, 'test');
        await srv.accounts.link(acc, code);
      }
      await srv.licences.recordPayment(p.portalId, { planCode: 'team' }, 'test');
      const steps = [
        [23.5, /Subject: InCRM: access for Mail shop ends in 7 days/, 'InCRM access ends in 7 days'],
        [4, /Subject: InCRM: access for Mail shop ends in 3 days/, 'InCRM access ends in 3 days'],
        [2, /Subject: InCRM: access for Mail shop ends in 1 day\r?\n/, 'InCRM access ends in 1 day '],
        [1, /Subject: InCRM: access for Mail shop has ended/, 'InCRM access has expired'],
      ] as const;
      for (const [i, [days, subject, text]] of steps.entries()) {
        clock.days(days);
        await srv.licences.tick();
        await srv.licences.tick();
        await waitFor(() => mails.length === 2 * (i + 1), 5000, `mails of step ${i + 1}`);
        const pair = mails.slice(2 * i);
        // One message per account: each has one recipient, and its To names that one only.
        expect(pair.map((m) => m.to).sort()).to.deep.equal([['billing@example.com'], ['owner@example.com']]);
        for (const m of pair) {
          expect(m.body).to.match(subject);
          expect(m.body).to.include(text);
          expect(m.body).to.match(new RegExp(`^To: ${m.to[0]!.replace('.', '\\.')}\\r?$`, 'm'));
          expect(m.body).to.not.include(m.to[0] === 'owner@example.com' ? 'billing@example.com' : 'owner@example.com');
        }
      }
      await new Promise((r) => setTimeout(r, 200));
      expect(mails).to.have.length(8);
    } finally {
      await srv.close();
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    }
  });
});
