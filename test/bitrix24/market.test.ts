import { expect } from 'chai';
import { waitFor } from '../helpers/server';
import { apiClient, bitrix24World, connectNumber, postEvent, type B24World } from './world';

const DAY = 24 * 3600_000;

describe('Bitrix24 Market billing drives the licence (app.info)', function () {
  this.timeout(30_000);
  let w: B24World;
  afterEach(async () => w?.close());

  it('a portal paying through the Market: active for DAYS after install, extended by ONAPPPAYMENT, expired with PAYMENT_EXPIRED', async () => {
    w = await bitrix24World({ beforeInstall: (p) => (p.market = { STATUS: 'P', PAYMENT_EXPIRED: 'N', DAYS: 20 }) });
    const admin = await apiClient(w);
    const l1 = await waitFor(async () => {
      const l = (await admin.get('/licence')).body;
      return l.status === 'active' ? l : null;
    }, 10_000, 'Market status applied after install');
    expect(l1.daysLeft).to.be.within(19, 20);
    expect(Date.parse(l1.paidUntil) - Date.now()).to.be.within(19 * DAY, 20 * DAY + 60_000);

    // The portal renews in the Market: Bitrix24 posts ONAPPPAYMENT, app.info now says 50 days.
    w.portal.market = { STATUS: 'P', PAYMENT_EXPIRED: 'N', DAYS: 50 };
    expect((await postEvent(w.srv, w.fake.paymentEvent(w.portal))).status).to.equal(200);
    const l2 = await waitFor(async () => {
      const l = (await admin.get('/licence')).body;
      return l.daysLeft >= 49 ? l : null;
    }, 10_000, 'renewal applied');
    expect(l2.status).to.equal('active');

    // The subscription lapses: sending is refused with 402, history stays readable.
    const num = await connectNumber(w, '+15550001777');
    const conv = (await num.admin.post('/conversations', { phone: '+15550002777' })).body;
    w.portal.market = { STATUS: 'P', PAYMENT_EXPIRED: 'Y', DAYS: -1 };
    await postEvent(w.srv, w.fake.paymentEvent(w.portal));
    await waitFor(async () => ((await admin.get('/licence')).body.status === 'expired' ? true : null), 10_000, 'expired');
    const refused = await num.admin.post(`/conversations/${conv.id}/messages`, { text: 'hello' }, { 'Idempotency-Key': 'market-1' });
    expect(refused.status).to.equal(402);
    expect(refused.body.error.code).to.equal('licence_expired');
    expect((await num.admin.get(`/conversations/${conv.id}/messages`)).status).to.equal(200);
    // The audit log says where the change came from.
    const audit = await w.srv.db.knex('audit_log').where({ portal_id: w.portalId, action: 'licence.market_status' });
    expect(audit.length).to.be.at.least(3);
  });

  it('a local app (STATUS L) keeps our own trial and payments; an event from another portal changes nothing', async () => {
    w = await bitrix24World();
    const admin = await apiClient(w);
    // The install's check has run (a daily one is scheduled next).
    await waitFor(async () => {
      const rows = await w.srv.db.knex('jobs').where({ kind: 'bitrix24.market', portal_id: w.portalId });
      return rows.some((r) => r.state === 'pending' && Number(r.run_at) > Date.now() + 3600_000) ? rows : null;
    }, 10_000, 'next daily Market check scheduled');
    expect((await admin.get('/licence')).body.status).to.equal('trial');
    const forged = w.fake.paymentEvent(w.portal);
    forged.auth.application_token = 'not-the-token';
    expect((await postEvent(w.srv, forged)).status).to.equal(403);
    expect((await admin.get('/licence')).body.status).to.equal('trial');
  });
});
