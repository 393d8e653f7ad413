import { expect } from 'chai';
import { testDatabases } from '../helpers/databases';
import { client, waitFor } from '../helpers/server';
import { apiClient, bitrix24World, connectNumber, frameToken, type B24World } from './world';

const page = async (w: B24World, path: string, body: Record<string, string>) =>
  fetch(`${w.srv.url}${path}?DOMAIN=${w.portal.domain}&PROTOCOL=1&LANG=${body.LANG ?? 'en'}`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });

function boot(html: string): Record<string, any> {
  const m = /<div id="incrm"><\/div><script>window\.INCRM_BOOT=(.*?)<\/script><script src="\/widget\/bitrix24\.js"><\/script>/.exec(html);
  if (!m) throw new Error(`no boot contract in ${html.slice(0, 300)}`);
  return JSON.parse(m[1]!);
}

const commentsWith = (w: B24World, text: string) => w.portal.comments.filter((c) => c.COMMENT.includes(text));

for (const database of testDatabases()) {
  describe(`Bitrix24 on ${database.name}: frames, tokens, CRM records, timeline and alerts`, function () {
    this.timeout(60_000);
    let w: B24World;
    let num: Awaited<ReturnType<typeof connectNumber>>;
    before(async () => {
      const url = await database.create();
      w = await bitrix24World({ env: url ? { DATABASE_URL: url } : {} });
      num = await connectNumber(w);
    });
    after(async () => {
      await w?.close();
      await database.dropAll();
    });

    it('card tab: verifies AUTH_ID on the portal and answers the boot contract, framed by the portal only', async () => {
      const contact = w.fake.addContact(w.portal, { name: 'Maria', phones: ['+1 (555) 000-2001'] });
      const deal = w.fake.addDeal(w.portal, { title: 'Deal', contactIds: [contact.ID] });
      const f = w.fake.frameForm(w.portal, 7, 'CRM_DEAL_DETAIL_TAB', { ID: String(deal.ID) }, 'la');
      const res = await page(w, '/bitrix24/placement', f);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-security-policy')).to.equal(`frame-ancestors https://${w.portal.domain} 'self'`);
      expect(res.headers.get('x-frame-options')).to.equal(null);
      const b = boot(await res.text());
      expect(b).to.include({ host: 'bitrix24', view: 'panel', apiBase: w.srv.url, lang: 'es', admin: false, userId: '7', memberId: w.portal.memberId, domain: w.portal.domain });
      expect(Object.keys(b)).to.deep.equal(['host', 'view', 'apiBase', 'token', 'tokenExpiresAt', 'entity', 'lang', 'admin', 'userId', 'memberId', 'domain']);
      expect(b.entity).to.deep.equal({ type: 'deal', id: String(deal.ID) });
      expect(Date.parse(b.tokenExpiresAt)).to.be.greaterThan(Date.now());
      expect(w.srv.tokens.verify(b.token)).to.deep.equal({ portalId: w.portalId, userId: '7', admin: false });
      const api = client(w.srv.url + '/api/v1', b.token);
      const conv = await api.get(`/conversations?entityType=deal&entityId=${deal.ID}`);
      expect(conv.body.phones).to.deep.equal(['+15550002001']);

      const s = await page(w, '/bitrix24/app', w.fake.frameForm(w.portal, 1, 'DEFAULT', {}, 'ru'));
      const sb = boot(await s.text());
      expect(sb).to.include({ view: 'settings', admin: true, lang: 'ru', userId: '1' });
      expect(sb.entity).to.equal(null);
    });

    it('refuses a forged or expired AUTH_ID, another portal DOMAIN, and escapes the boot JSON', async () => {
      const f = w.fake.frameForm(w.portal, 7, 'CRM_DEAL_DETAIL_TAB', { ID: '1' });
      expect((await page(w, '/bitrix24/placement', { ...f, AUTH_ID: 'z'.repeat(40) })).status).to.equal(401);
      expect((await page(w, '/bitrix24/placement', { ...f, DOMAIN: 'other.bitrix24.com' })).status).to.equal(403);
      const t = await fetch(`${w.srv.url}/bitrix24/token`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ member_id: w.portal.memberId, auth_id: 'z'.repeat(40) }) });
      expect(t.status).to.equal(401);
      const ok = await fetch(`${w.srv.url}/bitrix24/token`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ member_id: w.portal.memberId, auth_id: w.fake.frameForm(w.portal, 1, 'DEFAULT', {}).AUTH_ID }) });
      expect(await ok.json()).to.include({ admin: true, userId: '1' });
      const odd = await page(w, '/bitrix24/placement', { ...w.fake.frameForm(w.portal, 7, 'CRM_LEAD_DETAIL_TAB', { ID: '5' }), PLACEMENT_OPTIONS: '{"ID":"</script><script>alert(1)</script>"}' });
      const html = await odd.text();
      expect(html).not.to.contain('alert(1)</script>');
      expect(boot(html).entity).to.equal(null);
    });

    it('refreshes exactly once under 10 concurrent calls after the access token expired', async () => {
      const contact = w.fake.addContact(w.portal, { name: 'Ivan', phones: ['8 (912) 123-45-67'] });
      const user = await apiClient(w, 7);
      w.fake.expireAccessTokens(w.portal);
      const before = { ...w.fake.stats };
      const results = await Promise.all(Array.from({ length: 10 }, () => user.get(`/conversations?entityType=contact&entityId=${contact.ID}`)));
      for (const r of results) expect(r.body.phones).to.deep.equal(['+79121234567']);
      expect(w.fake.stats.refreshes - before.refreshes).to.equal(1);
      expect(w.fake.stats.refusedRefreshes - before.refusedRefreshes).to.equal(0);
      const row = await w.srv.db.knex('bitrix24_portals').where({ portal_id: w.portalId }).first();
      expect(Number(row.token_version)).to.be.greaterThan(1);
    });

    it('reads the phones of a deal, lead, contact and company', async () => {
      const c1 = w.fake.addContact(w.portal, { name: 'A', phones: ['+44 20 7946 0000', 'not a phone'] });
      const co = w.fake.addCompany(w.portal, { title: 'Co', phones: ['+55 11 99999-0000'], contactIds: [c1.ID] });
      const deal = w.fake.addDeal(w.portal, { title: 'D', contactIds: [c1.ID], companyId: co.ID });
      const user = await apiClient(w, 7);
      expect((await user.get(`/conversations?entityType=deal&entityId=${deal.ID}`)).body.phones).to.have.members(['+442079460000', '+5511999990000']);
      expect((await user.get(`/conversations?entityType=company&entityId=${co.ID}`)).body.phones).to.have.members(['+442079460000', '+5511999990000']);
      expect((await user.get(`/conversations?entityType=deal&entityId=99999999`)).body.phones).to.deep.equal([]);
    });

    it('20 simultaneous first messages from one unknown phone: one contact, one deal, 20 comments on each', async () => {
      await w.srv.db.knex('portals').where({ id: w.portalId }).update({ settings: JSON.stringify({ unknownNumber: 'create', pipelineId: '3', stageId: 'C3:NEW', responsibleUserId: '7' }) });
      await new Promise((r) => setTimeout(r, 2100));
      const from = '+15557770001';
      // The first create is carried out but answered 500: it must be found, not made twice.
      w.fake.failWritesAfterDoing(1);
      await Promise.all(Array.from({ length: 20 }, (_, i) => num.anon.post('/simulator/inbound', { to: num.phone, from, name: 'Maria Silva', text: `hello #${i}` })));
      await waitFor(() => commentsWith(w, 'hello #').length === 40, 20_000, '40 comments');
      const contacts = [...w.portal.contacts.values()].filter((c) => (c.PHONE ?? []).some((p) => p.VALUE === from));
      expect(contacts).to.have.length(1);
      expect(contacts[0]!.NAME).to.equal('Maria Silva');
      const deals = [...w.portal.deals.values()].filter((d) => d.CONTACT_ID === contacts[0]!.ID);
      expect(deals).to.have.length(1);
      expect(deals[0]).to.include({ CATEGORY_ID: 3, STAGE_ID: 'C3:NEW', ASSIGNED_BY_ID: 7 });
      expect(w.fake.stats.writesFailedAfterDoing).to.equal(1);
      for (let i = 0; i < 20; i++) {
        const cs = w.portal.comments.filter((c) => c.COMMENT.split('\n')[1] === `hello #${i}`);
        expect(cs.map((c) => `${c.ENTITY_TYPE}:${c.ENTITY_ID}`).sort(), `message ${i}`).to.deep.equal([`contact:${contacts[0]!.ID}`, `deal:${deals[0]!.ID}`].sort());
      }
      expect(commentsWith(w, 'hello #0')[0]!.COMMENT).to.match(/^WhatsApp ← \+15557770001 \(Maria Silva\) to \+15550001000\nhello #0\n#incrm-m\d+$/);
      // Each new message alerted the responsible user, linking to the deal card.
      await waitFor(() => w.portal.notifications.some((n) => n.USER_ID === '7' && n.MESSAGE.includes('hello #19')), 10_000, 'alert');
      const n = w.portal.notifications.find((x) => x.MESSAGE.includes('hello #19'))!;
      expect(n.MESSAGE).to.contain(`[URL=https://${w.portal.domain}/crm/deal/details/${deals[0]!.ID}/]`);
    });

    it('finds a known contact by phone and mirrors both directions with media links onto it and its open deal', async () => {
      const known = w.fake.addContact(w.portal, { name: 'Known Client', phones: ['+1 555 777 0002'] });
      const deal = w.fake.addDeal(w.portal, { title: 'Open deal', contactIds: [known.ID] });
      const before = w.portal.contacts.size;
      const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4d80000000049454e44ae426082', 'hex');
      await num.anon.post('/simulator/inbound', { to: num.phone, from: '+15557770002', name: 'Known', text: 'photo attached', media: { mimetype: 'image/png', data: png.toString('base64'), filename: 'a.png' } });
      await waitFor(() => commentsWith(w, 'photo attached').length === 2, 10_000, 'media comments');
      expect(w.portal.contacts.size).to.equal(before);
      const cs = commentsWith(w, 'photo attached');
      expect(cs.map((c) => `${c.ENTITY_TYPE}:${c.ENTITY_ID}`).sort()).to.deep.equal([`contact:${known.ID}`, `deal:${deal.ID}`]);
      expect(cs[0]!.COMMENT).to.match(/Attachment: \S*\/media\/[0-9a-f]{64}\?/);
      const user = await apiClient(w, 7);
      const conv = (await user.get(`/conversations?entityType=deal&entityId=${deal.ID}`)).body.items[0];
      const sent = await user.post(`/conversations/${conv.id}/messages`, { text: 'our reply' }, { 'Idempotency-Key': 'b24-reply-1' });
      expect(sent.status).to.equal(201);
      await waitFor(() => commentsWith(w, 'our reply').length === 2, 10_000, 'outbound comments');
      expect(commentsWith(w, 'our reply')[0]!.COMMENT).to.match(/^WhatsApp → \+15557770002/);
    });

    it('offers the settings tab pipelines, stages and users (admins only), and tells admins the connection state', async () => {
      const admin = await apiClient(w, 1);
      const r = await admin.get('/bitrix24/options');
      expect(r.status).to.equal(200);
      expect(r.body.pipelines.map((p: { name: string }) => p.name)).to.deep.equal(['General', 'WhatsApp']);
      expect(r.body.pipelines[1].stages).to.deep.equal([{ id: 'C3:NEW', name: 'New chat' }]);
      expect(r.body.leadStages.map((s: { id: string }) => s.id)).to.deep.equal(['NEW', 'IN_PROCESS']);
      expect(r.body.users).to.deep.include({ id: '1', name: 'Ana Admin', admin: true });
      expect((await (await apiClient(w, 7)).get('/bitrix24/options')).status).to.equal(403);
      expect((await admin.get('/bitrix24/status')).body).to.include({ state: 'active', reason: null, domain: w.portal.domain });
    });

    it('a dropped number alerts the admins; a revoked refresh token marks the portal and admins see why', async () => {
      await num.anon.post(`/simulator/numbers/${num.numberId}/unlink`);
      await waitFor(() => w.portal.notifications.some((n) => n.USER_ID === '1' && n.MESSAGE.includes(num.phone) && n.MESSAGE.includes('logged out')), 10_000, 'admin alert');
      w.fake.expireAccessTokens(w.portal);
      w.fake.revokeRefreshTokens(w.portal);
      const admin = client(w.srv.url + '/api/v1', await frameToken(w, 1));
      const r = await admin.get('/bitrix24/options');
      expect(r.status).to.equal(503);
      const st = (await admin.get('/bitrix24/status')).body;
      expect(st.state).to.equal('revoked');
      expect(st.reason).to.contain('invalid_grant');
      // An admin opening the app hands us a fresh pair: the portal is connected again.
      const f = w.fake.frameForm(w.portal, 1, 'DEFAULT', {});
      expect((await page(w, '/bitrix24/app', f)).status).to.equal(200);
      await waitFor(async () => (await admin.get('/bitrix24/status')).body.state === 'active', 5000, 'reconnected');
      expect((await admin.get('/bitrix24/options')).status).to.equal(200);
    });
  });
}
