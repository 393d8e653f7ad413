import { expect } from 'chai';
import { testDatabases } from '../helpers/databases';
import { outageBurst, waitFor } from '../helpers/server';
import { connectNumber, kommoWorld, widgetClient, type KommoWorld } from './world';

async function setSettings(w: KommoWorld, settings: Record<string, unknown>) {
  await w.srv.db.knex('portals').where({ id: w.portalId }).update({ settings: JSON.stringify(settings) });
  await new Promise((r) => setTimeout(r, 2100)); // the CRM jobs keep a portal row for up to 2 s
}

const notesWith = (w: KommoWorld, text: string) => w.acc.notes.filter((n) => String(n.params.text).includes(text));
/** A note's text without its last line, the marker (`#incrm-m<id>`) a retry finds it by. */
const bodyOf = (n: { params: Record<string, unknown> }) => String(n.params.text).replace(/\n#incrm-[0-9a-z]+$/, '');

for (const database of testDatabases()) {
  describe(`Kommo on ${database.name}: contacts, leads, notes and alerts from WhatsApp traffic`, function () {
    this.timeout(60_000);
    let w: KommoWorld;
    let num: Awaited<ReturnType<typeof connectNumber>>;
    before(async () => {
      const url = await database.create();
      w = await kommoWorld({ env: url ? { DATABASE_URL: url } : {}, fake: { timeScale: 150 }, start: { jobs: { backoffBaseMs: 20, backoffMaxMs: 1000 } } });
      num = await connectNumber(w);
      await setSettings(w, { unknownNumber: 'create', pipelineId: '7000042', stageId: '142000042', responsibleUserId: '502' });
    });
    after(async () => {
      await w?.close();
      await database.dropAll();
    });

    it('20 simultaneous first messages from one unknown phone make one contact and one lead, and 20 notes on each', async () => {
      const from = '+15557770001';
      await Promise.all(Array.from({ length: 20 }, (_, i) => num.anon.post('/simulator/inbound', { to: num.phone, from, name: 'Maria Silva', text: `hello #${i}` })));
      await waitFor(() => notesWith(w, 'hello #').length === 40, 15_000, '40 notes');
      const contacts = [...w.acc.contacts.values()].filter((c) => JSON.stringify(c.custom_fields_values).includes('15557770001'));
      expect(contacts).to.have.length(1);
      const leads = [...w.acc.leads.values()].filter((l) => l.contactIds.includes(contacts[0]!.id));
      expect(leads).to.have.length(1);
      expect(leads[0]).to.include({ pipeline_id: 7000042, status_id: 142000042, responsible_user_id: 502 });
      expect(leads[0]!.tags).to.deep.equal(['WhatsApp']);
      expect(contacts[0]!.name).to.equal('Maria Silva');
      for (let i = 0; i < 20; i++) {
        const notes = w.acc.notes.filter((n) => bodyOf(n).endsWith(`\nhello #${i}`));
        expect(notes.map((n) => `${n.entity_type}:${n.entity_id}`).sort(), `message ${i}`).to.deep.equal([`contacts:${contacts[0]!.id}`, `leads:${leads[0]!.id}`]);
      }
      expect(notesWith(w, 'hello #0')[0]!.params.text).to.match(/^WhatsApp ← \+15557770001 \(Maria Silva\) to \+15550001000\nhello #0\n#incrm-m\d+$/);
    });

    it('finds an existing contact by phone instead of creating one, and notes both directions with media links', async () => {
      const existing = w.fake.addContact(w.acc, { name: 'Known Client', phones: ['+1 555 777 0002'] });
      const lead = w.fake.addLead(w.acc, { name: 'Open deal', contactIds: [existing.id] });
      const contactsBefore = w.acc.contacts.size;
      const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4d80000000049454e44ae426082', 'hex');
      await num.anon.post('/simulator/inbound', { to: num.phone, from: '+15557770002', name: 'Known', text: 'photo attached', media: { mimetype: 'image/png', data: png.toString('base64'), filename: 'a.png' } });
      await waitFor(() => notesWith(w, 'photo attached').length === 2, 10_000, 'media notes');
      expect(w.acc.contacts.size).to.equal(contactsBefore);
      const notes = notesWith(w, 'photo attached');
      expect(notes.map((n) => `${n.entity_type}:${n.entity_id}`).sort()).to.deep.equal([`contacts:${existing.id}`, `leads:${lead.id}`]);
      expect(String(notes[0]!.params.text)).to.match(/Attachment: \S*\/media\/[0-9a-f]{64}\?/);

      const user = await widgetClient(w, 502);
      const conv = (await user.get(`/conversations?entityType=lead&entityId=${lead.id}`)).body.items[0];
      expect(conv.phone).to.equal('+15557770002');
      const sent = await user.post(`/conversations/${conv.id}/messages`, { text: 'our reply' }, { 'Idempotency-Key': 'k-reply-1' });
      expect(sent.status).to.equal(201);
      await waitFor(() => notesWith(w, 'our reply').length === 2, 10_000, 'outbound notes');
      expect(String(notesWith(w, 'our reply')[0]!.params.text)).to.match(/^WhatsApp → \+15557770002/);
    });

    it('offers the settings page the pipelines, open stages and users (admins only)', async () => {
      const admin = await widgetClient(w, 501);
      const r = await admin.get('/kommo/options');
      expect(r.status).to.equal(200);
      expect(r.body.pipelines.map((p: { name: string }) => p.name)).to.deep.equal(['Sales', 'WhatsApp']);
      expect(r.body.pipelines[1].stages).to.deep.equal([{ id: '142000042', name: 'New chat' }]);
      expect(r.body.users).to.deep.include({ id: '501', name: 'Ana Admin', admin: true });
      expect((await (await widgetClient(w, 502)).get('/kommo/options')).status).to.equal(403);
    });

    it('alerts the responsible user through the widget queue and the live stream, and a dropped number alerts the admins', async () => {
      const user = await widgetClient(w, 502);
      const before = (await user.get('/kommo/alerts')).body;
      const lastId = before.last as number;
      await num.anon.post('/simulator/inbound', { to: num.phone, from: '+15557770003', name: 'Pedro', text: 'need a quote' });
      const got = await waitFor(async () => (await user.get(`/kommo/alerts?after=${lastId}`)).body.items.find((a: { text: string }) => a.text.includes('need a quote')), 10_000, 'alert');
      expect(got.text).to.equal('WhatsApp: Pedro: need a quote');
      const link = await waitFor(() => {
        const c = [...w.acc.contacts.values()].find((x) => x.name === 'Pedro');
        return c ? `https://${w.acc.domain}/leads/detail/${c.leadIds[0]}` : null;
      });
      expect(got.link).to.equal(link);
      // Another user does not see it.
      const admin = await widgetClient(w, 501);
      const adminItems = (await admin.get(`/kommo/alerts?after=0`)).body.items as Array<{ text: string }>;
      expect(adminItems.some((a) => a.text.includes('need a quote'))).to.equal(false);

      // Live: the `everywhere` script can also listen on the stream.
      const token = (await (await fetch(`${w.srv.url}/kommo/token`, { method: 'POST', headers: { 'X-Auth-Token': w.fake.widgetJwt(w.acc.domain, 501) } })).json()).token as string;
      const ac = new AbortController();
      const stream = await fetch(`${w.srv.url}/api/v1/stream?access_token=${token}`, { signal: ac.signal });
      const reader = stream.body!.getReader();
      let seen = '';
      const reading = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          seen += Buffer.from(value).toString();
          if (seen.includes('event: alert')) return;
        }
      })();
      await num.anon.post(`/simulator/numbers/${num.numberId}/unlink`);
      const adminAlert = await waitFor(async () => (await admin.get('/kommo/alerts?after=0')).body.items.find((a: { text: string }) => a.text.includes(num.phone)), 10_000, 'number alert');
      expect(adminAlert.text).to.contain('was logged out');
      await reading;
      ac.abort();
      expect(seen).to.match(/event: alert\ndata: .*"userIds":\["501"\]/);
    });
  });

  describe(`Kommo on ${database.name}: an outage of five (simulated) minutes during 300 messages`, function () {
    this.timeout(120_000);
    let w: KommoWorld;
    after(async () => {
      await w?.close();
      await database.dropAll();
    });

    it('writes every message as a note exactly once after Kommo comes back', async () => {
      const url = await database.create();
      w = await kommoWorld({ env: url ? { DATABASE_URL: url } : {}, fake: { timeScale: 150 }, start: { jobs: { backoffBaseMs: 20, backoffMaxMs: 1000 } } });
      const num = await connectNumber(w, '+15550002000');
      await w.srv.db.knex('portals').where({ id: w.portalId }).update({ settings: JSON.stringify({ unknownNumber: 'create', responsibleUserId: '502' }) });
      // Ten clients known to Kommo already, twenty new ones.
      for (let p = 0; p < 10; p++) {
        const c = w.fake.addContact(w.acc, { name: `Known ${p}`, phones: [`+1555888${String(p).padStart(4, '0')}`] });
        w.fake.addLead(w.acc, { name: `Deal ${p}`, contactIds: [c.id] });
      }
      w.fake.outage(5 * 60_000, { hold: true });
      const sent = await outageBurst(w.srv.url, num.phone);
      expect(w.fake.down, 'all 300 sent while Kommo was down').to.equal(true);
      // Down until the jobs have really met the outage: on a loaded machine they may not have
      // reached Kommo yet, and the few (simulated) minutes left after release could pass unseen.
      await waitFor(() => w.fake.stats.outageAnswers > 20, 30_000, 'retries refused during the outage');
      w.fake.release();
      await waitFor(() => !w.fake.down, 10_000, 'outage over');
      await waitFor(() => w.acc.notes.filter((n) => String(n.params.text).includes('outage msg')).length >= 600, 60_000, '600 notes');
      await new Promise((r) => setTimeout(r, 500)); // anything doubled would show up now
      // Retried through the outage (how often depends on the machine's speed), never given up on.
      expect(w.fake.stats.outageAnswers).to.be.greaterThan(20);
      for (const text of sent) {
        const notes = w.acc.notes.filter((n) => bodyOf(n).endsWith(`\n${text}`));
        expect(notes.map((n) => n.entity_type).sort(), text).to.deep.equal(['contacts', 'leads']);
      }
      // One contact and one lead per new phone, none for the known ones.
      const created = [...w.acc.contacts.values()].filter((c) => c.name.startsWith('Client '));
      expect(created).to.have.length(20);
      expect(new Set(created.map((c) => c.name)).size).to.equal(20);
      const dead = await w.srv.db.knex('jobs').where({ state: 'dead' }).count({ n: '*' });
      expect(Number(dead[0]!.n)).to.equal(0);
    });
  });
}
