import { expect } from 'chai';
import { waitFor } from '../helpers/server';
import { directKommo, message, OffsetClock } from './direct';
import { connectNumber, kommoWorld, type KommoWorld } from './world';

async function setSettings(w: KommoWorld, settings: Record<string, unknown>) {
  await w.srv.db.knex('portals').where({ id: w.portalId }).update({ settings: JSON.stringify(settings) });
  await new Promise((r) => setTimeout(r, 2100)); // the CRM jobs keep a portal row for up to 2 s
}

describe('Kommo: which contact and lead a WhatsApp message lands on', function () {
  this.timeout(60_000);
  let w: KommoWorld;
  let num: Awaited<ReturnType<typeof connectNumber>>;
  const clock = new OffsetClock();
  before(async () => {
    w = await kommoWorld({ start: { clock, jobs: { backoffBaseMs: 20, backoffMaxMs: 500 } } });
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

  describe('the lead of a known contact: an open one, never a won (142) or lost (143) one', () => {
    const CREATE = { unknownNumber: 'create', pipelineId: '7000042', stageId: '142000042', responsibleUserId: '502' };
    const onLeads = (text: string) => notesWith(text).filter((n) => n.entity_type === 'leads').map((n) => n.entity_id);

    it('prefers an older open lead to a newer won one', async () => {
      const c = w.fake.addContact(w.acc, { name: 'Has Two', phones: ['+15557775001'] });
      const open = w.fake.addLead(w.acc, { name: 'Still open', contactIds: [c.id] });
      w.fake.addLead(w.acc, { name: 'Won last week', contactIds: [c.id], statusId: 142 });
      await inbound('+15557775001', 'back again, two leads');
      await waitFor(() => notesWith('back again, two leads').length >= 2, 10_000, 'notes');
      expect(onLeads('back again, two leads')).to.deep.equal([open.id]);
    });

    it('only closed leads and the settings create leads: a new lead in the chosen pipeline and stage, not the lost one', async () => {
      const c = w.fake.addContact(w.acc, { name: 'Lost Once', phones: ['+15557775002'] });
      const lost = w.fake.addLead(w.acc, { name: 'Lost', contactIds: [c.id], statusId: 143 });
      await inbound('+15557775002', 'a new enquiry');
      await waitFor(() => notesWith('a new enquiry').length >= 2, 10_000, 'notes');
      const [leadId] = onLeads('a new enquiry');
      expect(leadId).to.not.equal(lost.id);
      expect(w.acc.leads.get(leadId!)).to.include({ pipeline_id: 7000042, status_id: 142000042, responsible_user_id: 502 });
      expect(w.acc.leads.get(leadId!)!.contactIds).to.deep.equal([c.id]);
      expect(w.acc.leads.get(leadId!)!.tags).to.deep.equal(['WhatsApp']);
      expect(w.acc.contacts.get(c.id)!.leadIds).to.have.length(2);
    });

    it('a lead won while the chat goes on: after the short cache the next message goes to a new lead, once for a burst', async () => {
      const c = w.fake.addContact(w.acc, { name: 'Will Win', phones: ['+15557775003'] });
      const first = w.fake.addLead(w.acc, { name: 'Deal', contactIds: [c.id] });
      await inbound('+15557775003', 'before the win');
      await waitFor(() => onLeads('before the win').length === 1, 10_000, 'note');
      expect(onLeads('before the win')).to.deep.equal([first.id]);
      first.status_id = 142; // a manager moves it to "Closed - won"
      clock.advance(5 * 60_000);
      await Promise.all([1, 2, 3, 4, 5].map((i) => inbound('+15557775003', `after the win ${i}.`)));
      await waitFor(() => notesWith('after the win ').length >= 10, 10_000, 'notes');
      const leads = new Set(notesWith('after the win ').filter((n) => n.entity_type === 'leads').map((n) => n.entity_id));
      expect([...leads]).to.have.length(1);
      expect(leads.has(first.id)).to.equal(false);
      expect(w.acc.contacts.get(c.id)!.leadIds, 'one new lead for five messages').to.have.length(2);
    });

    it('a message of ours to a client whose leads are all closed opens no lead: the note goes on the contact', async () => {
      const c = w.fake.addContact(w.acc, { name: 'Won Client', phones: ['+15557775005'] });
      w.fake.addLead(w.acc, { name: 'Won', contactIds: [c.id], statusId: 142 });
      const k = directKommo(w);
      await k.adapter.record(await k.portal(), { type: 'contact', id: String(c.id) }, message('thanks for your order', { direction: 'out', phone: '+15557775005' }));
      expect(notesWith('thanks for your order').map((n) => `${n.entity_type}:${n.entity_id}`)).to.deep.equal([`contacts:${c.id}`]);
      expect(w.acc.contacts.get(c.id)!.leadIds).to.have.length(1);
    });

    it('its lead closed and the settings no longer create leads: the note goes on the contact alone', async () => {
      const c = w.fake.addContact(w.acc, { name: 'Closed Later', phones: ['+15557775004'] });
      const lead = w.fake.addLead(w.acc, { name: 'Deal', contactIds: [c.id] });
      await inbound('+15557775004', 'while creating');
      await waitFor(() => notesWith('while creating').length >= 2, 10_000, 'notes');
      // (With "ignore", unknown phones are not looked up at all; this contact is linked already.)
      await setSettings(w, { unknownNumber: 'ignore' });
      try {
        lead.status_id = 143;
        clock.advance(5 * 60_000);
        await inbound('+15557775004', 'no new lead for me');
        await waitFor(() => notesWith('no new lead for me').length >= 1, 10_000, 'note');
        await new Promise((r) => setTimeout(r, 300));
        expect(notesWith('no new lead for me').map((n) => `${n.entity_type}:${n.entity_id}`)).to.deep.equal([`contacts:${c.id}`]);
        expect(w.acc.contacts.get(c.id)!.leadIds).to.have.length(1);
      } finally {
        await setSettings(w, CREATE);
      }
    });
  });
});
