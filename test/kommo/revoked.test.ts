import { expect } from 'chai';
import { waitFor } from '../helpers/server';
import { connectNumber, kommoWorld, type KommoWorld } from './world';

describe('Kommo: a revoked refresh token', function () {
  this.timeout(30_000);
  let w: KommoWorld;
  after(async () => w?.close());

  it('stops using the dead pair, keeps the messages waiting, and notes them once after a reinstall', async () => {
    w = await kommoWorld({ start: { jobs: { backoffBaseMs: 50, backoffMaxMs: 1000 } } });
    const num = await connectNumber(w, '+15550003000');
    w.fake.expireAccessTokens(w.acc.domain);
    w.fake.revokeRefreshTokens(w.acc.domain);
    await num.anon.post('/simulator/inbound', { to: num.phone, from: '+15557779001', name: 'Late', text: 'written while revoked' });
    // One refused refresh, then no more tries with the same dead token.
    await waitFor(() => w.fake.stats.revokedRefreshes === 1, 10_000, 'refused refresh');
    await waitFor(async () => (await w.srv.db.knex('kommo_accounts').where({ portal_id: w.portalId }).first()).tokens === null, 5000, 'tokens dropped');
    await new Promise((r) => setTimeout(r, 300));
    expect(w.fake.stats.revokedRefreshes).to.equal(1);
    expect(w.acc.notes).to.have.length(0);
    // The admin reinstalls; the waiting mirror job goes through.
    const res = await fetch(`${w.srv.url}/kommo/oauth?code=${w.fake.issueCode(w.acc.domain)}&referer=${w.acc.domain}`);
    expect(res.status).to.equal(200);
    await waitFor(() => w.acc.notes.filter((n) => String(n.params.text).includes('written while revoked')).length === 2, 15_000, 'notes after reinstall');
    await new Promise((r) => setTimeout(r, 300));
    expect(w.acc.notes.filter((n) => String(n.params.text).includes('written while revoked'))).to.have.length(2);
  });
});

describe('Kommo: keep-alive of idle accounts', function () {
  this.timeout(30_000);
  let w: KommoWorld;
  after(async () => w?.close());

  it('refreshes an idle account once a day so its refresh token never ages out, and schedules the next run', async () => {
    w = await kommoWorld();
    expect(Number((await w.srv.db.knex('jobs').where({ kind: 'kommo.keepalive' }).count({ n: '*' }))[0]!.n)).to.equal(1);
    w.fake.expireAccessTokens(w.acc.domain);
    const before = w.fake.stats.refreshes;
    await w.srv.db.knex('jobs').where({ kind: 'kommo.keepalive' }).update({ run_at: Date.now() });
    w.srv.runner.wake();
    await waitFor(() => w.fake.stats.refreshes === before + 1, 10_000, 'keep-alive refresh');
    const next = await waitFor(() => w.srv.db.knex('jobs').where({ kind: 'kommo.keepalive' }).andWhere('run_at', '>', Date.now() + 23 * 3600_000).first(), 5000, 'next run');
    expect(Number(next.run_at)).to.be.lessThan(Date.now() + 25 * 3600_000);
  });
});
