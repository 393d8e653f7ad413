import { expect } from 'chai';
import { TokenService } from '../../server/http/tokens';

describe('bearer tokens', () => {
  const tokens = new TokenService('test-secret');
  const ann = { portalId: 7, userId: 'u-ann', admin: false };

  it('verifies what it issued, again and again, and not once it has expired', () => {
    const t0 = 1_000_000;
    const token = tokens.issue(ann, 60_000, t0);
    expect(tokens.verify(token, t0 + 1)).to.deep.equal(ann);
    // The second time comes from what was remembered: the expiry still applies.
    expect(tokens.verify(token, t0 + 59_000)).to.deep.equal(ann);
    expect(tokens.verify(token, t0 + 60_001)).to.equal(null);
    expect(tokens.verify(token, t0 + 1), 'forgotten once expired, and checked afresh').to.deep.equal(ann);
  });

  it('refuses a changed payload, a changed signature and another secret', () => {
    const token = tokens.issue(ann, 60_000);
    const [v, payload, sig] = token.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ p: 8, u: 'u-ann', a: true, exp: Date.now() + 60_000 })).toString('base64url');
    expect(tokens.verify(`${v}.${forged}.${sig}`)).to.equal(null);
    expect(tokens.verify(`${v}.${payload}.${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`)).to.equal(null);
    expect(tokens.verify(`v2.${payload}.${sig}`)).to.equal(null);
    expect(new TokenService('other-secret').verify(token)).to.equal(null);
    expect(tokens.verify(token)).to.deep.equal(ann);
  });

  it('keeps verifying when more tokens are in use than it remembers', () => {
    const many = Array.from({ length: 10_050 }, (_, i) => tokens.issue({ portalId: 1, userId: `u-${i}`, admin: false }, 60_000));
    for (const t of many) tokens.verify(t);
    expect(tokens.verify(many[0]!)).to.deep.equal({ portalId: 1, userId: 'u-0', admin: false });
    expect(tokens.verify(many[10_049]!)).to.deep.equal({ portalId: 1, userId: 'u-10049', admin: false });
  });

  it('hands out a principal nobody can change for the next request', () => {
    const token = tokens.issue(ann, 60_000);
    const p = tokens.verify(token)!;
    expect(() => Object.assign(p, { admin: true })).to.throw(TypeError);
    expect(tokens.verify(token)!.admin).to.equal(false);
  });
});
