// The composition root: the one place that builds and wires every piece. Nothing else creates
// singletons; tests start the same server in-process through `startServer`.
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import type express from 'express';
import QRCode from 'qrcode';
import { createBitrix24 } from './adapters/crm/bitrix24';
import { bitrix24DemoRouter } from './adapters/crm/bitrix24/demo';
import { createKommo } from './adapters/crm/kommo';
import { smtpMailer } from './adapters/mail/smtp';
import { AccountService, DEFAULT_LIMITS, type ConsoleLimits } from './console/accounts';
import { consoleRouter } from './console/router';
import type { PlanCatalog } from './domain/licencePlans';
import { OperatorCommands } from './domain/licenceOperator';
import { LicenceService } from './domain/licenceService';
import { licenceRoutes, operatorGuard, operatorRoutes } from './http/routes/licence';
import { loadPlans } from './licence/plansFile';
import { AccountStore } from './persistence/repositories/accounts';
import { createCrmRegistry } from './adapters/crm/registry';
import { simulatorRoutes } from './adapters/whatsapp/simulator/routes';
import type { SimNetwork } from './adapters/whatsapp/simulator/network';
import { createEngine } from './adapters/whatsapp/registry';
import type { Config } from './config';
import type { DomainContext } from './domain/context';
import { ConversationService } from './domain/conversations';
import { CrmJobs } from './domain/crmJobs';
import { JOB_CRM_ALERT, JOB_CRM_MIRROR } from './domain/inbound';
import { JobRunner, RunnerGroup, type JobRunnerOptions } from './domain/jobs';
import { JOB_SEND, OutboundService } from './domain/outbound';
import { systemClock, type Clock, type WhatsAppEngine } from './domain/ports';
import { JOB_NUMBER_ALERT, SessionManager } from './domain/sessions';
import { createApp } from './http/app';
import { LiveHub } from './http/liveHub';
import { conversationRoutes } from './http/routes/conversations';
import { demoRouter } from './http/routes/demo';
import { kommoDemoRouter, type KommoDemoProvider } from './http/routes/kommoDemo';
import { numberRoutes } from './http/routes/numbers';
import { settingsRoutes } from './http/routes/settings';
import { systemRouter } from './http/routes/system';
import { streamRoutes } from './http/routes/stream';
import { WidgetAssets } from './http/routes/widgetAssets';
import { TokenService } from './http/tokens';
import { createLogger, type Logger } from './logger';
import { FileMediaStore } from './media/store';
import { Metrics } from './metrics';
import { openDatabase, type KnexDatabase } from './persistence/database';
import { inBackground } from './persistence/connectionGate';

export const VERSION = '0.1.0';

export interface StartOptions {
  log?: Logger;
  clock?: Clock;
  /** Overrides for the job runner (tests use short backoffs). */
  jobs?: Partial<JobRunnerOptions>;
  /** Replace the engine chosen by WA_ENGINE (engine contract tests). */
  engine?: WhatsAppEngine;
  /** Where the widget bundles are (default: dist/widget of the checkout). */
  widgetDir?: string;
  /** The Kommo account behind /demo/kommo (simulator engine only): `npm run demo` and the browser tests. */
  kommoDemo?: KommoDemoProvider;
  /** The demo Bitrix24 portal and deal a bare /demo/bitrix24 opens (simulator engine only). */
  bitrix24Demo?: { member: string; deal: string };
  /** Tariffs (default: PLANS_FILE or manifest/plans.json). */
  plans?: PlanCatalog;
  /** Console lockout and session limits (tests shorten the slow-down). */
  console?: Partial<ConsoleLimits>;
  /** How often the time-driven licence rules run (default one minute; 0: only when called). */
  licenceTickMs?: number;
}

export interface RunningServer {
  url: string;
  port: number;
  config: Config;
  db: KnexDatabase;
  tokens: TokenService;
  sessions: SessionManager;
  runner: RunnerGroup;
  hub: LiveHub;
  network: SimNetwork | null;
  app: express.Express;
  /** The widget bundles' URLs with content hashes, for the pages the server renders. */
  widgetAssets: WidgetAssets;
  licences: LicenceService;
  accounts: AccountService;
  operator: OperatorCommands;
  close(): Promise<void>;
}

export async function startServer(config: Config, opts: StartOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? createLogger(config.LOG_LEVEL);
  const clock = opts.clock ?? systemClock;
  const db = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR });
  const created = opts.engine ? { engine: opts.engine, network: null } : await createEngine(config, log);
  const { engine, network } = created;
  const tokens = new TokenService(config.SECRET_KEY);
  const hub = new LiveHub();
  // Pages the server renders (Bitrix24 frames, console, demo) load the bundles by hashed URL.
  const widgetAssets = new WidgetAssets(opts.widgetDir);
  const media = new FileMediaStore(path.join(config.DATA_DIR, 'media'), db.repos.media, config.SECRET_KEY, config.mediaMaxBytes, config.PUBLIC_URL ?? null);

  let runner: RunnerGroup | null = null;
  let sessions: SessionManager | null = null;
  const metrics = new Metrics({ jobs: () => db.repos.jobs.countByState(), sessions: () => sessions?.counts() ?? {}, engine: () => engine.stats?.() ?? null });
  const ctx: DomainContext = { db, live: hub, media, clock, metrics, log, wakeJobs: (kind) => runner?.wake(kind) };

  const renderQr = (payload: string) => QRCode.toDataURL(payload, { margin: 1, width: 264 });
  const catalog = opts.plans ?? loadPlans(config.PLANS_FILE);
  const licences = new LicenceService(ctx, catalog, { trialDays: config.LICENCE_TRIAL_DAYS });
  sessions = new SessionManager(ctx, engine, renderQr, (portalId) => licences.guardConnect(portalId));
  sessions.setRunFilter((portalId) => licences.mayRunSessions(portalId));
  const outbound = new OutboundService(ctx, sessions, (portalId) => licences.guardSend(portalId));
  sessions.attach(outbound);
  licences.attach({
    closeSessions: async (portalId, reason) => void (await sessions!.pausePortal(portalId, reason)),
    reopenSessions: async (portalId) => {
      await sessions!.resumePortal(portalId);
      return true;
    },
    releaseDeferred: async (portalId) => {
      if ((await db.repos.jobs.release(portalId, [JOB_CRM_MIRROR], clock.now())) > 0) runner?.wake(JOB_CRM_MIRROR);
    },
  });
  const accountStore = new AccountStore(db.knex);
  const accounts = new AccountService(accountStore, db.repos.audit, clock, { ...DEFAULT_LIMITS, ...opts.console });
  const mailer = config.SMTP_URL ? smtpMailer(config.SMTP_URL, config.PUBLIC_URL ?? null, accountStore) : null;
  const operator = new OperatorCommands(licences, db);
  const kommo = createKommo({ config, knex: db.knex, db, sessions, tokens, live: hub, clock, log });
  const worker = `${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const bitrix24 = createBitrix24({ config, knex: db.knex, db, sessions, tokens, clock, log, worker, billing: licences });
  const crm = createCrmRegistry(db.knex, { kommo: kommo.adapter, bitrix24: bitrix24.adapter });
  const conversations = new ConversationService(ctx, crm);
  const crmJobs = new CrmJobs(
    ctx,
    crm,
    { media: (sha256, mimetype, filename) => media.url({ id: 0, sha256, mimetype, size: 0, filename }) },
    (portalId) => licences.mayMirror(portalId),
  );

  const handlers = {
    [JOB_SEND]: outbound.sendJob(),
    [JOB_CRM_MIRROR]: crmJobs.mirror(),
    [JOB_CRM_ALERT]: crmJobs.alert(),
    [JOB_NUMBER_ALERT]: crmJobs.numberAlert(),
    ...licences.alertJobs(crm, mailer),
    ...kommo.jobs,
    ...bitrix24.jobs,
  };
  const base = { worker, concurrency: 16, leaseMs: 15_000, pollMs: 1000, backoffBaseMs: 1000, backoffMaxMs: 10 * 60_000, ...opts.jobs };
  const events = {
    finished: (kind: string, outcome: 'done' | 'retry' | 'dead') => metrics.jobsFinished.inc({ kind, outcome }),
    error: (err: unknown, job?: { id: number; kind: string; portalId: number | null }) =>
      log.warn({ err, jobId: job?.id, kind: job?.kind, portalId: job?.portalId }, 'job attempt failed'),
  };
  // Sends have a lane of their own: a backlog of CRM mirroring (a burst, a CRM outage, a rate
  // limit) never makes a manager's message wait for a free slot.
  runner = new RunnerGroup([
    new JobRunner(db, handlers, { ...base, worker: `${worker}-send`, concurrency: 4, lane: { only: [JOB_SEND] } }, clock, events),
    // Background jobs also yield SQLite's one connection to requests and sends (connectionGate).
    new JobRunner(db, handlers, { ...base, worker: `${worker}-bg`, lane: { except: [JOB_SEND] }, around: inBackground }, clock, events),
  ]);

  const openStreams = new Set<{ end(): void }>();
  const apiRoutes = [
    ...numberRoutes(db, sessions),
    ...settingsRoutes(db),
    ...conversationRoutes({ conversations, outbound, sessions, media, maxUploadBytes: config.mediaMaxBytes }),
    ...streamRoutes(hub, media, openStreams),
    ...(network ? simulatorRoutes(network, db, tokens) : []),
    ...kommo.apiRoutes,
    ...bitrix24.apiRoutes,
    ...licenceRoutes(licences, accounts),
    ...(config.OPERATOR_TOKEN ? operatorRoutes(operator, config.OPERATOR_TOKEN) : []),
  ];
  const extra = [systemRouter({ db, dialect: db.dialect, engine, metrics, media, secret: config.SECRET_KEY, version: VERSION })];
  extra.push(kommo.router);
  extra.push(widgetAssets.router(), bitrix24.router);
  if (network) extra.push(demoRouter(widgetAssets), kommoDemoRouter(opts.kommoDemo ?? null), bitrix24DemoRouter(config.BITRIX24_REST_URL, opts.bitrix24Demo ?? null));
  extra.push(
    consoleRouter({ accounts, licences, db, tokens, publicUrl: config.PUBLIC_URL ?? null, widgetUrl: () => widgetAssets.url('standalone.js') }),
  );
  const app = createApp({ log, metrics, tokens, apiRoutes, extra, before: [kommo.cors, ...(config.OPERATOR_TOKEN ? [operatorGuard(config.OPERATOR_TOKEN)] : [])], version: VERSION });

  const server = http.createServer(app);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, resolve);
  });
  const port = (server.address() as { port: number }).port;
  // A message stored just before a crash cut off its job's insert gets the job back now.
  await outbound.recoverOrphanedSends();
  runner.start();
  await sessions.restoreAll();
  // The time-driven licence rules (expiry, alerts, maintenance credits, closing idle sessions).
  const tickMs = opts.licenceTickMs ?? 60_000;
  let ticking: Promise<void> | null = null;
  const licenceTimer =
    tickMs > 0
      ? setInterval(() => {
          ticking ??= licences
            .tick()
            .catch((err) => log.warn({ err }, 'licence rules failed'))
            .finally(() => (ticking = null));
        }, tickMs)
      : null;
  licenceTimer?.unref();
  log.info({ port, engine: engine.name, database: db.dialect }, 'InCRM server listening');

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      // Stop taking requests; let the ones in flight finish; end the endless SSE responses.
      if (licenceTimer) clearInterval(licenceTimer);
      await ticking;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of openStreams) s.end();
      server.closeIdleConnections();
      await stopped;
      await runner!.stop();
      await sessions!.closeAll();
      await engine.shutdown?.();
      await db.close();
      log.info('InCRM server stopped');
    })());

  return { url: `http://127.0.0.1:${port}`, port, config, db, tokens, sessions, runner, hub, network, app, widgetAssets, licences, accounts, operator, close };
}
