import { expect } from 'chai';
import type { LicenceEffects } from '../../server/domain/licencePorts';
import type { RunningServer } from '../../server/main';
import { testDatabases } from '../helpers/databases';
import { client, portalWithNumber, startTestServer, waitFor } from '../helpers/server';
import { OPERATOR_TOKEN, licenceServer, operatorApi, type OffsetClock } from './world';

const CLIENT = '+15550000002';
const enc = encodeURIComponent;

for (const target of testDatabases()) {
  describe(`licence enforcement through the API on ${target.name}`, function () {
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

    it('expired: send and retry refused with 402, history readable, inbound stored, mirroring caught up after payment, sessions closed after 3 days and reopened', async () => {
      const p = await portalWithNumber(srv);
      const crm = async () => (await srv.db.knex('crm_log').where({ portal_id: p.portalId, kind: 'record' })).map((r) => JSON.parse(String(r.payload)) as { text: string });
      await p.anon.post('/simulator/inbound', { to: p.numberPhone, from: CLIENT, name: 'Ann', text: 'before expiry' });
      const conv = await waitFor(async () => (await p.user.get(`/conversations?phone=${enc(CLIENT)}`)).body.items[0], 3000, 'conversation');
      const ok = await p.user.post(`/conversations/${conv.id}/messages`, { text: 'on trial' }, { 'Idempotency-Key': 'e-1' });
      expect(ok.status).to.equal(201);
      await waitFor(async () => (await crm()).length === 2, 3000, 'mirrored while on trial');

      // A message that failed on trial (phone offline, gave up): its retry after expiry is refused too.
      clock.days(3.1);
      const refused = await p.user.post(`/conversations/${conv.id}/messages`, { text: 'after expiry' }, { 'Idempotency-Key': 'e-2' });
      expect(refused.status).to.equal(402);
      expect(refused.body.error.code).to.equal('licence_expired');
      expect(refused.body.error.message).to.match(/licence of this portal has expired: sending is paused/);
      const history = await p.user.get(`/conversations/${conv.id}/messages`);
      expect(history.status).to.equal(200);
      expect(history.body.items.map((m: { text: string }) => m.text)).to.deep.equal(['before expiry', 'on trial']);
      const licence = (await p.user.get('/licence')).body;
      expect(licence).to.deep.include({ status: 'expired', canSend: false });

      await srv.db.knex('messages').where({ id: ok.body.id }).update({ status: 'failed', error: 'test' });
      const retry = await p.user.post(`/messages/${ok.body.id}/retry`);
      expect(retry.status).to.equal(402);

      // Inbound is still received and stored; its mirroring waits (postponed, never dead).
      await p.anon.post('/simulator/inbound', { to: p.numberPhone, from: CLIENT, name: 'Ann', text: 'while expired' });
      await waitFor(async () => (await p.user.get(`/conversations/${conv.id}/messages`)).body.items.some((m: { text: string }) => m.text === 'while expired'), 3000, 'inbound stored');
      const waiting = await waitFor(async () => {
        const jobs = await srv.db.knex('jobs').where({ portal_id: p.portalId, kind: 'crm.mirror' });
        return jobs.length === 1 && jobs[0].state === 'pending' && String(jobs[0].last_error).includes('licence') ? jobs[0] : null;
      }, 3000, 'postponed mirror job');
      expect(Number(waiting.attempts)).to.equal(0);
      expect(await crm()).to.have.length(2);

      // Three days after expiry the sessions close, keeping their logins.
      await srv.licences.tick();
      expect((await p.admin.get(`/numbers/${p.numberId}`)).body.state).to.equal('ready');
      clock.days(3);
      await srv.licences.tick();
      const closed = (await p.admin.get(`/numbers/${p.numberId}`)).body;
      expect(closed.state).to.equal('offline');
      expect(closed.stateDetail).to.equal('paused: licence expired');
      expect((await p.admin.post(`/numbers/${p.numberId}/restart`)).status).to.equal(402);

      // A restart does not bring closed sessions back.
      const { DATA_DIR, DATABASE_URL } = srv.config;
      await srv.close();
      srv = await startTestServer({ OPERATOR_TOKEN, DATA_DIR, ...(DATABASE_URL ? { DATABASE_URL } : {}) }, { clock, licenceTickMs: 0 });
      const admin = client(srv.url + '/api/v1', p.adminToken);
      const user = client(srv.url + '/api/v1', p.userToken);
      const anon = client(srv.url + '/api/v1');
      await new Promise((r) => setTimeout(r, 200));
      expect((await admin.get(`/numbers/${p.numberId}`)).body).to.deep.include({ state: 'offline', stateDetail: 'paused: licence expired' });

      // Payment (operator API): access at once, mirroring catches up, the session reopens without a QR.
      const paid = await operatorApi(srv).post(`/portals/${p.portalId}/payments`, { plan: 'team', reference: 'INV-1' });
      expect(paid.status).to.equal(201);
      await waitFor(async () => (await crm()).some((r) => r.text === 'while expired'), 10_000, 'mirroring caught up');
      await waitFor(async () => (await admin.get(`/numbers/${p.numberId}`)).body.state === 'ready', 15_000, 'session reopened');
      const again = await user.post(`/conversations/${conv.id}/messages`, { text: 'paid again' }, { 'Idempotency-Key': 'e-3' });
      expect(again.status).to.equal(201);
      await waitFor(async () => (await anon.get(`/simulator/delivered?phone=${enc(CLIENT)}`)).body.items.some((m: { text: string }) => m.text === 'paid again'), 15_000, 'delivered');
      clock.offset = 0;
    });

    it('closing the sessions after the grace period: recorded only once they really closed, so a failed close is tried again', async () => {
      const p = await portalWithNumber(srv, '+15550000021');
      const service = srv.licences as unknown as { effects: LicenceEffects };
      const real = service.effects;
      let failures = 1;
      srv.licences.attach({
        ...real,
        closeSessions: async (portalId, reason) => {
          if (portalId === p.portalId && failures-- > 0) throw new Error('engine busy');
          return real.closeSessions(portalId, reason);
        },
      });
      try {
        clock.days(6.2); // the 3-day trial ended 3.2 days ago
        await srv.licences.tick();
        expect((await srv.licences.record(p.portalId)).record.sessionsClosedAt, 'not recorded: the close failed').to.equal(null);
        expect((await p.admin.get(`/numbers/${p.numberId}`)).body.state, 'still up').to.equal('ready');
        await srv.licences.tick();
        expect((await srv.licences.record(p.portalId)).record.sessionsClosedAt).to.be.a('number');
        expect((await p.admin.get(`/numbers/${p.numberId}`)).body).to.deep.include({ state: 'offline', stateDetail: 'paused: licence expired' });
        const actions = (await srv.db.repos.audit.list({ portalId: p.portalId })).map((e) => e.action);
        expect(actions.filter((a) => a === 'licence.sessions_closed')).to.have.length(1);
      } finally {
        srv.licences.attach(real);
        clock.offset = 0;
      }
    });

    it('restarting a number closed by a suspension answers 403 licence_suspended, not 402', async () => {
      const p = await portalWithNumber(srv, '+15550000031');
      await srv.licences.recordPayment(p.portalId, { planCode: 'team' }, 'test');
      await operatorApi(srv).post(`/portals/${p.portalId}/suspend`, { reason: 'unpaid invoice 77' });
      try {
        clock.days(3.1);
        await srv.licences.tick();
        expect((await p.admin.get(`/numbers/${p.numberId}`)).body).to.deep.include({ state: 'offline', stateDetail: 'paused: licence suspended: unpaid invoice 77' });
        const restart = await p.admin.post(`/numbers/${p.numberId}/restart`);
        expect(restart.status).to.equal(403);
        expect(restart.body.error).to.deep.include({ code: 'licence_suspended', message: 'InCRM is suspended for this portal: unpaid invoice 77' });
        // Lifted: the sessions come back, and a restart is allowed again.
        await operatorApi(srv).post(`/portals/${p.portalId}/unsuspend`);
        await waitFor(async () => (await p.admin.get(`/numbers/${p.numberId}`)).body.state === 'ready', 10_000, 'reopened');
        expect((await p.admin.post(`/numbers/${p.numberId}/restart`)).status).to.equal(200);
      } finally {
        clock.offset = 0;
      }
    });

    it('suspended: 403 licence_suspended with the reason; a licence SSE event on change', async () => {
      const p = await portalWithNumber(srv, '+15550000011');
      await p.anon.post('/simulator/inbound', { to: p.numberPhone, from: CLIENT, name: 'Ann', text: 'hi' });
      const conv = await waitFor(async () => (await p.user.get(`/conversations?phone=${enc(CLIENT)}`)).body.items[0], 3000, 'conversation');
      const stream = await fetch(`${srv.url}/api/v1/stream?access_token=${p.userToken}`);
      const reader = stream.body!.getReader();
      await operatorApi(srv).post(`/portals/${p.portalId}/suspend`, { reason: 'unpaid invoice 42' });
      let text = '';
      while (!text.includes('event: licence')) text += new TextDecoder().decode((await reader.read()).value);
      while (!/event: licence\ndata: .*\n\n/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
      await reader.cancel();
      const data = JSON.parse(/event: licence\ndata: (.*)\n/.exec(text)![1]!);
      expect(data).to.deep.include({ status: 'suspended', canSend: false, reason: 'unpaid invoice 42' });
      expect(Object.keys(data).sort()).to.deep.equal(['canSend', 'daysLeft', 'notice', 'paidUntil', 'plan', 'reason', 'status']);
      const res = await p.user.post(`/conversations/${conv.id}/messages`, { text: 'x' }, { 'Idempotency-Key': 's-1' });
      expect(res.status).to.equal(403);
      expect(res.body.error).to.deep.include({ code: 'licence_suspended', message: 'InCRM is suspended for this portal: unpaid invoice 42' });
      await operatorApi(srv).post(`/portals/${p.portalId}/unsuspend`);
      expect((await p.user.post(`/conversations/${conv.id}/messages`, { text: 'x' }, { 'Idempotency-Key': 's-2' })).status).to.equal(201);
    });
  });
}
