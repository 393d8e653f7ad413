import type { JobHandler } from '../../../domain/jobs';
import type { Clock, Database } from '../../../domain/ports';
import type { Logger } from '../../../logger';
import type { KommoApi } from './client';
import type { KommoStore } from './store';

export const JOB_KOMMO_KEEPALIVE = 'kommo.keepalive';
const DAY = 24 * 3600_000;

/**
 * Kommo refresh tokens die after three months unused, and then only a reinstall helps. Once a
 * day every installed account makes one cheap call, which refreshes its (24-hour) access token
 * when due and so keeps the refresh token young even for an account nobody writes to.
 */
export function keepAliveJob(store: KommoStore, api: KommoApi, db: Database, clock: Clock, log: Logger): JobHandler {
  return {
    run: async () => {
      for (const a of await store.activeAccounts()) {
        try {
          await api.call(a.portalId, 'GET', '/api/v4/account');
        } catch (err) {
          log.warn({ portalId: a.portalId, err: (err as Error).message }, 'Kommo keep-alive call failed');
        }
      }
      await scheduleKeepAlive(db, clock.now() + DAY);
    },
  };
}

/** One pending keep-alive per day (the key holds while the job waits; done jobs leave the table). */
export function scheduleKeepAlive(db: Database, runAt: number): Promise<void> {
  return db.repos.jobs.enqueue({ kind: JOB_KOMMO_KEEPALIVE, portalId: null, payload: {}, runAt, dedupeKey: `kommo.keepalive:${Math.floor(runAt / DAY)}` });
}
