// Bitrix24 Market billing: where a portal pays through the Market, `app.info` (STATUS, PAYMENT_EXPIRED,
// DAYS) drives its licence instead of our own payments. The status is read after install, when
// Bitrix24 announces a payment (ONAPPPAYMENT) and once a day, by a durable job so a Bitrix24 outage
// only delays it.
import type { JobHandler } from '../../../domain/jobs';
import type { Clock, JobRepo } from '../../../domain/ports';
import type { Logger } from '../../../logger';
import type { Bitrix24Api } from './client';

export const JOB_BITRIX24_MARKET = 'bitrix24.market';
const DAILY_MS = 24 * 3600_000;

/** The licence side, as far as Bitrix24 needs it (LicenceService). */
export interface MarketBilling {
  applyMarketStatus(portalId: number, appInfo: unknown): Promise<unknown>;
}

/**
 * Statuses that mean the Market bills this portal: D demo, T trial, P paid, S subscription. F (a free
 * Market app) and L (a local app, installed from the developer cabinet) have no Market billing: our
 * own trial and payments stay in charge.
 */
export const MARKET_BILLED = new Set(['D', 'T', 'P', 'S']);

export function marketCheck(jobs: Pick<JobRepo, 'enqueue'>, portalId: number, runAt?: number): Promise<void> {
  // One pending check per portal and moment: an install, an event and the daily run do not pile up.
  const at = runAt ?? 0;
  return jobs.enqueue({ kind: JOB_BITRIX24_MARKET, portalId, payload: {}, ...(runAt ? { runAt } : {}), dedupeKey: `bitrix24.market:${portalId}:${at}` });
}

export function marketJob(deps: { api: Bitrix24Api | null; billing: MarketBilling | null; jobs: Pick<JobRepo, 'enqueue'>; clock: Clock; log: Logger; portalActive(portalId: number): Promise<boolean> }): JobHandler {
  return {
    run: async (job) => {
      const portalId = Number(job.portalId);
      if (!deps.api || !deps.billing) return;
      // An uninstalled portal is not asked again (and its tokens would be refused).
      if (!(await deps.portalActive(portalId))) return;
      const info = (await deps.api.call(portalId, 'app.info', {})) as Record<string, unknown> | null;
      const status = typeof info?.STATUS === 'string' ? info.STATUS.toUpperCase() : null;
      if (status && MARKET_BILLED.has(status)) {
        await deps.billing.applyMarketStatus(portalId, info);
        deps.log.info({ portalId, status, days: info?.DAYS, expired: info?.PAYMENT_EXPIRED }, 'Bitrix24 Market status applied to the licence');
      }
      // Daily: Market renewals and expiries do not always send an event. Aligned to the day so a
      // check triggered by an event does not start a second daily chain.
      const next = Math.floor(deps.clock.now() / DAILY_MS) * DAILY_MS + DAILY_MS;
      await marketCheck(deps.jobs, portalId, next);
    },
  };
}
