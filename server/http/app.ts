import crypto from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { AppError } from '../domain/errors';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { mount, openApiDocument, type RouteDef } from './api';
import type { TokenService } from './tokens';

export interface AppParts {
  log: Logger;
  metrics: Metrics;
  tokens: TokenService;
  /** All /api/v1 routes (widget API, simulator control when mounted). */
  apiRoutes: RouteDef[];
  /** Other routers mounted at the root (health, media, demo pages, CRM handlers). */
  extra: express.Router[];
  /** Middleware that must run before /api/v1 (CRM-specific CORS). */
  before?: express.RequestHandler[];
  version: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
    log: Logger;
  }
}

export function createApp(parts: AppParts): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.set('query parser', 'extended');
  // No ETag on generated responses: API bodies are per user and nobody revalidates them, and
  // hashing every body was ~1.4% of the server's CPU serving history pages. The widget bundles
  // set their own content-hash ETag (widgetAssets.ts).
  app.set('etag', false);

  // Request id and a child logger; HTTP latency by route pattern (not by raw URL: bounded labels).
  app.use((req, res, next) => {
    const incoming = req.header('x-request-id');
    req.id = incoming && /^[\w.-]{1,64}$/.test(incoming) ? incoming : crypto.randomUUID();
    req.log = parts.log.child({ reqId: req.id });
    res.setHeader('X-Request-Id', req.id);
    const end = parts.metrics.httpDuration.startTimer();
    res.on('finish', () => {
      const routePath = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      end({ method: req.method, route: routePath, status: String(res.statusCode) });
    });
    next();
  });

  app.use(express.json({ limit: '1mb' }));
  app.use(express.urlencoded({ extended: true, limit: '1mb' }));

  for (const h of parts.before ?? []) app.use(h);

  const api = express.Router();
  mount(api, parts.apiRoutes, parts.tokens);
  const doc = openApiDocument(parts.apiRoutes, { title: 'InCRM widget API', version: parts.version });
  app.get('/api/v1/openapi.json', (_req, res) => {
    res.json(doc);
  });
  app.use('/api/v1', api);
  for (const r of parts.extra) app.use(r);

  app.use('/api', (_req, _res) => {
    throw new AppError(404, 'not_found', 'no such API route');
  });

  // The one error handler: AppError → its status; body-parser errors → 400/413; the rest → 500.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let status = 500;
    let code = 'internal';
    let message = 'internal error';
    let details: Record<string, unknown> | undefined;
    if (err instanceof AppError) {
      ({ status, code, message, details } = err);
    } else if (err && typeof err === 'object' && 'type' in err && (err as { type: string }).type === 'entity.parse.failed') {
      status = 400;
      code = 'bad_request';
      message = 'body: not valid JSON';
    } else if (err && typeof err === 'object' && 'type' in err && (err as { type: string }).type === 'entity.too.large') {
      status = 413;
      code = 'payload_too_large';
      message = 'body: too large';
    }
    const log = req.log ?? parts.log;
    if (status >= 500) log.error({ err }, 'request failed');
    else log.debug({ status, code, message }, 'request refused');
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(status).json({ error: { code, message, ...(details ? { details } : {}) } });
  });
  return app;
}
