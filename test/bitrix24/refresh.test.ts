import { expect } from 'chai';
import { Bitrix24Api } from '../../server/adapters/crm/bitrix24/client';
import { Bitrix24Store } from '../../server/adapters/crm/bitrix24/store';
import { systemClock } from '../../server/domain/ports';
import { createLogger } from '../../server/logger';
import { SecretBox } from '../../server/security/secretBox';
import { waitFor } from '../helpers/server';
import { B24_APP, bitrix24World, type B24World } from './world';

/**
 * A Bitrix24 client over the world's tables and fake, built by hand: the server's configuration
 * does not expose the refresh timeout, and this test needs a short one.
 */
function directApi(w: B24World, timeoutMs: number) {
  const store = new Bitrix24Store(w.srv.db.knex, new SecretBox(w.srv.config.SECRET_KEY, 'bitrix24-tokens'));
  const api = new Bitrix24Api({ app: B24_APP, store, clock: systemClock, log: createLogger('silent'), oauthUrl: w.fake.url, restUrl: w.fake.restUrl, rps: 2, burst: 50, backoffMs: 50, timeoutMs });
  return { api, store };
}

describe('Bitrix24 token refresh whose answer comes after the timeout', function () {
  this.timeout(30_000);
  let w: B24World;
  before(async () => {
    w = await bitrix24World();
    // The install's own jobs (the Market check) are done: the server's client refreshes nothing meanwhile.
    await waitFor(async () => !(await w.srv.db.knex('jobs').where({ portal_id: w.portalId }).andWhere((q) => q.where({ state: 'running' }).orWhere((p) => p.where({ state: 'pending' }).andWhere('run_at', '<=', Date.now()))).first()), 5000, 'install jobs');
  });
  after(async () => w?.close());

  it('keeps the rotated pair: saved when the answer arrives, no second refresh with the spent token', async () => {
    const { api, store } = directApi(w, 300);
    const v0 = (await store.byPortal(w.portalId))!.tokenVersion;
    const before = { ...w.fake.stats };
    w.fake.expireAccessTokens(w.portal);
    // The OAuth server rotates the pair at once but answers after 1.2 s, four times the timeout.
    w.fake.delayRefreshAnswers(1200);
    const started = Date.now();
    const first = await api.refresh(w.portalId, v0).then(
      () => null,
      (err: Error) => err,
    );
    expect(first, 'the caller stops waiting').to.be.an('error');
    expect(first!.name).to.equal('Bitrix24Unavailable');
    expect(Date.now() - started).to.be.below(1000);
    // Calls meanwhile wait for that refresh instead of trying the spent refresh token.
    const meanwhile = api.call(w.portalId, 'user.current');
    const after = await waitFor(async () => {
      const p = await store.byPortal(w.portalId);
      return p && p.tokenVersion > v0 ? p : null;
    }, 5000, 'the late pair saved');
    w.fake.delayRefreshAnswers(0);
    expect(after.state).to.equal('active');
    expect(await meanwhile.then((r) => (r as { ID: string }).ID, (err: Error) => err.name)).to.be.oneOf(['1', 'Bitrix24Unavailable']);
    expect(((await api.call(w.portalId, 'user.current')) as { ID: string }).ID).to.equal('1');
    expect(w.fake.stats.refreshes - before.refreshes).to.equal(1);
    expect(w.fake.stats.refusedRefreshes - before.refusedRefreshes).to.equal(0);
    expect((await store.byPortal(w.portalId))!.state).to.equal('active');
  });

  it('two server processes refreshing the same pair: the one refused because the other had just spent it does not revoke the portal', async () => {
    const a = directApi(w, 5000);
    const b = directApi(w, 5000);
    const v0 = (await a.store.byPortal(w.portalId))!.tokenVersion;
    const before = { ...w.fake.stats };
    // A's refresh rotates the pair at once; its answer takes 800 ms.
    w.fake.delayRefreshAnswers(800);
    const first = a.api.refresh(w.portalId, v0);
    await new Promise((r) => setTimeout(r, 100));
    w.fake.delayRefreshAnswers(0);
    // B read the same pair before A saved anything: its refresh token is spent by now.
    const second = await b.api.refresh(w.portalId, v0).then(
      () => null,
      (err: Error) => err,
    );
    expect(second?.name).to.equal('Bitrix24NotAuthorized');
    expect(w.fake.stats.refusedRefreshes - before.refusedRefreshes).to.equal(1);
    // A's answer arrives and wins: the portal has a working pair again.
    const p = await first;
    expect(p.state).to.equal('active');
    expect(p.tokenVersion).to.be.greaterThan(v0 + 1);
    expect(((await b.api.call(w.portalId, 'user.current')) as { ID: string }).ID).to.equal('1');
    expect((await b.store.byPortal(w.portalId))!.state).to.equal('active');
  });
});
