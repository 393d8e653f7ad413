import { expect } from 'chai';
import type { PortalSettings } from '../../server/domain/types';
import { waitFor } from '../helpers/server';
import { bitrix24World, connectNumber, type B24World } from './world';

describe('Bitrix24 alerts: who is told about a new message and about a dropped number', function () {
  this.timeout(60_000);
  let w: B24World;
  let num: Awaited<ReturnType<typeof connectNumber>>;
  // Olga (9) owns the client's contact; Sam (7) is the settings' responsible user; Ana (1) is the admin.
  const client = '+15557773001';
  before(async () => {
    w = await bitrix24World();
    w.portal.users.push({ id: 9, name: 'Olga', lastName: 'Owner', admin: false });
    w.fake.addContact(w.portal, { name: 'Client of Olga', phones: [client], assigned: 9 });
    num = await connectNumber(w);
  });
  after(async () => w?.close());

  const settings = async (s: PortalSettings) => {
    await w.srv.db.knex('portals').where({ id: w.portalId }).update({ settings: JSON.stringify({ unknownNumber: 'create', ...s }) });
    await new Promise((r) => setTimeout(r, 2100)); // the jobs' copy of the portal row lives 2 s
  };
  /** The users a message's alert reached (after its alert job ran, and a moment for strays). */
  const alerted = async (text: string, from = client) => {
    await num.anon.post('/simulator/inbound', { to: num.phone, from, name: 'Client', text });
    await waitFor(() => w.portal.notifications.some((n) => n.MESSAGE.includes(text)), 10_000, `alert for "${text}"`);
    await new Promise((r) => setTimeout(r, 300));
    return w.portal.notifications.filter((n) => n.MESSAGE.includes(text)).map((n) => n.USER_ID).sort();
  };

  it("goes to the record's responsible user, not the settings' one, when nobody was chosen (unset or an empty list)", async () => {
    await settings({ responsibleUserId: '7' });
    expect(await alerted('first hello')).to.deep.equal(['9']);
    await settings({ responsibleUserId: '7', alertUserIds: [] });
    expect(await alerted('second hello')).to.deep.equal(['9']);
  });

  it('goes to the chosen users only when a list is chosen', async () => {
    await settings({ responsibleUserId: '7', alertUserIds: ['7'] });
    expect(await alerted('third hello')).to.deep.equal(['7']);
  });

  it("falls back to the settings' responsible user for a message with no CRM record", async () => {
    await settings({ unknownNumber: 'ignore', responsibleUserId: '7' });
    expect(await alerted('from a stranger', '+15557773999')).to.deep.equal(['7']);
  });

  it('a dropped number alerts the admins as well as the chosen users', async () => {
    await settings({ responsibleUserId: '7', alertUserIds: ['7'] });
    await num.anon.post(`/simulator/numbers/${num.numberId}/unlink`);
    const dropped = () => w.portal.notifications.filter((n) => n.MESSAGE.includes(`${num.phone} was logged out`)).map((n) => n.USER_ID).sort();
    await waitFor(() => dropped().length >= 2, 10_000, 'number-drop alerts');
    await new Promise((r) => setTimeout(r, 300));
    expect(dropped()).to.deep.equal(['1', '7']);
  });
});
