// Accepting an install (the install page's form POST, ONAPPINSTALL, an admin reconnecting a
// revoked portal): what must be proven before anything is stored.
//
// Every user's frame carries AUTH_ID / REFRESH_ID (and the APPLICATION_TOKEN), and any of them can
// POST them to /bitrix24/install. So a working token pair is not enough: it must be an admin's.
// Otherwise a sales manager could make their own tokens the app's, set an application_token of
// their choice, and then erase the portal with a forged ONAPPUNINSTALL (CLEAN=1).
import crypto from 'node:crypto';
import { AppError } from '../../../domain/errors';
import type { KeyedMutex } from '../../../domain/mutex';
import type { Clock, Database } from '../../../domain/ports';
import type { Logger } from '../../../logger';
import { Bitrix24NotAuthorized, Bitrix24OAuthRefused, Bitrix24Rejected, type Bitrix24Api, type RestTarget } from './client';
import { tokenOwner, type AskWhere, type TokenOwner } from './identity';
import type { B24Portal, B24Tokens, Bitrix24Store } from './store';

export interface InstallDeps {
  api: Bitrix24Api;
  store: Bitrix24Store;
  db: Database;
  clock: Clock;
  log: Logger;
  /** One install at a time per member_id. */
  lock: KeyedMutex;
}

export interface InstallClaim {
  memberId: string;
  domain: string;
  accessToken: string | null;
  refreshToken: string | null;
  serverEndpoint: string | null;
  applicationToken: string | null;
}

export interface InstallOutcome {
  portal: B24Portal;
  created: boolean;
  reinstalled: boolean;
  /**
   * Nothing new: the page of an install we already hold (ONAPPINSTALL came first), recognised by
   * its APPLICATION_TOKEN. Nothing was stored, and the event's handler has the binding in hand.
   */
  known: boolean;
}

/** Constant-time string comparison. */
export function safeEqual(a: string, b: string): boolean {
  const x = crypto.createHash('sha256').update(a).digest();
  const y = crypto.createHash('sha256').update(b).digest();
  // Hashing first makes the comparison length-independent as well as constant-time.
  return crypto.timingSafeEqual(x, y) && a.length === b.length;
}

const forbidden = (m: string) => new AppError(403, 'forbidden', m);

/** The token's owner, or 403 when Bitrix24 refuses the token or the owner is not an admin. */
async function adminOwner(api: Bitrix24Api, where: AskWhere, accessToken: string): Promise<TokenOwner> {
  let owner: TokenOwner;
  try {
    owner = await tokenOwner(api, where, accessToken);
  } catch (err) {
    if (err instanceof Bitrix24NotAuthorized || err instanceof Bitrix24Rejected) throw forbidden(`install: the portal refused the access token (${err.message})`);
    throw err; // unavailable: the page says try again
  }
  if (!owner.admin) throw forbidden(`install: only a Bitrix24 administrator can install InCRM (user ${owner.userId} is not one)`);
  return owner;
}

/** What an install proved: the portal's endpoints, maybe a fresh token pair, and the admin who installed. */
interface Proof {
  clientEndpoint: string;
  serverEndpoint: string;
  tokens: B24Tokens | null;
  owner: TokenOwner;
}

/**
 * The refresh token is exchanged at the OAuth server, whose answer names the portal (member_id,
 * domain, client_endpoint): a forged form cannot take over a member_id or point us at another host.
 * Null when the refresh token was refused (already spent by the other delivery of this install).
 */
async function proveByRefresh(d: InstallDeps, c: InstallClaim): Promise<Proof | null> {
  if (!c.refreshToken) return null;
  let fresh;
  try {
    // Abortable: nothing stored hangs on this pair; a lost answer costs the admin one more try.
    fresh = await d.api.oauthRefresh(c.serverEndpoint, c.refreshToken, { abortable: true });
  } catch (err) {
    if (!(err instanceof Bitrix24OAuthRefused)) throw err;
    d.log.info({ memberId: c.memberId, code: err.code }, 'install proof: refresh token refused, checking the access token instead');
    return null;
  }
  if (fresh.member_id !== c.memberId) throw forbidden('member_id: the tokens belong to another portal');
  if (fresh.domain && fresh.domain.toLowerCase() !== c.domain) throw forbidden('DOMAIN: the tokens belong to another portal');
  const serverEndpoint = d.api.serverEndpoint(fresh.server_endpoint ?? c.serverEndpoint);
  const target: RestTarget = { memberId: c.memberId, domain: c.domain, clientEndpoint: fresh.client_endpoint, serverEndpoint };
  // The portal may not be stored yet (or is uninstalled): ask the endpoint the OAuth server named.
  const owner = await adminOwner(d.api, { target }, fresh.access_token);
  return { clientEndpoint: fresh.client_endpoint, serverEndpoint, tokens: d.api.tokensFrom(fresh), owner };
}

/**
 * ONAPPINSTALL came first and its handler refreshed this very pair: the refresh token is spent
 * and, per the older docs, the page's access token with it (reference §4.3). The page's
 * APPLICATION_TOKEN matching the one the event brought shows it is the same install; the page only
 * has to call installFinish. It proves nothing more (every user's frame carries that token), so
 * nothing is stored on its strength.
 */
function isKnownInstall(c: InstallClaim, existing: B24Portal | null): existing is B24Portal {
  return Boolean(
    existing && existing.state === 'active' && existing.domain === c.domain && existing.applicationToken && c.applicationToken && safeEqual(c.applicationToken, existing.applicationToken),
  );
}

/** The refresh token was spent: the access token must work on the portal we already know, and be an admin's. */
async function proveByAccessToken(d: InstallDeps, c: InstallClaim, existing: B24Portal | null): Promise<Proof> {
  if (!existing || existing.state === 'uninstalled' || !c.accessToken) throw forbidden('install: Bitrix24 did not confirm these tokens');
  if (existing.domain !== c.domain) throw forbidden('DOMAIN: not the portal of this member_id');
  const owner = await adminOwner(d.api, { portalId: existing.portalId }, c.accessToken);
  return { clientEndpoint: existing.clientEndpoint, serverEndpoint: existing.serverEndpoint, tokens: null, owner };
}

/**
 * Stores an install after proving it came from Bitrix24 and from a portal administrator: only then
 * may its tokens become the app's, its application_token replace ours, and its user be recorded as
 * the installer. One at a time per member_id.
 */
export async function acceptInstall(d: InstallDeps, c: InstallClaim): Promise<InstallOutcome> {
  return d.lock.run(c.memberId, async () => {
    const existing = await d.store.byMember(c.memberId);
    const fresh = await proveByRefresh(d, c);
    if (!fresh && isKnownInstall(c, existing)) {
      d.log.info({ portalId: existing.portalId, memberId: c.memberId }, 'install page of an install already accepted from ONAPPINSTALL');
      return { portal: existing, created: false, reinstalled: false, known: true };
    }
    const proof = fresh ?? (await proveByAccessToken(d, c, existing));
    const r = await d.store.install({
      memberId: c.memberId,
      domain: c.domain,
      clientEndpoint: proof.clientEndpoint,
      serverEndpoint: proof.serverEndpoint,
      tokens: proof.tokens,
      applicationToken: c.applicationToken,
      installerUserId: proof.owner.userId,
      now: d.clock.now(),
    });
    await d.store.seeUser(r.portalId, proof.owner.userId, proof.owner.name, true, d.clock.now());
    await d.db.repos.audit.append({
      portalId: r.portalId,
      actor: 'bitrix24',
      action: r.created ? 'bitrix24.installed' : r.reinstalled ? 'bitrix24.reinstalled' : 'bitrix24.install_updated',
      details: { memberId: c.memberId, domain: c.domain, by: proof.owner.userId },
    });
    const portal = (await d.store.byMember(c.memberId))!;
    return { portal, created: r.created, reinstalled: r.reinstalled, known: false };
  });
}
