import type express from 'express';
import type { Knex } from 'knex';
import type { Config } from '../../../config';
import type { JobHandler } from '../../../domain/jobs';
import type { Clock, Database, LivePublisher } from '../../../domain/ports';
import type { SessionManager } from '../../../domain/sessions';
import type { RouteDef } from '../../../http/api';
import type { TokenService } from '../../../http/tokens';
import type { Logger } from '../../../logger';
import { SecretBox } from '../../../security/secretBox';
import { KommoAdapter } from './adapter';
import { KommoApi, type KommoAppCredentials } from './client';
import { routeKommoHostsTo } from './hosts';
import { JOB_KOMMO_KEEPALIVE, keepAliveJob, scheduleKeepAlive } from './keepalive';
import { JOB_KOMMO_PURGE, purgeJob } from './purge';
import { kommoApiRoutes, kommoCors, kommoRouter } from './routes';
import { KommoStore } from './store';
import { disableCheckJob, JOB_KOMMO_DISABLE_CHECK } from './uninstall';

export interface KommoModule {
  adapter: KommoAdapter;
  api: KommoApi | null;
  store: KommoStore;
  /** Before /api/v1: CORS for the account's own origin. */
  cors: express.RequestHandler;
  /** /kommo/oauth, /kommo/disable, /kommo/token. */
  router: express.Router;
  apiRoutes: RouteDef[];
  jobs: Record<string, JobHandler>;
}

/** Everything Kommo, built once by the composition root. */
export function createKommo(deps: {
  config: Config;
  knex: Knex;
  db: Database;
  sessions: SessionManager;
  tokens: TokenService;
  live: LivePublisher;
  clock: Clock;
  log: Logger;
}): KommoModule {
  const { config } = deps;
  const log = deps.log.child({ crm: 'kommo' });
  if (config.KOMMO_API_BASE) routeKommoHostsTo(config.KOMMO_API_BASE, config.KOMMO_CA_FILE);
  const store = new KommoStore(deps.knex, new SecretBox(config.SECRET_KEY, 'kommo-tokens'));
  const app: KommoAppCredentials | null =
    config.KOMMO_CLIENT_ID && config.KOMMO_CLIENT_SECRET && config.KOMMO_REDIRECT_URI
      ? { clientId: config.KOMMO_CLIENT_ID, clientSecret: config.KOMMO_CLIENT_SECRET, redirectUri: config.KOMMO_REDIRECT_URI }
      : null;
  // Without credentials the routes answer 503 and jobs for Kommo portals retry until configured.
  const api = app ? new KommoApi(app, store, deps.clock, log, config.KOMMO_MAX_RPS) : null;
  if (api) {
    scheduleKeepAlive(deps.db, deps.clock.now() + 60 * 60_000).catch((err) => log.warn({ err }, 'could not schedule the Kommo keep-alive'));
  }
  const adapter = new KommoAdapter({ api: api ?? unconfiguredApi(), store, live: deps.live, clock: deps.clock, log });
  return {
    adapter,
    api,
    store,
    cors: kommoCors({ store, tokens: deps.tokens }),
    router: kommoRouter({ app, api, store, db: deps.db, sessions: deps.sessions, tokens: deps.tokens, clock: deps.clock, log }),
    apiRoutes: kommoApiRoutes(store, adapter, deps.db),
    jobs: {
      [JOB_KOMMO_PURGE]: purgeJob(store, deps.clock, log),
      ...(api
        ? {
            [JOB_KOMMO_KEEPALIVE]: keepAliveJob(store, api, deps.db, deps.clock, log),
            [JOB_KOMMO_DISABLE_CHECK]: disableCheckJob({ api, store, db: deps.db, sessions: deps.sessions, clock: deps.clock, log }),
          }
        : {}),
    },
  };
}

function unconfiguredApi(): KommoApi {
  return new Proxy({} as KommoApi, {
    get: () => () => Promise.reject(new Error('Kommo is not configured (KOMMO_CLIENT_ID, KOMMO_CLIENT_SECRET, KOMMO_REDIRECT_URI)')),
  });
}
