import { expect } from 'chai';
import { SecretBox } from '../../server/security/secretBox';
import type { RunningServer } from '../../server/main';
import type { FakeB24Portal, FakeBitrix24 } from '../fakes/bitrix24';
import { waitFor } from '../helpers/server';
import { apiClient, bitrix24World, postEvent, postInstall, startB24, type B24World } from './world';

const row = (srv: RunningServer, memberId: string) => srv.db.knex('bitrix24_portals').where({ member_id: memberId }).first();
const tabs = ['CRM_COMPANY_DETAIL_TAB', 'CRM_CONTACT_DETAIL_TAB', 'CRM_DEAL_DETAIL_TAB', 'CRM_LEAD_DETAIL_TAB'];

describe('Bitrix24: install page', function () {
  this.timeout(20_000);
  let w: B24World;
  before(async () => {
    w = await bitrix24World();
  });
  after(async () => w?.close());

  it('stores the portal with sealed tokens, binds the four card tabs and the app events, and finishes the install', async () => {
    const r = await row(w.srv, w.portal.memberId);
    expect(r).to.include({ domain: w.portal.domain, state: 'active' });
    expect(String(r.tokens)).to.match(/^v1:/);
    const t = new SecretBox(w.srv.config.SECRET_KEY, 'bitrix24-tokens').openJson<{ access_token: string }>(String(r.tokens));
    expect(String(r.tokens)).not.to.contain(t.access_token);
    expect(String(r.application_token)).not.to.contain(w.portal.applicationToken);
    expect(w.portal.placements.map((p) => p.placement).sort()).to.deep.equal(tabs);
    expect(w.portal.placements[0]!.handler).to.equal(`${w.srv.url}/bitrix24/placement`);
    expect(w.portal.events.map((e) => e.event).sort()).to.deep.equal(['ONAPPINSTALL', 'ONAPPPAYMENT', 'ONAPPUNINSTALL']);
    const portal = await w.srv.db.repos.portals.get(w.portalId);
    expect(portal).to.include({ crm: 'bitrix24', externalId: w.portal.memberId, name: w.portal.domain });
  });

  it('answers a page that finishes the install through the SDK, framed only by the portal', async () => {
    const inst = w.fake.installation(w.portal);
    const res = await postInstall(w.srv, inst);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-security-policy')).to.contain(`frame-ancestors https://${w.portal.domain}`);
    const html = await res.text();
    expect(html).to.contain('installFinish');
    expect(html).to.contain('/bitrix24/b24jssdk.js');
    const sdk = await fetch(`${w.srv.url}/bitrix24/b24jssdk.js`);
    expect(sdk.status).to.equal(200);
    expect(await sdk.text()).to.contain('B24Js');
    // Bound again without duplicates: stale bindings were removed first.
    expect(w.portal.placements.map((p) => p.placement).sort()).to.deep.equal(tabs);
    expect(w.portal.events).to.have.length(3);
  });

  it('refuses a forged install: unknown tokens, or tokens of another portal for this member_id', async () => {
    const before = await row(w.srv, w.portal.memberId);
    const forged = { query: { DOMAIN: 'evil.example.test', PROTOCOL: '1' }, form: { AUTH_ID: 'a'.repeat(32), REFRESH_ID: 'b'.repeat(32), member_id: w.portal.memberId, APPLICATION_TOKEN: 'x' } };
    const r1 = await postInstall(w.srv, forged);
    expect(r1.status).to.equal(403);
    const other = w.fake.addPortal('other' + w.portalId);
    const theirs = w.fake.installation(other);
    const r2 = await postInstall(w.srv, { query: { ...theirs.query }, form: { ...theirs.form, member_id: w.portal.memberId } });
    expect(r2.status).to.equal(403);
    const after = await row(w.srv, w.portal.memberId);
    expect(after).to.deep.equal(before);
    const bad = await fetch(`${w.srv.url}/bitrix24/install`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'member_id=1' });
    expect(bad.status).to.equal(400);
  });
});

describe('Bitrix24: install in each event order, reinstall, events, uninstall', function () {
  this.timeout(30_000);
  let fake: FakeBitrix24;
  let srv: RunningServer;
  before(async () => {
    ({ fake, srv } = await startB24());
  });
  after(async () => {
    await srv?.close();
    await fake?.stop();
  });

  const installed = async (p: FakeB24Portal) => {
    const r = await waitFor(async () => {
      const x = await row(srv, p.memberId);
      return x && x.state === 'active' && x.application_token && x.tokens ? x : null;
    }, 5000, 'installed');
    await waitFor(() => p.placements.length === 4 && p.events.length === 3, 5000, 'bindings');
    return r;
  };

  it('install page first, then ONAPPINSTALL (same token pair, already spent)', async () => {
    const p = fake.addPortal('order1');
    const inst = fake.installation(p);
    expect((await postInstall(srv, inst)).status).to.equal(200);
    const ev = await postEvent(srv, inst.event);
    expect(ev.status).to.equal(200);
    const r = await installed(p);
    expect(fake.stats.refusedRefreshes).to.equal(0);
    await new Promise((res) => setTimeout(res, 200));
    expect(await row(srv, p.memberId)).to.deep.equal(r);
  });

  it('ONAPPINSTALL first, then the install page with the spent pair (its access token invalidated by the refresh): the page still finishes the install', async () => {
    const p = fake.addPortal('order2');
    const inst = fake.installation(p);
    const ev = await postEvent(srv, inst.event);
    expect(ev.status).to.equal(202);
    const r0 = await installed(p);
    expect(String(r0.installer_user_id)).to.equal('1');
    // The event's handler refreshed the pair: Bitrix24 no longer takes the page's AUTH_ID.
    const old = await fetch(`${fake.restUrl}user.current`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ auth: inst.form.AUTH_ID }) });
    expect(old.status).to.equal(401);
    // The same pair with some other APPLICATION_TOKEN proves nothing.
    const other = await postInstall(srv, { query: inst.query, form: { ...inst.form, APPLICATION_TOKEN: 'f'.repeat(32) } });
    expect(other.status).to.equal(403);
    // With the install's own APPLICATION_TOKEN it is the install we hold: the page calls installFinish.
    const page = await postInstall(srv, inst);
    expect(page.status).to.equal(200);
    expect(await page.text()).to.contain('installFinish');
    expect(await row(srv, p.memberId)).to.deep.equal(r0);
  });

  it('install page only, no event at all (events still verify with the page APPLICATION_TOKEN)', async () => {
    const p = fake.addPortal('order3');
    const inst = fake.installation(p);
    expect((await postInstall(srv, inst)).status).to.equal(200);
    await installed(p);
  });

  it('ONAPPINSTALL only (installation-callback apps have no page): binds the tabs from a job', async () => {
    const p = fake.addPortal('order4');
    const inst = fake.installation(p);
    expect((await postEvent(srv, inst.event)).status).to.equal(202);
    await installed(p);
  });

  it('refuses events with a wrong or missing application_token and changes nothing', async () => {
    const p = fake.addPortal('verify');
    await postInstall(srv, fake.installation(p));
    await installed(p);
    const before = await row(srv, p.memberId);
    const wrong = await postEvent(srv, fake.uninstallEvent(p, { applicationToken: 'f'.repeat(32) }));
    expect(wrong.status).to.equal(403);
    p.installed = true;
    const missing = await postEvent(srv, fake.uninstallEvent(p, { applicationToken: null }));
    expect(missing.status).to.equal(403);
    p.installed = true;
    const unknown = await postEvent(srv, { ...fake.uninstallEvent(p), auth: { ...fake.uninstallEvent(p).auth, member_id: 'nosuchportal' } });
    expect(unknown.status).to.equal(403);
    p.installed = true;
    // ONAPPINSTALL with a new token is only accepted when the OAuth server vouches for its pair.
    const forgedInstall = await postEvent(srv, { event: 'ONAPPINSTALL', auth: { member_id: p.memberId, domain: 'evil.example.test', application_token: 'e'.repeat(32), access_token: 'a'.repeat(40), refresh_token: 'r'.repeat(40) } });
    expect(forgedInstall.status).to.equal(202);
    await new Promise((res) => setTimeout(res, 300));
    expect(await row(srv, p.memberId)).to.deep.equal(before);
    const garbage = await fetch(`${srv.url}/bitrix24/events`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'event=ONAPPUNINSTALL' });
    expect(garbage.status).to.equal(400);
  });

  it('uninstall closes the sessions and schedules deletion in 30 days; a reinstall keeps the history', async () => {
    const p = fake.addPortal('lifecycle');
    await postInstall(srv, fake.installation(p));
    const r0 = await installed(p);
    const portalId = Number(r0.portal_id);
    const w = { fake, portal: p, srv, portalId, close: async () => {} };
    const admin = await apiClient(w, 1);
    const numberId = (await admin.post('/numbers')).body.id as number;
    await srv.db.repos.audit.append({ portalId, actor: 'test', action: 'history.marker' });

    const ev = await postEvent(srv, fake.uninstallEvent(p));
    expect(ev.status).to.equal(200);
    const r1 = await waitFor(async () => {
      const x = await row(srv, p.memberId);
      return x.state === 'uninstalled' ? x : null;
    });
    expect(r1.tokens).to.equal(null);
    expect(Number(r1.delete_after) - Number(r1.disabled_at)).to.equal(30 * 24 * 3600_000);
    await waitFor(async () => (await admin.get(`/numbers/${numberId}`)).body.state === 'logged_out', 5000, 'logged out');
    const job = await waitFor(() => srv.db.knex('jobs').where({ kind: 'bitrix24.purge', portal_id: portalId }).first(), 5000, 'purge job');
    expect(Number(job.run_at)).to.equal(Number(r1.delete_after));
    // Frames of an uninstalled portal get nothing.
    const f = fake.frameForm(p, 1, 'CRM_DEAL_DETAIL_TAB', { ID: '1' });
    expect((await fetch(`${srv.url}/bitrix24/placement`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(f).toString() })).status).to.equal(403);

    // Reinstall (a new application_token): same portal, history kept, events verify with the new token.
    const again = fake.installation(p, { newApplicationToken: true });
    expect((await postInstall(srv, again)).status).to.equal(200);
    const r2 = await row(srv, p.memberId);
    expect(r2).to.include({ state: 'active', portal_id: r0.portal_id });
    expect(r2.delete_after).to.equal(null);
    expect((await admin.get(`/numbers/${numberId}`)).status).to.equal(200);
    const audit = await srv.db.knex('audit_log').where({ portal_id: portalId, action: 'history.marker' });
    expect(audit).to.have.length(1);
    // The purge job finds the portal reinstalled and leaves it.
    await srv.db.knex('jobs').where({ kind: 'bitrix24.purge', portal_id: portalId }).update({ run_at: Date.now() });
    await waitFor(async () => !(await srv.db.knex('jobs').where({ kind: 'bitrix24.purge', portal_id: portalId }).first()), 5000, 'purge job done');
    expect(await srv.db.repos.portals.get(portalId)).to.not.equal(null);
  });

  it('uninstall with CLEAN=1 erases the portal at once', async () => {
    const p = fake.addPortal('clean');
    await postInstall(srv, fake.installation(p));
    const r0 = await installed(p);
    expect((await postEvent(srv, fake.uninstallEvent(p, { clean: true }))).status).to.equal(200);
    await waitFor(async () => (await srv.db.repos.portals.get(Number(r0.portal_id))) === null, 10_000, 'portal erased');
    expect(await row(srv, p.memberId)).to.equal(undefined);
  });
});

describe('Bitrix24: a portal user who is not an admin cannot take the app over', function () {
  this.timeout(30_000);
  let fake: FakeBitrix24;
  let srv: RunningServer;
  before(async () => {
    ({ fake, srv } = await startB24());
  });
  after(async () => {
    await srv?.close();
    await fake?.stop();
  });
  const pause = (ms: number) => new Promise((res) => setTimeout(res, ms));
  // What Bitrix24 posts into Sam's (user 7, not an admin) own frame when he opens the app.
  const samsFrame = (p: FakeB24Portal) => fake.frameForm(p, 7, 'DEFAULT', {});
  const asInstall = (p: FakeB24Portal, f: { AUTH_ID: string; REFRESH_ID: string }, applicationToken: string) => ({
    query: { DOMAIN: p.domain, PROTOCOL: '1', LANG: 'en' },
    form: { AUTH_ID: f.AUTH_ID, AUTH_EXPIRES: '3600', REFRESH_ID: f.REFRESH_ID, SERVER_ENDPOINT: 'https://oauth.bitrix.info/rest/', member_id: p.memberId, APPLICATION_TOKEN: applicationToken },
  });

  it('their frame tokens posted as an install or ONAPPINSTALL change nothing, and their chosen token cannot uninstall', async () => {
    const p = fake.addPortal('takeover');
    expect((await postInstall(srv, fake.installation(p))).status).to.equal(200);
    const before = await waitFor(async () => {
      const x = await row(srv, p.memberId);
      return x?.installer_user_id && p.placements.length === 4 ? x : null;
    }, 5000, 'installed by the admin');
    const portalId = Number(before.portal_id);
    const chosen = 'chosen-by-sam-0123456789abcdef';

    // A fresh pair: the OAuth server vouches for the portal, but not for Sam's rights.
    const r1 = await postInstall(srv, asInstall(p, samsFrame(p), chosen));
    expect(r1.status).to.equal(403);
    const page = await r1.text();
    expect(page).to.contain('only a Bitrix24 administrator can install InCRM');
    expect(page).not.to.contain('again in a minute');
    // A spent refresh token: only his access token is left to check.
    const r2 = await postInstall(srv, asInstall(p, { ...samsFrame(p), REFRESH_ID: 'spent'.repeat(8) }, chosen));
    expect(r2.status).to.equal(403);
    // Every frame carries the real APPLICATION_TOKEN: knowing it proves nothing either.
    const own = samsFrame(p);
    expect((await postInstall(srv, asInstall(p, own, own.APPLICATION_TOKEN))).status).to.equal(403);
    // The same pair as an ONAPPINSTALL event (answered at once, refused when proven).
    const f = samsFrame(p);
    const forged = { event: 'ONAPPINSTALL', data: { VERSION: '1', ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID: 'en' }, auth: { access_token: f.AUTH_ID, refresh_token: f.REFRESH_ID, expires_in: '3600', domain: p.domain, server_endpoint: 'https://oauth.bitrix.info/rest/', client_endpoint: `https://${p.domain}/rest/`, member_id: p.memberId, user_id: '7', application_token: chosen } };
    expect((await postEvent(srv, forged)).status).to.equal(202);
    await pause(300);

    expect(await row(srv, p.memberId)).to.deep.equal(before);
    const sam = await srv.db.knex('crm_users').where({ portal_id: portalId, external_id: '7' });
    expect(sam.filter((u) => Boolean(u.is_admin))).to.have.length(0);
    const audit = await srv.db.knex('audit_log').where({ portal_id: portalId }).whereLike('action', 'bitrix24.install%');
    expect(audit).to.have.length(1);

    // The token Sam chose cannot uninstall (and erase) the portal.
    expect((await postEvent(srv, fake.uninstallEvent(p, { clean: true, applicationToken: chosen }))).status).to.equal(403);
    p.installed = true;
    await pause(200);
    expect(await srv.db.repos.portals.get(portalId)).to.not.equal(null);
    expect(await row(srv, p.memberId)).to.deep.equal(before);
    // The app keeps working with the admin's pair.
    const admin = await apiClient({ fake, portal: p, srv, portalId, close: async () => {} }, 1);
    expect((await admin.get('/bitrix24/options')).status).to.equal(200);
  });

  it('the real APPLICATION_TOKEN (every frame carries it) cannot uninstall or erase a portal that Bitrix24 still has the app in', async () => {
    const p = fake.addPortal('forgeduninstall');
    expect((await postInstall(srv, fake.installation(p))).status).to.equal(200);
    const before = await waitFor(async () => {
      const x = await row(srv, p.memberId);
      return x?.installer_user_id && p.placements.length === 4 ? x : null;
    }, 5000, 'installed');
    const portalId = Number(before.portal_id);
    // Sam reads the token out of his own frame's POST.
    const forged = fake.uninstallEvent(p, { clean: true, applicationToken: samsFrame(p).APPLICATION_TOKEN });
    p.installed = true; // Bitrix24 did not uninstall anything
    expect((await postEvent(srv, forged)).status).to.equal(200);
    await waitFor(() => srv.db.knex('audit_log').where({ portal_id: portalId, action: 'bitrix24.uninstall_refused' }).first(), 5000, 'forged uninstall refused');
    expect(await row(srv, p.memberId)).to.deep.equal(before);
    expect(await srv.db.knex('jobs').where({ kind: 'bitrix24.purge', portal_id: portalId }).first()).to.equal(undefined);
    expect(await srv.db.repos.portals.get(portalId)).to.not.equal(null);
    // The real one (Bitrix24 has withdrawn the app's access first) still works.
    expect((await postEvent(srv, fake.uninstallEvent(p, { clean: true }))).status).to.equal(200);
    await waitFor(async () => (await srv.db.repos.portals.get(portalId)) === null, 10_000, 'portal erased');
  });

  it('a non-admin cannot install InCRM into a portal we do not know yet', async () => {
    const p = fake.addPortal('nonadminfirst');
    p.installed = true; // Bitrix24 lets the app's tokens work; the server never saw an admin's install
    const r = await postInstall(srv, asInstall(p, samsFrame(p), p.applicationToken));
    expect(r.status).to.equal(403);
    expect(await row(srv, p.memberId)).to.equal(undefined);
    expect(await srv.db.knex('portals').where({ crm: 'bitrix24', external_id: p.memberId }).first()).to.equal(undefined);
  });
});
