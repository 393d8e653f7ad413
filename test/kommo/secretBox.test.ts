import { expect } from 'chai';
import { SecretBox } from '../../server/security/secretBox';

describe('SecretBox (secrets at rest)', () => {
  it('round-trips, never shows the plaintext, and refuses tampering, another key or another purpose', () => {
    const box = new SecretBox('k'.repeat(40), 'kommo-tokens');
    const sealed = box.sealJson({ refresh_token: 'rt-secret' });
    expect(sealed).to.match(/^v1:/).and.not.contain('rt-secret');
    expect(box.openJson(sealed)).to.deep.equal({ refresh_token: 'rt-secret' });
    expect(box.seal('x')).to.not.equal(box.seal('x')); // fresh IV each time
    const parts = sealed.split(':');
    const flipped = [...parts.slice(0, 3), (parts[3]![0] === 'A' ? 'B' : 'A') + parts[3]!.slice(1)].join(':');
    expect(() => box.open(flipped)).to.throw();
    expect(() => new SecretBox('j'.repeat(40), 'kommo-tokens').open(sealed)).to.throw();
    expect(() => new SecretBox('k'.repeat(40), 'other').open(sealed)).to.throw();
  });
});
