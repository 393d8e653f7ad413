import crypto from 'node:crypto';
import { z } from 'zod';

// Kommo's widget proof: `self.$authorizedAjax` sends `X-Auth-Token`, an HS256 JWT signed with the
// integration's client secret. Verified here by hand (it is 20 lines; no JWT package needed).

const claims = z
  .object({
    iss: z.string().min(1),
    aud: z.string().min(1),
    jti: z.string().optional(),
    iat: z.number().optional(),
    nbf: z.number().optional(),
    exp: z.number(),
    account_id: z.union([z.number().int(), z.string().regex(/^\d+$/)]).transform(String),
    user_id: z.union([z.number().int(), z.string().regex(/^\d+$/)]).transform(String),
    client_uuid: z.string().optional(),
    subdomain: z.string().optional(),
    is_admin: z.boolean().optional(),
  })
  .loose();

export type KommoClaims = z.infer<typeof claims>;

export class JwtRejected extends Error {}

const b64json = (s: string): unknown => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));

/** Checks signature (HS256 only), audience, client, time window; returns the claims or throws JwtRejected. */
export function verifyKommoJwt(
  token: string,
  opts: { secret: string; audience: string; clientId: string; nowMs: number; leewaySec?: number },
): KommoClaims {
  const parts = token.split('.');
  if (parts.length !== 3) throw new JwtRejected('X-Auth-Token: not a JWT');
  const [h, p, sig] = parts as [string, string, string];
  let header: unknown;
  let payload: unknown;
  try {
    header = b64json(h);
    payload = b64json(p);
  } catch {
    throw new JwtRejected('X-Auth-Token: not a JWT');
  }
  // Only HS256: refusing `none` and RS/ES keeps an attacker from choosing how we verify.
  if (!header || typeof header !== 'object' || (header as { alg?: unknown }).alg !== 'HS256') throw new JwtRejected('X-Auth-Token: algorithm must be HS256');
  const want = crypto.createHmac('sha256', opts.secret).update(`${h}.${p}`).digest();
  const got = Buffer.from(sig, 'base64url');
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) throw new JwtRejected('X-Auth-Token: bad signature');
  const parsed = claims.safeParse(payload);
  if (!parsed.success) throw new JwtRejected(`X-Auth-Token: claim ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
  const c = parsed.data;
  const now = opts.nowMs / 1000;
  const leeway = opts.leewaySec ?? 30;
  if (c.exp < now - leeway) throw new JwtRejected('X-Auth-Token: expired');
  if (c.nbf !== undefined && c.nbf > now + leeway) throw new JwtRejected('X-Auth-Token: not valid yet');
  if (c.aud.replace(/\/+$/, '') !== opts.audience) throw new JwtRejected('X-Auth-Token: wrong audience');
  if (c.client_uuid !== undefined && c.client_uuid !== opts.clientId) throw new JwtRejected('X-Auth-Token: issued for another integration');
  return c;
}

/** `scheme://host[:port]` of the redirect URI: what Kommo puts in `aud`. */
export function audienceOf(redirectUri: string): string {
  const u = new URL(redirectUri);
  return `${u.protocol}//${u.host}`;
}

/** Signs claims the way Kommo does (the fake Kommo and tests use it). */
export function signKommoJwt(payload: Record<string, unknown>, secret: string): string {
  const h = Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'HS256' })).toString('base64url');
  const p = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const s = crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${s}`;
}
