import { expect } from 'chai';
import { SecretBox } from '../../server/security/secretBox';
import { client } from '../helpers/server';
import { KOMMO_APP, kommoWorld, widgetClient, type KommoWorld } from './world';

describe('Kommo: install, tokens, widget proof, uninstall', function () {
  this.timeout(20_000);
  let w: KommoWorld;
  before(async () => {
    w = await kommoWorld();
  });
  after(async () => w?.close());

  it('exchanges the install code at once and stores the tokens sealed', async () => {
    expect(w.fake.stats.codeExchanges).to.equal(1);
    const row = await w.srv.db.knex('kommo_accounts').where({ portal_id: w.portalId }).first();
    expect(row.domain).to.equal(w.acc.domain);
    expect(String(row.tokens)).to.match(/^v1:/);
    expect(String(row.tokens)).not.to.contain('at-');
    const tokens = new SecretBox(w.srv.config.SECRET_KEY, 'kommo-tokens').openJson<{ access_token: string }>(String(row.tokens));
    expect(tokens.access_token).to.match(/^at-/);
    const portal = await w.srv.db.repos.portals.get(w.portalId);
    expect(portal).to.include({ crm: 'kommo', externalId: String(w.acc.id), name: w.acc.name });
  });

  it('shows a person a readable page, and refuses a reused code without storing anything', async () => {
    const bare = await fetch(`${w.srv.url}/kommo/oauth`);
    expect(bare.status).to.equal(400);
    expect(bare.headers.get('content-type')).to.contain('text/html');
    expect(await bare.text()).to.contain('install InCRM from your Kommo account');
    const denied = await fetch(`${w.srv.url}/kommo/oauth?error=access_denied&state=x`);
    expect(await denied.text()).to.contain('Access not granted');
    const other = w.fake.addAccount('reuse' + w.portalId);
    const code = w.fake.issueCode(other.domain);
    const first = await fetch(`${w.srv.url}/kommo/oauth?code=${code}&referer=${other.domain}`);
    expect(first.status).to.equal(200);
    const again = await fetch(`${w.srv.url}/kommo/oauth?code=${code}&referer=${other.domain}`);
    expect(again.status).to.equal(502);
    expect(await again.text()).to.contain('Cannot decrypt the authorization code');
    const bad = await fetch(`${w.srv.url}/kommo/oauth?code=abc&referer=evil.example.test`);
    expect(bad.status).to.equal(400);
  });

  it('refreshes once under 10 concurrent calls after the access token expired, never reusing a refresh token', async () => {
    const lead = w.fake.addLead(w.acc, { name: 'L', contactIds: [w.fake.addContact(w.acc, { name: 'Maria', phones: ['+1 (555) 000-2001'] }).id] });
    const user = await widgetClient(w, 502);
    w.fake.expireAccessTokens(w.acc.domain);
    const before = { ...w.fake.stats };
    const results = await Promise.all(Array.from({ length: 10 }, () => user.get(`/conversations?entityType=lead&entityId=${lead.id}`)));
    for (const r of results) {
      expect(r.status).to.equal(200);
      expect(r.body.phones).to.deep.equal(['+15550002001']);
    }
    expect(w.fake.stats.refreshes - before.refreshes).to.equal(1);
    expect(w.fake.stats.revokedRefreshes).to.equal(0);
    // The new pair was stored: a fresh server process would use it (version moved on).
    const row = await w.srv.db.knex('kommo_accounts').where({ portal_id: w.portalId }).first();
    expect(Number(row.token_version)).to.be.greaterThan(1);
  });

  it('refreshes ahead of expiry by the stored time too, once for 10 calls', async () => {
    const box = new SecretBox(w.srv.config.SECRET_KEY, 'kommo-tokens');
    const row = await w.srv.db.knex('kommo_accounts').where({ portal_id: w.portalId }).first();
    const t = box.openJson<Record<string, unknown>>(String(row.tokens));
    await w.srv.db.knex('kommo_accounts').where({ portal_id: w.portalId }).update({ tokens: box.sealJson({ ...t, expires_at: Date.now() - 1000 }), token_version: Number(row.token_version) + 1 });
    const user = await widgetClient(w, 502);
    const before = w.fake.stats.refreshes;
    const contact = w.fake.addContact(w.acc, { name: 'Ivan', phones: ['8 (912) 123-45-67'] });
    const results = await Promise.all(Array.from({ length: 10 }, () => user.get(`/conversations?entityType=contact&entityId=${contact.id}`)));
    for (const r of results) expect(r.body.phones).to.deep.equal(['+79121234567']);
    expect(w.fake.stats.refreshes - before).to.equal(1);
    expect(w.fake.stats.revokedRefreshes).to.equal(0);
  });

  it('reads the phones of a lead from its contacts and company', async () => {
    const c1 = w.fake.addContact(w.acc, { name: 'A', phones: ['+44 20 7946 0000', 'not a phone'] });
    const co = w.fake.addCompany(w.acc, { name: 'Co', phones: ['+55 11 99999-0000'] });
    const lead = w.fake.addLead(w.acc, { name: 'Deal', contactIds: [c1.id], companyId: co.id });
    const user = await widgetClient(w, 502);
    const r = await user.get(`/conversations?entityType=lead&entityId=${lead.id}`);
    expect(r.body.phones).to.have.members(['+442079460000', '+5511999990000']);
    const none = await user.get(`/conversations?entityType=lead&entityId=99999999`);
    expect(none.status).to.equal(200);
    expect(none.body.phones).to.deep.equal([]);
    const company = await user.get(`/conversations?entityType=company&entityId=${co.id}`);
    expect(company.body.phones).to.deep.equal(['+5511999990000']);
  });

  it('mints a core token from a valid widget JWT with the user and admin flag', async () => {
    const res = await fetch(`${w.srv.url}/kommo/token`, { method: 'POST', headers: { 'X-Auth-Token': w.fake.widgetJwt(w.acc.domain, 501) } });
    expect(res.status).to.equal(200);
    const body = (await res.json()) as { token: string; expiresAt: string; admin: boolean; userId: string; portalId: number };
    expect(body).to.include({ admin: true, userId: '501', portalId: w.portalId });
    expect(Date.parse(body.expiresAt)).to.be.greaterThan(Date.now());
    const p = w.srv.tokens.verify(body.token);
    expect(p).to.deep.equal({ portalId: w.portalId, userId: '501', admin: true });
    // Without is_admin in the token, the account's users endpoint decides.
    const noFlag = w.fake.widgetJwt(w.acc.domain, 502, { is_admin: undefined });
    const r2 = await (await fetch(`${w.srv.url}/kommo/token`, { method: 'POST', headers: { 'X-Auth-Token': noFlag } })).json();
    expect(r2).to.include({ admin: false, userId: '502' });
  });

  it('rejects expired, wrong-audience, wrong-signature, foreign-account and alg-none tokens', async () => {
    const post = async (t: string, origin?: string) =>
      fetch(`${w.srv.url}/kommo/token`, { method: 'POST', headers: { 'X-Auth-Token': t, ...(origin ? { Origin: origin } : {}) } });
    const now = Math.floor(Date.now() / 1000);
    const cases: Array<[string, string, number]> = [
      ['expired', w.fake.widgetJwt(w.acc.domain, 501, { iat: now - 4000, nbf: now - 4000, exp: now - 2000 }), 401],
      ['wrong audience', w.fake.widgetJwt(w.acc.domain, 501, { aud: 'https://someone-else.example.test' }), 401],
      ['wrong signature', w.fake.widgetJwt(w.acc.domain, 501, {}, 'another-integration-secret'), 401],
      ['other integration', w.fake.widgetJwt(w.acc.domain, 501, { client_uuid: 'another-client' }), 401],
      ['account not installed', w.fake.widgetJwt(w.acc.domain, 501, { account_id: 424242 }), 403],
      ['issuer of another account', w.fake.widgetJwt(w.acc.domain, 501, { iss: 'https://other.kommo.com' }), 401],
    ];
    for (const [what, token, status] of cases) {
      const r = await post(token);
      expect(r.status, what).to.equal(status);
    }
    const [h, p] = w.fake.widgetJwt(w.acc.domain, 501).split('.');
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    expect((await post(`${none}.${p}.`)).status).to.equal(401);
    expect((await post(`${h}.${p}`)).status).to.equal(401);
    expect((await fetch(`${w.srv.url}/kommo/token`, { method: 'POST' })).status).to.equal(401);
    // From another account's page: refused even with a good token.
    expect((await post(w.fake.widgetJwt(w.acc.domain, 501), 'https://other.kommo.com')).status).to.equal(403);
    // From any other site too; only the server's own pages (the demo's emulated Kommo) are let through.
    expect((await post(w.fake.widgetJwt(w.acc.domain, 501), 'http://evil.example.test')).status).to.equal(403);
    expect((await post(w.fake.widgetJwt(w.acc.domain, 501), w.srv.url)).status).to.equal(200);
  });

  it('answers CORS only to the account own origin', async () => {
    const origin = `https://${w.acc.domain}`;
    const pre = await fetch(`${w.srv.url}/kommo/token`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'x-auth-token' } });
    expect(pre.status).to.equal(204);
    expect(pre.headers.get('access-control-allow-origin')).to.equal(origin);
    expect(pre.headers.get('access-control-allow-headers')).to.contain('X-Auth-Token');
    const foreign = await fetch(`${w.srv.url}/kommo/token`, { method: 'OPTIONS', headers: { Origin: 'https://stranger.kommo.com', 'Access-Control-Request-Method': 'POST' } });
    expect(foreign.headers.get('access-control-allow-origin')).to.equal(null);
    const evil = await fetch(`${w.srv.url}/api/v1/numbers`, { method: 'OPTIONS', headers: { Origin: 'https://evil.example.test', 'Access-Control-Request-Method': 'GET' } });
    expect(evil.headers.get('access-control-allow-origin')).to.equal(null);
    const user = await widgetClient(w, 502);
    const ok = await user.get('/numbers', { Origin: origin });
    expect(ok.status).to.equal(200);
    expect(ok.headers.get('access-control-allow-origin')).to.equal(origin);
    // A token of another portal used from this origin gets no CORS grant.
    const sim = (await client(w.srv.url + '/api/v1').post('/simulator/portals', { crm: 'none', name: 'x' })).body;
    const other = await client(w.srv.url + '/api/v1', sim.userToken).get('/numbers', { Origin: origin });
    expect(other.headers.get('access-control-allow-origin')).to.equal(null);
  });

  it('disable hook: a bad signature changes nothing; a good one closes the sessions and schedules deletion in 30 days', async () => {
    const bad = await fetch(`${w.srv.url}/kommo/disable?${w.fake.disableQuery(w.acc.id, 'wrong-secret')}`);
    expect(bad.status).to.equal(403);
    const unsigned = await fetch(`${w.srv.url}/kommo/disable?account_id=${w.acc.id}&client_uuid=${KOMMO_APP.clientId}&signature=zz`);
    expect(unsigned.status).to.equal(400);
    let row = await w.srv.db.knex('kommo_accounts').where({ portal_id: w.portalId }).first();
    expect(row.disabled_at).to.equal(null);
    expect(row.tokens).to.not.equal(null);

    const admin = await widgetClient(w, 501);
    const numberId = (await admin.post('/numbers')).body.id as number;
    w.fake.uninstall(w.acc.domain); // as Kommo does: our tokens stop working, then the hook comes
    const good = await fetch(`${w.srv.url}/kommo/disable?${w.fake.disableQuery(w.acc.id)}`);
    expect(good.status).to.equal(200);
    row = await w.srv.db.knex('kommo_accounts').where({ portal_id: w.portalId }).first();
    expect(row.tokens).to.equal(null);
    expect(Number(row.delete_after) - Number(row.disabled_at)).to.equal(30 * 24 * 3600_000);
    expect((await admin.get(`/numbers/${numberId}`)).body.state).to.equal('logged_out');
    const job = await w.srv.db.knex('jobs').where({ kind: 'kommo.purge' }).first();
    expect(Number(job.run_at)).to.equal(Number(row.delete_after));
    // The widget of the uninstalled account gets no new tokens.
    const r = await fetch(`${w.srv.url}/kommo/token`, { method: 'POST', headers: { 'X-Auth-Token': w.fake.widgetJwt(w.acc.domain, 501) } });
    expect(r.status).to.equal(403);
    // Reinstall within 30 days keeps the portal and its data.
    const again = await fetch(`${w.srv.url}/kommo/oauth?code=${w.fake.issueCode(w.acc.domain)}&referer=${w.acc.domain}`);
    expect(again.status).to.equal(200);
    row = await w.srv.db.knex('kommo_accounts').where({ portal_id: w.portalId }).first();
    expect(row.disabled_at).to.equal(null);
    expect((await admin.get(`/numbers/${numberId}`)).status).to.equal(200);
  });
});
