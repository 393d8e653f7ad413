import { expect } from 'chai';
import { waitFor } from '../helpers/server';
import { directKommo, message, type DirectKommo } from './direct';
import { connectNumber, kommoWorld, type KommoWorld } from './world';

// Kommo has no duplicate guard for notes (`request_id` is only echoed back), so a note whose
// creation looked failed — a 500 or a timeout after Kommo stored it — must be found again, not
// written twice.
describe('Kommo: a note whose creation looked failed is written once', function () {
  this.timeout(30_000);
  let w: KommoWorld;
  let k: DirectKommo;
  before(async () => {
    w = await kommoWorld({ start: { jobs: { backoffBaseMs: 20, backoffMaxMs: 200 } } });
    k = directKommo(w, { timeoutMs: 250, lingerMs: 1500 });
  });
  after(async () => w?.close());

  const notesWith = (text: string) => w.acc.notes.filter((n) => String(n.params.text).includes(text));

  async function lead() {
    const c = w.fake.addContact(w.acc, { name: 'Note Target', phones: [] });
    return w.fake.addLead(w.acc, { name: 'Deal', contactIds: [c.id] });
  }

  it('Kommo stored it and answered 500: the retry finds it and writes nothing', async () => {
    const l = await lead();
    const m = message('created then 500');
    w.fake.failNoteCreates({ kind: 'error' });
    const portal = await k.portal();
    let failed: unknown = null;
    await k.adapter.record(portal, { type: 'lead', id: String(l.id) }, m).catch((err) => (failed = err));
    expect(failed, 'the 500 surfaces as a failure').to.be.instanceOf(Error);
    expect(notesWith('created then 500')).to.have.length(1);
    await k.adapter.record(portal, { type: 'lead', id: String(l.id) }, m);
    await k.adapter.record(portal, { type: 'lead', id: String(l.id) }, m);
    expect(notesWith('created then 500')).to.have.length(1);
  });

  it('our timeout fired while Kommo was still creating it: the retry waits for that request instead of sending another', async () => {
    const l = await lead();
    const m = message('late answer');
    w.fake.failNoteCreates({ kind: 'late', ms: 700 });
    const portal = await k.portal();
    let failed: unknown = null;
    await k.adapter.record(portal, { type: 'lead', id: String(l.id) }, m).catch((err) => (failed = err));
    expect(String(failed)).to.match(/no answer from Kommo/);
    expect(notesWith('late answer'), 'not stored yet when we gave up').to.have.length(0);
    await k.adapter.record(portal, { type: 'lead', id: String(l.id) }, m); // the job's retry, at once
    await new Promise((r) => setTimeout(r, 900));
    expect(notesWith('late answer')).to.have.length(1);
  });

  it('Kommo stored it and never answered: after the wait the retry finds it by its marker', async () => {
    const l = await lead();
    const m = message('stored, no answer');
    w.fake.failNoteCreates({ kind: 'hang' });
    const portal = await k.portal();
    await k.adapter.record(portal, { type: 'lead', id: String(l.id) }, m).catch(() => {});
    await k.adapter.record(portal, { type: 'lead', id: String(l.id) }, m);
    expect(notesWith('stored, no answer')).to.have.length(1);
    const row = await w.srv.db.knex('kommo_notes').where({ portal_id: w.portalId, entity_type: 'leads', entity_id: String(l.id) }).first();
    expect(row.note_id, 'found again and remembered').to.equal(String(notesWith('stored, no answer')[0]!.id));
  });

  it('through the server: Kommo stores the notes of a message but answers 500 → one note per record', async () => {
    const num = await connectNumber(w, '+15550004000');
    await w.srv.db.knex('portals').where({ id: w.portalId }).update({ settings: JSON.stringify({ unknownNumber: 'create', responsibleUserId: '502' }) });
    await new Promise((r) => setTimeout(r, 2100)); // the CRM jobs keep a portal row for up to 2 s
    w.fake.failNoteCreates({ kind: 'error' }, { kind: 'error' }, { kind: 'error' });
    await num.anon.post('/simulator/inbound', { to: num.phone, from: '+15557774001', name: 'Retry Me', text: 'mirrored despite 500s' });
    await waitFor(async () => Number((await w.srv.db.knex('jobs').where({ kind: 'crm.mirror' }).count({ n: '*' }))[0]!.n) === 0 && notesWith('mirrored despite 500s').length >= 2, 15_000, 'mirror done');
    await new Promise((r) => setTimeout(r, 300));
    expect(notesWith('mirrored despite 500s').map((n) => n.entity_type).sort()).to.deep.equal(['contacts', 'leads']);
  });
});
