import crypto from 'node:crypto';

// Secrets at rest (OAuth tokens, logins): AES-256-GCM under a key derived from SECRET_KEY.
// Format `v1:<iv>:<tag>:<ciphertext>` (base64url), so a future key or cipher change can coexist.
// `purpose` separates keys per use: a ciphertext made for one table cannot be replayed into another.
export class SecretBox {
  private readonly key: Buffer;

  constructor(secret: string, purpose = 'secret-box') {
    this.key = crypto.createHmac('sha256', secret).update(`incrm:${purpose}`).digest();
  }

  seal(plain: string): string {
    const iv = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return ['v1', iv.toString('base64url'), c.getAuthTag().toString('base64url'), data.toString('base64url')].join(':');
  }

  /** Throws when the value was tampered with or sealed under another key. */
  open(sealed: string): string {
    const [v, iv, tag, data] = sealed.split(':');
    if (v !== 'v1' || !iv || !tag || data === undefined) throw new Error('secret box: unknown format');
    const d = crypto.createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(data, 'base64url')), d.final()]).toString('utf8');
  }

  sealJson(value: unknown): string {
    return this.seal(JSON.stringify(value));
  }

  openJson<T>(sealed: string): T {
    return JSON.parse(this.open(sealed)) as T;
  }
}
