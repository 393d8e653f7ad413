import { expect } from 'chai';
import { waitFor } from '../helpers/server';
import { directKommo } from './direct';
import { connectNumber, kommoWorld, type KommoWorld } from './world';

// Kommo answers 429 above 7 REST requests per second per account (and blocks repeat offenders).
// Here both the server and the fake run at that real limit; the fake counts every request on
// arrival over a sliding second and refuses the one too many.
describe("Kommo: our client stays within Kommo's 7 requests per second", function () {
  this.timeout(90_000);
  let w: KommoWorld;
  before(async () => {
    w = await kommoWorld({ env: { KOMMO_MAX_RPS: '7' }, fake: { timeScale: 150 }, start: { jobs: { backoffBaseMs: 20, backoffMaxMs: 500 } } });
  });
  after(async () => w?.close());

  it('a burst of 40 parallel calls, some of them slow, never goes over 7 in any second at Kommo', async () => {
    const k = directKommo(w, { maxPerSecond: 7 });
    const lead = w.fake.addLead(w.acc, { name: 'Busy', contactIds: [w.fake.addContact(w.acc, { name: 'Busy Client', phones: [] }).id] });
    // Slow answers: a pace that counts requests only when it sends them lets the next second's
    // requests overlap with these still being worked on.
    w.fake.failNoteCreates(...Array.from({ length: 6 }, () => ({ kind: 'late' as const, ms: 400 })));
    // The install's own call (made with the new tokens before the account is stored, so unpaced)
    // must be a second old first; this client shares the account's budget with nobody else.
    await new Promise((r) => setTimeout(r, 1100));
    const before = { ...w.fake.stats };
    const t0 = Date.now();
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        i % 5 === 0
          ? k.api.call(w.portalId, 'POST', '/api/v4/leads/notes', [{ entity_id: lead.id, note_type: 'common', params: { text: `burst ${i}` } }])
          : k.api.call(w.portalId, 'GET', `/api/v4/leads/${lead.id}`),
      ),
    );
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).to.deep.equal([]);
    expect(w.fake.stats.rateLimited - before.rateLimited, '429s for going too fast').to.equal(0);
    expect(w.fake.stats.peakPerSecond).to.be.at.most(7);
    expect(Date.now() - t0, '40 calls at 7/s take over 4 s').to.be.greaterThan(4000);
  });

  it('after a (simulated) five-minute outage, the retries of 20 messages come back at 7/s: every note once, no 429 for speed', async () => {
    const num = await connectNumber(w, '+15550005000');
    await w.srv.db.knex('portals').where({ id: w.portalId }).update({ settings: JSON.stringify({ unknownNumber: 'create', responsibleUserId: '502' }) });
    for (let p = 0; p < 4; p++) {
      const c = w.fake.addContact(w.acc, { name: `Rate ${p}`, phones: [`+1555666${String(p).padStart(4, '0')}`] });
      w.fake.addLead(w.acc, { name: `Rate deal ${p}`, contactIds: [c.id] });
    }
    await new Promise((r) => setTimeout(r, 2100)); // the CRM jobs keep a portal row for up to 2 s
    const before = { ...w.fake.stats };
    w.fake.outage(5 * 60_000, { hold: true });
    const sent: string[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        sent.push(`rate msg ${i}.`);
        return num.anon.post('/simulator/inbound', { to: num.phone, from: `+1555666${String(i % 4).padStart(4, '0')}`, name: `Rate ${i % 4}`, text: `rate msg ${i}.` });
      }),
    );
    await waitFor(() => w.fake.stats.outageAnswers - before.outageAnswers > 20, 20_000, 'retries during the outage');
    w.fake.release();
    await waitFor(() => w.acc.notes.filter((n) => String(n.params.text).includes('rate msg ')).length >= 40, 60_000, '40 notes');
    await new Promise((r) => setTimeout(r, 500));
    for (const text of sent) {
      const notes = w.acc.notes.filter((n) => String(n.params.text).includes(`\n${text}\n`));
      expect(notes.map((n) => n.entity_type).sort(), text).to.deep.equal(['contacts', 'leads']);
    }
    expect(w.fake.stats.rateLimited - before.rateLimited, '429s for going too fast').to.equal(0);
    expect(w.fake.stats.peakPerSecond).to.be.at.most(7);
  });
});
