import { expect } from 'chai';
import { startFakeBitrix24, type FakeBitrix24 } from '../fakes/bitrix24';
import { B24_APP } from './world';

// The fake is only as good as its likeness to Bitrix24: where the reference names a quirk our
// code must respect, the fake enforces it, so a regression in our code fails a test.
describe('Fake Bitrix24: behaves as the reference says', function () {
  let fake: FakeBitrix24;
  before(async () => {
    fake = await startFakeBitrix24(B24_APP);
  });
  after(async () => fake?.stop());

  const rest = async (method: string, body: object) => {
    const res = await fetch(`${fake.restUrl}${method}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { result?: unknown; error?: string } };
  };

  it('crm.timeline.comment.add takes lowercase `fields` only (crm 23.100.0 and later)', async () => {
    const p = fake.addPortal('fields');
    p.installed = true;
    const contact = fake.addContact(p, { name: 'C', phones: ['+15550009001'] });
    const { access_token: auth } = fake.issuePair(p, 1, true);
    const comment = { ENTITY_ID: contact.ID, ENTITY_TYPE: 'contact', COMMENT: 'hello' };
    const upper = await rest('crm.timeline.comment.add', { auth, FIELDS: comment });
    expect(upper.status).to.equal(400);
    expect(upper.body.error).to.equal('ERROR_ARGUMENT');
    expect(p.comments).to.have.length(0);
    const lower = await rest('crm.timeline.comment.add', { auth, fields: comment });
    expect(lower.status).to.equal(200);
    expect(p.comments.map((c) => c.COMMENT)).to.deep.equal(['hello']);
  });
});
