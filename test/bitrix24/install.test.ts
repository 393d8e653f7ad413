import { expect } from 'chai';
import { SecretBox } from '../../server/security/secretBox';
import { waitFor } from '../helpers/server';
import { bitrix24World, postEvent, postInstall, startB24, type B24World } from './world';

describe('Bitrix24: install page', function () {
  this.timeout(20_000);
  let w: B24World;
  before(async () => {
    w = await bitrix24World();
  });
  after(async () => w?.close());

  it('stores the portal with sealed tokens, binds the four card tabs and the app events', async () => {
    const row = await w.srv.db.knex('bitrix24_portals').where({ member_id: w.portal.memberId }).first();
    expect(row).to.include({ domain: w.portal.domain, state: 'active' });
    expect(String(row.tokens)).to.match(/^v1:/);
    const t = new SecretBox(w.srv.config.SECRET_KEY, 'bitrix24-tokens').openJson<{ access_token: string }>(String(row.tokens));
    expect(String(row.tokens)).not.to.contain(t.access_token);
    expect(w.portal.placements.map((p) => p.placement).sort()).to.deep.equal(['CRM_COMPANY_DETAIL_TAB', 'CRM_CONTACT_DETAIL_TAB', 'CRM_DEAL_DETAIL_TAB', 'CRM_LEAD_DETAIL_TAB']);
    expect(w.portal.placements[0]!.handler).to.equal(`${w.srv.url}/bitrix24/placement`);
    expect(w.portal.events.map((e) => e.event).sort()).to.deep.equal(['ONAPPINSTALL', 'ONAPPUNINSTALL']);
  });
});
