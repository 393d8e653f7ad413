// Uninstall and the erasure that follows it.
//
// ONAPPUNINSTALL carries no tokens; its only proof is the application_token (reference §2.2).
// But Bitrix24 also posts that token into every user's frame (APPLICATION_TOKEN, §3.1), so any
// portal user can forge the event, with CLEAN=1 too. One thing a forger cannot fake: by the time
// Bitrix24 sends a real ONAPPUNINSTALL it has revoked the app's access. So the event is acted on
// only once our own stored tokens stop working. That is checked in a durable job: Bitrix24 being
// unreachable delays an uninstall, never drops it.
import { DeferJobError, type JobHandler } from '../../../domain/jobs';
import type { Clock, Database, JobRepo } from '../../../domain/ports';
import type { SessionManager } from '../../../domain/sessions';
import type { Logger } from '../../../logger';
import { Bitrix24NotAuthorized, type Bitrix24Api } from './client';
import type { B24Portal, Bitrix24Store } from './store';

export const JOB_BITRIX24_UNINSTALL = 'bitrix24.uninstall';
export const JOB_BITRIX24_PURGE = 'bitrix24.purge';
/** Marketplace rule: an uninstalled portal's data is kept 30 days (a reinstall keeps it), then erased. */
export const PURGE_AFTER_MS = 30 * 24 * 3600_000;

export interface UninstallDeps {
  api: Bitrix24Api | null;
  store: Bitrix24Store;
  db: Database;
  sessions: SessionManager;
  clock: Clock;
  log: Logger;
}

/** Called by the events route once the event's application_token matched. */
export function queueUninstall(jobs: Pick<JobRepo, 'enqueue'>, portal: B24Portal, clean: boolean): Promise<void> {
  return jobs.enqueue({ kind: JOB_BITRIX24_UNINSTALL, portalId: portal.portalId, payload: { memberId: portal.memberId, clean }, dedupeKey: `bitrix24.uninstall:${portal.portalId}:${clean ? 1 : 0}` });
}

/**
 * Whether Bitrix24 has withdrawn the app's access: our own token pair is refused (after a refresh,
 * which the OAuth server refuses too for an uninstalled app). Still answering `app.info` with
 * INSTALLED means the app is installed and the event was not Bitrix24's. Bitrix24 unreachable:
 * throws (the job retries).
 */
async function accessEnded(api: Bitrix24Api, portal: B24Portal): Promise<boolean> {
  let info: unknown;
  try {
    info = await api.call(portal.portalId, 'app.info', {});
  } catch (err) {
    if (err instanceof Bitrix24NotAuthorized) return true;
    throw err;
  }
  const installed = (info as { INSTALLED?: unknown } | null)?.INSTALLED;
  return !(installed === true || installed === 'Y' || installed === 'true' || installed === 1);
}

export function uninstallJob(d: UninstallDeps): JobHandler {
  return {
    run: async (job) => {
      const memberId = String(job.payload.memberId);
      const clean = job.payload.clean === true;
      const p = await d.store.byMember(memberId);
      if (!p || p.state === 'uninstalled') return;
      // Without a client (not configured) or tokens (revoked) there is nothing to ask: the
      // application_token is all the proof there is.
      if (d.api && p.tokens && !(await accessEnded(d.api, p))) {
        d.log.warn({ portalId: p.portalId, memberId, clean }, 'ONAPPUNINSTALL refused: the app still has access to the portal (forged with a frame APPLICATION_TOKEN?)');
        await d.db.repos.audit.append({ portalId: p.portalId, actor: 'bitrix24', action: 'bitrix24.uninstall_refused', details: { memberId, clean } });
        return;
      }
      await uninstall(d, memberId, clean);
    },
  };
}

async function uninstall(d: UninstallDeps, member: string, clean: boolean): Promise<void> {
  const now = d.clock.now();
  const p = await d.store.uninstall(member, now, clean ? now : now + PURGE_AFTER_MS);
  if (!p) return;
  // Nobody in Bitrix24 can use the portal's WhatsApp numbers now: unlink them.
  const admin = { portalId: p.portalId, userId: 'bitrix24:uninstall', admin: true };
  for (const n of await d.db.repos.numbers.list(p.portalId)) {
    if (n.state !== 'logged_out') await d.sessions.logout(admin, n.id).catch((err) => d.log.warn({ err, numberId: n.id }, 'logout on uninstall failed'));
  }
  // Audited before the purge is queued: with CLEAN=1 it runs at once, and the erasure comes last.
  await d.db.repos.audit.append({ portalId: p.portalId, actor: 'bitrix24', action: 'bitrix24.uninstalled', details: { memberId: member, clean, deleteAfter: p.deleteAfter } });
  await d.db.repos.jobs.enqueue({ kind: JOB_BITRIX24_PURGE, portalId: p.portalId, payload: { memberId: member }, runAt: p.deleteAfter!, dedupeKey: `bitrix24.purge:${p.portalId}:${p.deleteAfter}` });
  d.log.info({ portalId: p.portalId, memberId: member, clean }, 'Bitrix24 app uninstalled; data scheduled for deletion');
}

/** After an uninstall (30 days, or at once with CLEAN=1), erase the portal unless it was reinstalled. */
export function purgeJob(d: Pick<UninstallDeps, 'store' | 'db' | 'clock' | 'log'>): JobHandler {
  return {
    run: async (job) => {
      const p = await d.store.byMember(String(job.payload.memberId));
      if (!p || p.state !== 'uninstalled' || p.deleteAfter === null) return; // reinstalled meanwhile
      // Early (a second uninstall moved the date on): wait for the date, without using up attempts.
      if (p.deleteAfter > d.clock.now()) throw new DeferJobError('not due yet', p.deleteAfter);
      await d.store.purgePortal(p.portalId, job.id);
      // The audit log outlives the portal (append-only): its last entry says the data is gone.
      await d.db.repos.audit.append({ portalId: p.portalId, actor: 'bitrix24', action: 'bitrix24.purged', details: { memberId: p.memberId, uninstalledAt: p.disabledAt } });
      d.log.info({ portalId: p.portalId, memberId: p.memberId }, 'Bitrix24 portal data erased after uninstall');
    },
  };
}
