import { expect } from 'chai';
import { waitFor } from '../helpers/server';
import { OffsetClock } from '../licence/world';
import { bitrix24World, connectNumber, type B24World } from './world';

describe('Bitrix24: messages follow the contact to its currently open deal', function () {
  this.timeout(60_000);
  const clock = new OffsetClock();
  let w: B24World;
  let num: Awaited<ReturnType<typeof connectNumber>>;
  before(async () => {
    w = await bitrix24World({ start: { clock } });
    num = await connectNumber(w);
  });
  after(async () => w?.close());

  const from = '+15557772001';
  const say = async (text: string, expected: number) => {
    await num.anon.post('/simulator/inbound', { to: num.phone, from, name: 'Lena', text });
    await waitFor(() => w.portal.comments.filter((c) => c.COMMENT.includes(text)).length >= expected, 10_000, `comments of "${text}"`);
    await new Promise((r) => setTimeout(r, 200)); // none more on the way
    return w.portal.comments.filter((c) => c.COMMENT.includes(text)).map((c) => `${c.ENTITY_TYPE}:${c.ENTITY_ID}`).sort();
  };

  it('leaves a deal closed after we created it, and finds the deal a manager opened next', async () => {
    expect(await say('first message', 2)).to.have.length(2);
    const contact = [...w.portal.contacts.values()].find((c) => (c.PHONE ?? []).some((p) => p.VALUE === from))!;
    const ours = [...w.portal.deals.values()].find((d) => d.CONTACT_ID === contact.ID)!;
    expect(await say('second message', 2)).to.deep.equal([`contact:${contact.ID}`, `deal:${ours.ID}`]);

    // The manager wins the deal. Once what we knew is a minute old, it gets no more messages.
    ours.CLOSED = 'Y';
    ours.STAGE_ID = 'WON';
    clock.advance(61_000);
    expect(await say('after the deal was won', 1)).to.deep.equal([`contact:${contact.ID}`]);

    // A new deal for the same client: the next messages (and their alerts' links) go there.
    const next = w.fake.addDeal(w.portal, { title: 'Second order', contactIds: [contact.ID] });
    clock.advance(61_000);
    expect(await say('about the second order', 2)).to.deep.equal([`contact:${contact.ID}`, `deal:${next.ID}`]);
    const alert = await waitFor(() => w.portal.notifications.find((n) => n.MESSAGE.includes('about the second order')), 10_000, 'alert');
    expect(alert.MESSAGE).to.contain(`/crm/deal/details/${next.ID}/`);
    expect(w.portal.comments.filter((c) => c.ENTITY_TYPE === 'deal' && c.ENTITY_ID === ours.ID && /won|second order/.test(c.COMMENT))).to.have.length(0);
  });
});
