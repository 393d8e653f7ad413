import type express from 'express';
import type { Knex } from 'knex';
import type { Config } from '../../../config';
import type { JobHandler } from '../../../domain/jobs';
import type { Clock, Database } from '../../../domain/ports';
import type { SessionManager } from '../../../domain/sessions';
import type { RouteDef } from '../../../http/api';
import type { TokenService } from '../../../http/tokens';
import type { Logger } from '../../../logger';
import { SecretBox } from '../../../security/secretBox';
import { Bitrix24Adapter } from './adapter';
import { Bitrix24Api } from './client';
import { JOB_BITRIX24_BIND, bindJob, bitrix24ApiRoutes, bitrix24Router } from './routes';
import { JOB_BITRIX24_MARKET, marketJob, type MarketBilling } from './market';
import { Bitrix24Store } from './store';
import { JOB_BITRIX24_PURGE, JOB_BITRIX24_UNINSTALL, purgeJob, uninstallJob } from './uninstall';

export interface Bitrix24Module {
  adapter: Bitrix24Adapter;
  api: Bitrix24Api | null;
  store: Bitrix24Store;
  /** /bitrix24/install, /events, /app, /placement, /token. */
  router: express.Router;
  apiRoutes: RouteDef[];
  jobs: Record<string, JobHandler>;
}

/** Everything Bitrix24, built once by the composition root. */
export function createBitrix24(deps: {
  config: Config;
  knex: Knex;
  db: Database;
  sessions: SessionManager;
  tokens: TokenService;
  clock: Clock;
  log: Logger;
  /** This server process (per-phone claim rows). */
  worker: string;
  /** Market billing drives the licence of portals that pay through the Bitrix24 Market. */
  billing?: MarketBilling;
}): Bitrix24Module {
  const { config } = deps;
  const log = deps.log.child({ crm: 'bitrix24' });
  const store = new Bitrix24Store(deps.knex, new SecretBox(config.SECRET_KEY, 'bitrix24-tokens'));
  // Without credentials the handlers answer 503 and jobs for Bitrix24 portals retry until configured.
  const api =
    config.BITRIX24_CLIENT_ID && config.BITRIX24_CLIENT_SECRET
      ? new Bitrix24Api({
          app: { clientId: config.BITRIX24_CLIENT_ID, clientSecret: config.BITRIX24_CLIENT_SECRET },
          store,
          clock: deps.clock,
          log,
          ...(config.BITRIX24_OAUTH_URL ? { oauthUrl: config.BITRIX24_OAUTH_URL } : {}),
          ...(config.BITRIX24_REST_URL ? { restUrl: config.BITRIX24_REST_URL } : {}),
          rps: config.BITRIX24_RPS,
          burst: config.BITRIX24_BURST,
          backoffMs: config.BITRIX24_BACKOFF_MS,
        })
      : null;
  const adapter = new Bitrix24Adapter({ api: api ?? unconfiguredApi(), store, clock: deps.clock, log, worker: deps.worker });
  return {
    adapter,
    api,
    store,
    router: bitrix24Router({
      api,
      store,
      db: deps.db,
      tokens: deps.tokens,
      clock: deps.clock,
      log,
      publicUrl: config.PUBLIC_URL ?? null,
      allowSelfFraming: config.WA_ENGINE === 'simulator',
    }),
    apiRoutes: bitrix24ApiRoutes(store, adapter, deps.db),
    jobs: {
      [JOB_BITRIX24_UNINSTALL]: uninstallJob({ api, store, db: deps.db, sessions: deps.sessions, clock: deps.clock, log }),
      [JOB_BITRIX24_PURGE]: purgeJob({ store, db: deps.db, clock: deps.clock, log }),
      [JOB_BITRIX24_BIND]: bindJob(api, log),
      [JOB_BITRIX24_MARKET]: marketJob({
        api,
        billing: deps.billing ?? null,
        jobs: deps.db.repos.jobs,
        clock: deps.clock,
        log,
        portalActive: async (portalId) => (await store.byPortal(portalId))?.state === 'active',
      }),
    },
  };
}

function unconfiguredApi(): Bitrix24Api {
  return new Proxy({} as Bitrix24Api, {
    get: () => () => Promise.reject(new Error('Bitrix24 is not configured (BITRIX24_CLIENT_ID, BITRIX24_CLIENT_SECRET)')),
  });
}
