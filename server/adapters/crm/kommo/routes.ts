import crypto from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { AppError, badRequest, unauthorized } from '../../../domain/errors';
import type { Clock, Database } from '../../../domain/ports';
import type { SessionManager } from '../../../domain/sessions';
import { route, type RouteDef } from '../../../http/api';
import type { TokenService } from '../../../http/tokens';
import type { Logger } from '../../../logger';
import type { KommoAdapter } from './adapter';
import { KommoNotAuthorized, KommoUnavailable, type KommoApi, type KommoAppCredentials } from './client';
import { accountHost, originHost } from './hosts';
import { JwtRejected, verifyKommoJwt } from './jwt';
import { onDisableHook } from './uninstall';
import type { KommoStore } from './store';

/** Lifetime of the core token minted from a widget JWT (Kommo's own last 30 minutes). */
export const WIDGET_TOKEN_TTL_MS = 60 * 60_000;
/** How long /kommo/oauth waits for the exchange before answering (Kommo gives the hook 3 s). */
const OAUTH_ANSWER_WITHIN_MS = 2000;

export interface KommoRouteDeps {
  app: KommoAppCredentials | null;
  api: KommoApi | null;
  store: KommoStore;
  db: Database;
  sessions: SessionManager;
  tokens: TokenService;
  clock: Clock;
  log: Logger;
}

const accountInfo = z.object({ id: z.number().int(), name: z.string(), subdomain: z.string() }).loose();
const userInfo = z.object({ id: z.number().int(), rights: z.object({ is_admin: z.boolean().optional() }).loose().optional() }).loose();

function page(title: string, body: string): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>InCRM · ${esc(title)}</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2d3d}
h1{font-size:1.4rem;color:#128c4b}</style></head><body><h1>${esc(title)}</h1><p>${esc(body)}</p></body></html>`;
}

function safeEqualHex(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

/** Install: code → tokens → the account's id and name → portal + sealed tokens. */
async function install(d: KommoRouteDeps, domain: string, code: string): Promise<{ portalId: number; accountId: string }> {
  const api = d.api!;
  let tokens;
  // A 5xx before Kommo consumed the code is worth another try; the code itself is single-use.
  for (let attempt = 1; ; attempt++) {
    try {
      tokens = await api.exchangeCode(domain, code);
      break;
    } catch (err) {
      if (!(err instanceof KommoUnavailable) || attempt >= 3) throw err;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
  const res = await api.callWith(domain, tokens, 'GET', '/api/v4/account');
  const acc = accountInfo.safeParse(res.data);
  if (res.status !== 200 || !acc.success) throw new Error(`install: GET /api/v4/account answered ${res.status}`);
  const { portalId, created } = await d.store.install({ accountId: String(acc.data.id), domain, name: acc.data.name, tokens, now: d.clock.now() });
  await d.db.repos.audit.append({ portalId, actor: 'kommo', action: created ? 'kommo.installed' : 'kommo.reinstalled', details: { accountId: acc.data.id, domain } });
  d.log.info({ portalId, accountId: acc.data.id, domain }, 'Kommo account installed');
  return { portalId, accountId: String(acc.data.id) };
}

export function kommoRouter(d: KommoRouteDeps): express.Router {
  const r = express.Router();
  const configured = () => {
    if (!d.app || !d.api) throw new AppError(503, 'unavailable', 'Kommo is not configured on this server (KOMMO_CLIENT_ID, KOMMO_CLIENT_SECRET, KOMMO_REDIRECT_URI)');
    return { app: d.app, api: d.api };
  };

  // Redirect URI. Kommo calls it server to server on install (3 s budget, never resent); a
  // person may also land here after the authorisation popup: both get a readable page.
  r.get('/kommo/oauth', async (req, res) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    const q = z
      .object({ code: z.string().min(1).max(4000).optional(), referer: z.string().max(300).optional(), state: z.string().max(500).optional(), error: z.string().max(100).optional() })
      .loose()
      .safeParse(req.query);
    if (!q.success) return void res.status(400).send(page('Not a Kommo request', 'The parameters of this address are malformed.'));
    if (q.data.error) return void res.status(200).send(page('Access not granted', 'The Kommo account did not grant access to InCRM. Install the integration again from Kommo to connect it.'));
    if (!q.data.code || !q.data.referer) {
      return void res
        .status(400)
        .send(page('InCRM for Kommo', 'This address is where Kommo connects an account to InCRM when an admin installs the integration. There is nothing to do here by hand: install InCRM from your Kommo account (Settings → Integrations).'));
    }
    const domain = accountHost(q.data.referer);
    if (!domain) return void res.status(400).send(page('Unknown account address', 'The referer is not a Kommo account address (…kommo.com, …amocrm.ru, …amocrm.com).'));
    if (!d.app || !d.api) return void res.status(503).send(page('Not configured', 'Kommo is not configured on this server.'));
    const work = install(d, domain, q.data.code);
    work.catch((err) => d.log.error({ err, domain }, 'Kommo install failed'));
    const outcome = await Promise.race([
      work.then(() => 'ok' as const, (err: unknown) => err as Error),
      new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), OAUTH_ANSWER_WITHIN_MS).unref()),
    ]);
    if (outcome === 'ok') return void res.send(page('InCRM is connected', `The Kommo account ${domain} is connected. Return to Kommo: the WhatsApp panel appears in lead, contact and company cards.`));
    if (outcome === 'pending') return void res.status(202).send(page('Connecting…', `InCRM is finishing the connection of ${domain}. Return to Kommo and open the widget settings in a moment.`));
    return void res
      .status(502)
      .send(page('Connection failed', `Kommo did not accept the authorisation (${outcome.message}). Authorisation codes work once and for 20 minutes: install the integration again from Kommo.`));
  });

  // Uninstall hook: GET account_id, client_uuid, signature = hex HMAC-SHA256(secret, client_id|account_id).
  // The signature never changes for an account, so a good one is necessary, not sufficient.
  r.get('/kommo/disable', async (req, res) => {
    const { app, api } = configured();
    const q = z
      .object({ account_id: z.string().regex(/^\d+$/, 'must be a number'), client_uuid: z.string().optional(), client_id: z.string().optional(), signature: z.string().regex(/^[0-9a-f]{64}$/i, 'must be 64 hex digits') })
      .loose()
      .safeParse(req.query);
    if (!q.success) throw badRequest(`${q.error.issues[0]?.path.join('.')}: ${q.error.issues[0]?.message}`);
    const client = q.data.client_uuid ?? q.data.client_id;
    const expected = crypto.createHmac('sha256', app.clientSecret).update(`${app.clientId}|${q.data.account_id}`).digest('hex');
    if (client !== app.clientId || !safeEqualHex(q.data.signature.toLowerCase(), expected)) {
      d.log.warn({ accountId: q.data.account_id }, 'Kommo disable hook with a bad signature refused');
      throw new AppError(403, 'forbidden', 'signature: does not match');
    }
    const existing = await d.store.byAccountId(q.data.account_id);
    if (!existing) return void res.json({ ok: true, known: false });
    const outcome = await onDisableHook({ api, store: d.store, db: d.db, sessions: d.sessions, clock: d.clock, log: d.log }, existing);
    if (!outcome.confirmed) return void res.status(202).json({ ok: true, confirmed: false, detail: `${outcome.why}: nothing was changed; InCRM checks again later` });
    res.json({ ok: true, deleteAfter: new Date(outcome.account.deleteAfter!).toISOString() });
  });

  // Widget proof → core token. The portal is the one of the JWT's account; nothing is taken from the body.
  r.post('/kommo/token', async (req, res) => {
    const { app, api } = configured();
    const raw = req.header('x-auth-token');
    if (!raw) throw unauthorized('X-Auth-Token: missing (call through self.$authorizedAjax)');
    let claims;
    try {
      claims = verifyKommoJwt(raw, { secret: app.clientSecret, audience: new URL(app.redirectUri).origin, clientId: app.clientId, nowMs: d.clock.now() });
    } catch (err) {
      if (err instanceof JwtRejected) throw unauthorized(err.message);
      throw err;
    }
    const account = await d.store.byAccountId(claims.account_id);
    if (!account || account.disabledAt !== null) throw new AppError(403, 'forbidden', 'account: InCRM is not installed in this Kommo account');
    const issHost = accountHost(claims.iss);
    if (issHost !== account.domain) throw unauthorized('X-Auth-Token: issuer is not the account of account_id');
    // From a browser, only the account's own page may trade its token. Our own origin is
    // allowed too: it serves no third-party pages (the demo's emulated Kommo lives there).
    const origin = req.header('origin');
    if (origin && originHost(origin) !== account.domain && origin !== `${req.protocol}://${req.get('host')}`) {
      throw new AppError(403, 'forbidden', 'origin: not this account');
    }
    let admin = claims.is_admin;
    if (admin === undefined) {
      // Not in the token: ask Kommo (the account's own REST API) whether this user is an admin.
      const u = await api.call(account.portalId, 'GET', `/api/v4/users/${claims.user_id}`);
      const parsed = userInfo.safeParse(u.data);
      admin = parsed.success ? parsed.data.rights?.is_admin === true : false;
    }
    const now = d.clock.now();
    const principal = { portalId: account.portalId, userId: claims.user_id, admin };
    res.json({
      token: d.tokens.issue(principal, WIDGET_TOKEN_TTL_MS, now),
      expiresAt: new Date(now + WIDGET_TOKEN_TTL_MS).toISOString(),
      portalId: account.portalId,
      userId: claims.user_id,
      admin,
    });
  });
  return r;
}

/**
 * CORS for the widget, which runs inside the account's own Kommo page: `/kommo/token` and
 * `/api/v1/*` answer cross-origin only to `https://<account host>` of an installed account, and an
 * API call with a token only to the origin of that token's account.
 */
export function kommoCors(d: Pick<KommoRouteDeps, 'store' | 'tokens'>): express.RequestHandler {
  const known = new Map<string, { ok: boolean; at: number }>();
  const isKnown = async (host: string) => {
    const hit = known.get(host);
    if (hit && Date.now() - hit.at < 30_000) return hit.ok;
    const ok = await d.store.isKnownDomain(host);
    known.set(host, { ok, at: Date.now() });
    return ok;
  };
  return (req: Request, res: Response, next: NextFunction) => {
    const origin = req.header('origin');
    if (!origin || !(req.path === '/kommo/token' || req.path.startsWith('/api/v1/'))) return next();
    const host = originHost(origin);
    if (!host) return next(); // not a Kommo origin: no CORS headers, the browser blocks it
    void (async () => {
      if (!(await isKnown(host))) return;
      const auth = req.header('authorization');
      if (req.method !== 'OPTIONS' && auth?.startsWith('Bearer ')) {
        const p = d.tokens.verify(auth.slice(7));
        const acc = p ? await d.store.byPortal(p.portalId) : null;
        if (!acc || acc.domain !== host) return;
      }
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Expose-Headers', 'X-Request-Id');
    })()
      .then(() => {
        res.vary('Origin');
        if (req.method === 'OPTIONS') {
          if (res.getHeader('Access-Control-Allow-Origin')) {
            res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PUT, DELETE, OPTIONS');
            res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Auth-Token, X-Requested-With');
            res.setHeader('Access-Control-Max-Age', '600');
          }
          return void res.status(204).end();
        }
        next();
      })
      .catch(next);
  };
}

/** `GET /api/v1/kommo/alerts?after=`: the caller's alert queue (the `everywhere` script polls it). */
export function kommoApiRoutes(store: KommoStore, adapter: KommoAdapter, db: Database): RouteDef[] {
  return [
    route({
      method: 'get',
      path: '/kommo/options',
      tag: 'kommo',
      summary: "For the settings page (admins): the Kommo account's pipelines with their open stages, and its users",
      access: 'admin',
      responses: { '200': '{ pipelines: [{id, name, main, stages: [{id, name}]}], users: [{id, name, admin}] }', '404': 'not a Kommo portal', '503': 'Kommo unreachable' },
      handler: async ({ principal }) => {
        const portal = await db.repos.portals.get(principal.portalId);
        if (!portal || portal.crm !== 'kommo') throw new AppError(404, 'not_found', 'this portal is not a Kommo account');
        try {
          return await adapter.options(portal);
        } catch (err) {
          if (err instanceof KommoUnavailable || err instanceof KommoNotAuthorized) throw new AppError(503, 'unavailable', err.message);
          throw err;
        }
      },
    }),
    route({
      method: 'get',
      path: '/kommo/alerts',
      tag: 'kommo',
      summary: "The caller's alerts after id `after` (oldest first); the same alerts arrive live as `alert` events on /stream",
      access: 'user',
      query: z.object({ after: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(100).default(50) }),
      responses: { '200': '{ items: [{id, text, link, createdAt}], last }' },
      handler: async ({ principal, query }) => {
        const items = await store.alertsFor(principal.portalId, principal.userId, query.after, query.limit);
        return {
          items: items.map((a) => ({ id: a.id, text: a.text, link: a.link, createdAt: new Date(a.createdAt).toISOString() })),
          last: items.length ? items[items.length - 1]!.id : query.after,
        };
      },
    }),
  ];
}
