import crypto from 'node:crypto';
import type { Principal } from '../domain/types';

// The core's bearer token: `v1.<payload>.<hmac>`, payload = base64url JSON {p, u, a, exp}.
// Stateless (no table to look up per request) and bound to one portal; the CRM issues mint it
// from Kommo's and Bitrix24's own proofs.
export class TokenService {
  constructor(private readonly secret: string) {}

  private sign(payload: string): string {
    return crypto.createHmac('sha256', this.secret).update(`token:${payload}`).digest('base64url');
  }

  issue(p: Principal, ttlMs: number, now = Date.now()): string {
    const payload = Buffer.from(JSON.stringify({ p: p.portalId, u: p.userId, a: p.admin, exp: now + ttlMs })).toString('base64url');
    return `v1.${payload}.${this.sign(payload)}`;
  }

  verify(token: string, now = Date.now()): Principal | null {
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== 'v1') return null;
    const [, payload, sig] = parts as [string, string, string];
    const want = Buffer.from(this.sign(payload));
    const got = Buffer.from(sig);
    if (want.length !== got.length || !crypto.timingSafeEqual(want, got)) return null;
    try {
      const d = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { p: unknown; u: unknown; a: unknown; exp: unknown };
      if (typeof d.p !== 'number' || typeof d.u !== 'string' || typeof d.a !== 'boolean' || typeof d.exp !== 'number') return null;
      if (d.exp < now) return null;
      return { portalId: d.p, userId: d.u, admin: d.a };
    } catch {
      return null;
    }
  }
}
