import { expect } from 'chai';
import type { Portal } from '../../server/domain/types';
import { directKommo, type DirectKommo } from './direct';
import { kommoWorld, type KommoWorld } from './world';

// New-message alerts come with an empty list when the portal chose no recipients; the adapter
// then picks: the record's responsible user, else the settings' responsible user, else the
// account's admins. An alert about no record at all (a number dropped) goes to the admins.
describe('Kommo: who gets an alert nobody was chosen for', function () {
  this.timeout(30_000);
  let w: KommoWorld;
  let k: DirectKommo;
  let portal: Portal;
  before(async () => {
    w = await kommoWorld();
    k = directKommo(w);
    portal = await k.portal();
  });
  after(async () => w?.close());

  let n = 0;
  /** Sends one alert and returns who got it. */
  async function recipients(settings: Portal['settings'], entity?: { type: string; id: string } | null): Promise<string[]> {
    const text = `alert ${++n}`;
    await (entity === undefined ? k.adapter.alert({ ...portal, settings }, [], text, null) : k.adapter.alert({ ...portal, settings }, [], text, null, entity));
    const rows = await w.srv.db.knex('kommo_alerts').where({ portal_id: w.portalId, text }).select('user_id');
    return rows.map((r) => String(r.user_id)).sort();
  }

  it("a message on a known record: that record's responsible user", async () => {
    const c = w.fake.addContact(w.acc, { name: 'Owned', phones: [], responsible: 502 });
    expect(await recipients({ responsibleUserId: '777' }, { type: 'contact', id: String(c.id) })).to.deep.equal(['502']);
  });

  it("a message whose record is not known (or is gone): the settings' responsible user", async () => {
    expect(await recipients({ responsibleUserId: '502' }, null)).to.deep.equal(['502']);
    expect(await recipients({ responsibleUserId: '502' }, { type: 'contact', id: '99999999' })).to.deep.equal(['502']);
  });

  it('nobody responsible anywhere: the admins', async () => {
    expect(await recipients({}, null)).to.deep.equal(['501']);
  });

  it('an alert about no record (a number dropped): the admins, not the responsible user', async () => {
    expect(await recipients({ responsibleUserId: '502' })).to.deep.equal(['501']);
  });

  it('chosen recipients are used as they are', async () => {
    await k.adapter.alert({ ...portal, settings: { responsibleUserId: '502' } }, ['777', '778'], 'chosen', null, null);
    const rows = await w.srv.db.knex('kommo_alerts').where({ portal_id: w.portalId, text: 'chosen' }).select('user_id');
    expect(rows.map((r) => String(r.user_id)).sort()).to.deep.equal(['777', '778']);
  });
});
