// Who a user's access token belongs to, read from Bitrix24 itself: a frame's or an install's
// AUTH_ID is a claim until the portal answers `user.current` and `user.admin` with it.
import { z } from 'zod';
import { Bitrix24Rejected, type Bitrix24Api, type RestTarget } from './client';

export interface TokenOwner {
  userId: string;
  name: string | null;
  /** Portal administrator (`user.admin`): only admins install apps and bind tabs and events. */
  admin: boolean;
}

const userCurrent = z
  .object({ ID: z.union([z.string().regex(/^\d+$/), z.number()]).transform(String), NAME: z.string().nullable().optional(), LAST_NAME: z.string().nullable().optional() })
  .loose();
// Bitrix24 answers `true`/`false` (some portals "true" or "Y"). Anything else counts as not an
// admin: the flag grants rights, so an odd answer fails closed instead of breaking every frame.
const userAdmin = z.unknown().transform((v) => v === true || v === 'true' || v === 'Y');

/**
 * Where to ask: a stored portal (its queue, so the portal's rate limit holds) or, for a portal we
 * do not store yet (a first install, a reinstall after uninstall), the endpoint the OAuth server
 * named for the token — one request outside the queues.
 */
export type AskWhere = { portalId: number } | { target: RestTarget };

/** Throws the client's errors as they are (refused token → Bitrix24NotAuthorized / Bitrix24Rejected). */
export async function tokenOwner(api: Bitrix24Api, where: AskWhere, accessToken: string): Promise<TokenOwner> {
  const [user, admin] =
    'portalId' in where
      ? // Issued together: the queue sends them as one batch with the user's own token.
        await Promise.all([api.call(where.portalId, 'user.current', {}, { auth: accessToken }), api.call(where.portalId, 'user.admin', {}, { auth: accessToken })])
      : await api.callDirect(where.target, accessToken, [{ method: 'user.current' }, { method: 'user.admin' }]);
  const u = userCurrent.safeParse(user);
  if (!u.success) throw new Bitrix24Rejected('user.current: unexpected Bitrix24 payload', 'BAD_PAYLOAD', 502);
  return { userId: u.data.ID, name: [u.data.NAME, u.data.LAST_NAME].filter(Boolean).join(' ') || null, admin: userAdmin.parse(admin) };
}
