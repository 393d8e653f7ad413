import type { JobHandler } from '../../../domain/jobs';
import type { Clock, Database } from '../../../domain/ports';
import type { SessionManager } from '../../../domain/sessions';
import type { Logger } from '../../../logger';
import { KommoNotAuthorized, KommoUnavailable, type KommoApi } from './client';
import { PURGE_AFTER_MS, schedulePurge } from './purge';
import type { KommoAccount, KommoStore } from './store';

export const JOB_KOMMO_DISABLE_CHECK = 'kommo.disable-check';
/** When a disable hook Kommo's answers did not confirm is looked at again (Kommo may revoke the tokens just after it calls). */
export const RECHECK_AFTER_MS = [60_000, 10 * 60_000, 60 * 60_000];
/** How long the hook itself waits for Kommo's answer before leaving the question to the re-checks. */
const CHECK_WITHIN_MS = 3000;

export interface UninstallDeps {
  api: KommoApi;
  store: KommoStore;
  db: Database;
  sessions: SessionManager;
  clock: Clock;
  log: Logger;
}

/**
 * What Kommo says of our tokens for the account, by one cheap authenticated call (a refresh
 * included when due): `refused` — uninstalled (after a disable Kommo answers 401 to everything);
 * `accepted` — still installed; `unreachable` — no answer worth the name; `unclear` — refused for
 * another reason (an unpaid account, say).
 */
export async function tokenVerdict(api: KommoApi, portalId: number): Promise<'refused' | 'accepted' | 'unreachable' | 'unclear'> {
  try {
    await api.call(portalId, 'GET', '/api/v4/account');
    return 'accepted';
  } catch (err) {
    if (err instanceof KommoNotAuthorized) return 'refused';
    if (err instanceof KommoUnavailable) return 'unreachable';
    return 'unclear';
  }
}

/**
 * Acts on an uninstall Kommo confirmed: tokens dropped, WhatsApp sessions closed, deletion
 * scheduled. Idempotent, and a repeated hook keeps the first deadline.
 */
export async function disableAccount(d: UninstallDeps, accountId: string): Promise<KommoAccount> {
  const now = d.clock.now();
  const { account, changed } = (await d.store.disable(accountId, now, now + PURGE_AFTER_MS))!;
  // The account's WhatsApp sessions are closed (unlinked): nobody in Kommo can use them now.
  const admin = { portalId: account.portalId, userId: 'kommo:uninstall', admin: true };
  for (const n of await d.db.repos.numbers.list(account.portalId)) {
    if (n.state !== 'logged_out') await d.sessions.logout(admin, n.id).catch((err) => d.log.warn({ err, numberId: n.id }, 'logout on uninstall failed'));
  }
  await schedulePurge(d.db, account);
  if (changed) {
    await d.db.repos.audit.append({ portalId: account.portalId, actor: 'kommo', action: 'kommo.disabled', details: { accountId: account.accountId, deleteAfter: account.deleteAfter } });
    d.log.info({ portalId: account.portalId, accountId: account.accountId }, 'Kommo integration disabled; data scheduled for deletion');
  }
  return account;
}

/**
 * A signed disable hook for an installed account. The signature is the same for every hook of
 * the account, so it proves only that Kommo once sent one: the hook is acted on when Kommo also
 * refuses our tokens. Otherwise (a replay after a reinstall, a hook ahead of the revocation,
 * Kommo unreachable) nothing changes now and the question is asked again a few times later.
 */
export async function onDisableHook(d: UninstallDeps, account: KommoAccount): Promise<{ confirmed: true; account: KommoAccount } | { confirmed: false; why: string }> {
  if (account.disabledAt !== null) return { confirmed: true, account: await disableAccount(d, account.accountId) };
  const verdict = await Promise.race([tokenVerdict(d.api, account.portalId), new Promise<'unreachable'>((r) => setTimeout(() => r('unreachable'), CHECK_WITHIN_MS).unref())]);
  if (verdict === 'refused') return { confirmed: true, account: await disableAccount(d, account.accountId) };
  const now = d.clock.now();
  await d.db.repos.jobs.enqueue(
    RECHECK_AFTER_MS.map((ms, i) => ({ kind: JOB_KOMMO_DISABLE_CHECK, portalId: account.portalId, payload: { accountId: account.accountId }, runAt: now + ms, dedupeKey: `${JOB_KOMMO_DISABLE_CHECK}:${account.accountId}:${i}` })),
  );
  await d.db.repos.audit.append({ portalId: account.portalId, actor: 'kommo', action: 'kommo.disable_unconfirmed', details: { accountId: account.accountId, verdict } });
  d.log.warn({ portalId: account.portalId, accountId: account.accountId, verdict }, 'Kommo disable hook not confirmed by Kommo; nothing changed, checking again later');
  return { confirmed: false, why: verdict === 'accepted' ? 'Kommo still accepts this account’s tokens' : 'Kommo could not confirm the uninstall now' };
}

/** A later look at an unconfirmed disable hook: acts once Kommo refuses our tokens. */
export function disableCheckJob(d: UninstallDeps): JobHandler {
  return {
    run: async (job) => {
      const account = await d.store.byAccountId(String(job.payload.accountId));
      if (!account || account.disabledAt !== null) return;
      const verdict = await tokenVerdict(d.api, account.portalId);
      if (verdict === 'refused') await disableAccount(d, account.accountId);
      else if (verdict === 'unreachable') throw new KommoUnavailable('disable check: Kommo unreachable', null); // retried with backoff
    },
  };
}
