import { DeferJobError, type JobHandler } from '../../../domain/jobs';
import type { Clock, Database } from '../../../domain/ports';
import type { Logger } from '../../../logger';
import type { KommoAccount, KommoStore } from './store';

export const JOB_KOMMO_PURGE = 'kommo.purge';
/** Kommo marketplace rule: an uninstalled account's data is kept 30 days (a reinstall keeps it), then erased. */
export const PURGE_AFTER_MS = 30 * 24 * 3600_000;

/**
 * One deletion job per deadline. The key holds the deadline: after disable → reinstall → disable
 * the second job is not dropped as a duplicate of the first (a reinstall also cancels the first).
 */
export function schedulePurge(db: Database, account: KommoAccount): Promise<void> {
  return db.repos.jobs.enqueue({
    kind: JOB_KOMMO_PURGE,
    portalId: account.portalId,
    payload: { accountId: account.accountId },
    runAt: account.deleteAfter!,
    dedupeKey: `${JOB_KOMMO_PURGE}:${account.portalId}:${account.deleteAfter}`,
  });
}

/** At the deadline, erase the portal (cascades to everything it owns) unless it was reinstalled. */
export function purgeJob(store: KommoStore, clock: Clock, log: Logger): JobHandler {
  return {
    run: async (job) => {
      const account = await store.byAccountId(String(job.payload.accountId));
      if (!account || account.disabledAt === null || account.deleteAfter === null) return; // reinstalled meanwhile
      // Early (a job from an earlier deadline, or another server's clock): wait for this one,
      // without spending attempts, rather than fail until the job is buried.
      if (account.deleteAfter > clock.now()) throw new DeferJobError('Kommo account deletion not due yet', account.deleteAfter);
      await store.purgePortal(account.portalId);
      log.info({ portalId: account.portalId, accountId: account.accountId }, 'Kommo account data erased 30 days after uninstall');
    },
  };
}
