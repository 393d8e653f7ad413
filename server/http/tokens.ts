import crypto from 'node:crypto';
import type { Principal } from '../domain/types';

// The core's bearer token: `v1.<payload>.<hmac>`, payload = base64url JSON {p, u, a, exp}.
// Stateless (no table to look up per request) and bound to one portal; the CRM issues mint it
// from Kommo's and Bitrix24's own proofs.
export class TokenService {
  /**
   * Tokens already verified, with their expiry. A widget sends the same token with every request
   * for its lifetime, and the HMAC and JSON decoding were ~3% of the server's CPU serving history
   * pages (V8 profile, 2026-12-04). Bounded: emptied when full, then refilled by the next requests.
   */
  private readonly verified = new Map<string, { principal: Principal; exp: number }>();
  private static readonly REMEMBERED = 10_000;

  constructor(private readonly secret: string) {}

  private sign(payload: string): string {
    return crypto.createHmac('sha256', this.secret).update(`token:${payload}`).digest('base64url');
  }

  issue(p: Principal, ttlMs: number, now = Date.now()): string {
    const payload = Buffer.from(JSON.stringify({ p: p.portalId, u: p.userId, a: p.admin, exp: now + ttlMs })).toString('base64url');
    return `v1.${payload}.${this.sign(payload)}`;
  }

  verify(token: string, now = Date.now()): Principal | null {
    const known = this.verified.get(token);
    if (known) {
      if (known.exp >= now) return known.principal;
      this.verified.delete(token);
      return null;
    }
    const checked = this.check(token);
    if (!checked || checked.exp < now) return null;
    if (this.verified.size >= TokenService.REMEMBERED) this.verified.clear();
    this.verified.set(token, checked);
    return checked.principal;
  }

  /** Signature and payload shape; expiry is the caller's. */
  private check(token: string): { principal: Principal; exp: number } | null {
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== 'v1') return null;
    const [, payload, sig] = parts as [string, string, string];
    const want = Buffer.from(this.sign(payload));
    const got = Buffer.from(sig);
    if (want.length !== got.length || !crypto.timingSafeEqual(want, got)) return null;
    try {
      const d = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { p: unknown; u: unknown; a: unknown; exp: unknown };
      if (typeof d.p !== 'number' || typeof d.u !== 'string' || typeof d.a !== 'boolean' || typeof d.exp !== 'number') return null;
      return { principal: Object.freeze({ portalId: d.p, userId: d.u, admin: d.a }), exp: d.exp };
    } catch {
      return null;
    }
  }
}
