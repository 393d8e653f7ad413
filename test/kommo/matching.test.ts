import { expect } from 'chai';
import { waitFor } from '../helpers/server';
import { connectNumber, kommoWorld, type KommoWorld } from './world';

async function setSettings(w: KommoWorld, settings: Record<string, unknown>) {
  await w.srv.db.knex('portals').where({ id: w.portalId }).update({ settings: JSON.stringify(settings) });
  await new Promise((r) => setTimeout(r, 2100)); // the CRM jobs keep a portal row for up to 2 s
}

describe('Kommo: which contact and lead a WhatsApp message lands on', function () {
  this.timeout(60_000);
  let w: KommoWorld;
  let num: Awaited<ReturnType<typeof connectNumber>>;
  before(async () => {
    w = await kommoWorld({ start: { jobs: { backoffBaseMs: 20, backoffMaxMs: 500 } } });
    num = await connectNumber(w, '+15550006000');
    await setSettings(w, { unknownNumber: 'create', pipelineId: '7000042', stageId: '142000042', responsibleUserId: '502' });
  });
  after(async () => w?.close());

  const notesWith = (text: string) => w.acc.notes.filter((n) => String(n.params.text).includes(text));
  const inbound = (from: string, text: string, name = 'Client') => num.anon.post('/simulator/inbound', { to: num.phone, from, name, text });

  describe('a contact whose phone Kommo stores in a local format', () => {
    for (const [country, stored, from] of [
      ['Russia, 8 (9xx)…', '8 (912) 765-43-21', '+79127654321'],
      ['Brazil, (11) 9…', '(11) 98765-4321', '+5511987654321'],
      ['Germany, 0151…', '0151 2345 6789', '+4915123456789'],
    ] as const) {
      it(`is found, not duplicated: ${country}`, async () => {
        const known = w.fake.addContact(w.acc, { name: `Local ${country}`, phones: [stored] });
        const before = w.acc.contacts.size;
        await inbound(from, `local format ${country}`);
        await waitFor(() => notesWith(`local format ${country}`).length >= 1, 10_000, 'note');
        await new Promise((r) => setTimeout(r, 300));
        expect(w.acc.contacts.size, 'no new contact').to.equal(before);
        expect(notesWith(`local format ${country}`).map((n) => `${n.entity_type}:${n.entity_id}`)).to.include(`contacts:${known.id}`);
      });
    }

    it('a contact sharing only the last digits, written with another country code, is not taken for it', async () => {
      // +44 916 123 4567 ends in the same nine digits as +7 916 123 45 67: the search returns it.
      const other = w.fake.addContact(w.acc, { name: 'Not Her', phones: ['+44 916 123 4567'] });
      await inbound('+79161234567', 'same tail, other number', 'Olga');
      await waitFor(() => notesWith('same tail, other number').length >= 2, 10_000, 'notes');
      expect(notesWith('same tail, other number').map((n) => n.entity_id)).to.not.include(other.id);
      expect([...w.acc.contacts.values()].filter((c) => c.name === 'Olga')).to.have.length(1);
    });
  });
});
