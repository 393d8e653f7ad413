import { expect } from 'chai';
import { KommoUnavailable } from '../../server/adapters/crm/kommo/client';
import { directKommo } from './direct';
import { kommoWorld, type KommoWorld } from './world';

// Kommo refresh tokens are single-use: once Kommo has taken one, the old pair is dead whether or
// not we heard the answer. Giving up on a slow refresh and trying again with the old token is
// answered "Token has been revoked", and only a reinstall brings the account back.
describe('Kommo: a token refresh that answers after our timeout', function () {
  this.timeout(30_000);
  let w: KommoWorld;
  after(async () => w?.close());

  it('keeps waiting (holding the account lock) and saves the late pair: no second refresh, no revoked token', async () => {
    w = await kommoWorld();
    const k = directKommo(w, { timeoutMs: 250, lingerMs: 3000 });
    w.fake.expireAccessTokens(w.acc.domain);
    w.fake.delayRefreshes(700);
    const before = { ...w.fake.stats };
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => k.api.call(w.portalId, 'GET', '/api/v4/account')));
    // Whatever the first callers got, the next one must work with the rotated pair.
    const after = await k.api.call(w.portalId, 'GET', '/api/v4/account');
    expect(after.status).to.equal(200);
    expect(w.fake.stats.refreshes - before.refreshes, 'one refresh').to.equal(1);
    expect(w.fake.stats.revokedRefreshes - before.revokedRefreshes, 'no reused refresh token').to.equal(0);
    const row = await w.srv.db.knex('kommo_accounts').where({ portal_id: w.portalId }).first();
    expect(row.tokens, 'the pair was kept').to.not.equal(null);
    for (const r of results) expect(r.status, r.status === 'rejected' ? String(r.reason) : '').to.equal('fulfilled');
  });

  it('gives up only after the linger time, with Kommo still silent (and says so as a retryable failure)', async () => {
    const k = directKommo(w, { timeoutMs: 150, lingerMs: 400 });
    w.fake.expireAccessTokens(w.acc.domain);
    w.fake.delayRefreshes(5000);
    const t0 = Date.now();
    const err = await k.api.call(w.portalId, 'GET', '/api/v4/account').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(KommoUnavailable);
    expect(Date.now() - t0).to.be.greaterThanOrEqual(500);
  });
});
