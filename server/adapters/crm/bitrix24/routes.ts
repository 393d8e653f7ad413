import path from 'node:path';
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import { AppError } from '../../../domain/errors';
import type { JobHandler } from '../../../domain/jobs';
import { KeyedMutex } from '../../../domain/mutex';
import type { Clock, Database } from '../../../domain/ports';
import { route, type RouteDef } from '../../../http/api';
import type { TokenService } from '../../../http/tokens';
import type { Logger } from '../../../logger';
import type { Bitrix24Adapter } from './adapter';
import { Bitrix24NotAuthorized, Bitrix24Rejected, Bitrix24Unavailable, type Bitrix24Api } from './client';
import { BITRIX24_APP, entityOfPlacement } from './descriptor';
import { tokenOwner, type TokenOwner } from './identity';
import { acceptInstall, safeEqual } from './install';
import { installPage, messagePage, widgetLang, widgetPage } from './pages';
import type { B24Portal, Bitrix24Store } from './store';
import { marketCheck } from './market';
import { queueUninstall } from './uninstall';

export const JOB_BITRIX24_BIND = 'bitrix24.bind';
/** Lifetime of the core token minted from a frame's AUTH_ID (Bitrix24's own lasts an hour). */
export const WIDGET_TOKEN_TTL_MS = 60 * 60_000;

export interface Bitrix24RouteDeps {
  api: Bitrix24Api | null;
  store: Bitrix24Store;
  db: Database;
  tokens: TokenService;
  clock: Clock;
  log: Logger;
  publicUrl: string | null;
  /** Demo/simulator: the emulated portal page on this server may frame the tabs too. */
  allowSelfFraming: boolean;
}

// ---------------------------------------------------------------- request shapes

const memberId = z.string().regex(/^[0-9A-Za-z_-]{1,64}$/, 'must be a Bitrix24 member_id');
const domain = z
  .string()
  .transform((s) => s.trim().toLowerCase().replace(/^https?:\/\//, '').replace(/\/.*$/, '').replace(/:(80|443)$/, ''))
  .pipe(z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/, 'must be a portal host name'));
const token = z.string().min(8).max(500);

const installForm = z
  .object({
    AUTH_ID: token,
    AUTH_EXPIRES: z.coerce.number().int().positive().optional(),
    REFRESH_ID: token,
    SERVER_ENDPOINT: z.string().max(500).optional(),
    member_id: memberId,
    DOMAIN: domain,
    APPLICATION_TOKEN: z.string().min(1).max(200).optional(),
    LANG: z.string().max(10).optional(),
  })
  .loose();

const frameForm = z
  .object({
    AUTH_ID: token,
    REFRESH_ID: token.optional(),
    member_id: memberId,
    DOMAIN: domain.optional(),
    PLACEMENT: z.string().max(100).optional(),
    PLACEMENT_OPTIONS: z.string().max(10_000).optional(),
    LANG: z.string().max(10).optional(),
    SERVER_ENDPOINT: z.string().max(500).optional(),
  })
  .loose();

const eventAuth = z
  .object({
    member_id: memberId,
    application_token: z.string().max(200).optional(),
    access_token: z.string().max(500).optional(),
    refresh_token: z.string().max(500).optional(),
    domain: domain.optional(),
    server_endpoint: z.string().max(500).optional(),
    client_endpoint: z.string().max(500).optional(),
    user_id: z.union([z.string(), z.number()]).optional(),
  })
  .loose();
const eventBody = z.object({ event: z.string().min(1).max(100), data: z.record(z.string(), z.unknown()).or(z.array(z.unknown())).optional(), auth: eventAuth, ts: z.string().optional() }).loose();

const placementList = z.array(z.object({ placement: z.string(), handler: z.string() }).loose());
const eventList = z.array(z.object({ event: z.string(), handler: z.string() }).loose());

function firstIssue(e: z.ZodError): string {
  const i = e.issues[0]!;
  return `${i.path.join('.') || 'body'}: ${i.message}`;
}

function baseUrl(d: Bitrix24RouteDeps, req: Request): string {
  return d.publicUrl ?? `${req.protocol}://${req.get('host')}`;
}

/** The portal's own origin (from the endpoint the OAuth server reported), the only one allowed to frame us. */
function frameAncestors(d: Bitrix24RouteDeps, p: B24Portal | null): string {
  let origin = '';
  if (p) {
    try {
      origin = new URL(p.clientEndpoint).origin;
    } catch {
      origin = `https://${p.domain}`;
    }
  }
  const list = [origin, d.allowSelfFraming ? "'self'" : ''].filter(Boolean);
  return `frame-ancestors ${list.length ? list.join(' ') : "'none'"}`;
}

function sendPage(d: Bitrix24RouteDeps, res: Response, status: number, html: string, p: B24Portal | null): void {
  res.status(status);
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Security-Policy', frameAncestors(d, p));
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.send(html);
}

/**
 * Binds our card tabs and events, idempotently: our earlier bindings of those placements (an old
 * handler URL, an older version) are unbound first, "already bound" counts as done.
 */
export async function bindAll(api: Bitrix24Api, portalId: number, base: string): Promise<{ placements: number; events: number }> {
  const handler = `${base}${BITRIX24_APP.handlers.placement}`;
  const eventHandler = `${base}${BITRIX24_APP.handlers.events}`;
  const [bound, events] = await Promise.all([
    api.call(portalId, 'placement.get', {}).then((r) => placementList.parse(r ?? [])),
    api.call(portalId, 'event.get', {}).then((r) => eventList.parse(r ?? [])),
  ]);
  const ours = new Set(BITRIX24_APP.placements.map((p) => p.code));
  await Promise.all(bound.filter((b) => ours.has(b.placement)).map((b) => api.call(portalId, 'placement.unbind', { PLACEMENT: b.placement, HANDLER: b.handler })));
  const langAll = BITRIX24_APP.title;
  const en = langAll.en!;
  const tolerate = (codes: string[]) => (err: unknown) => {
    if (err instanceof Bitrix24Rejected && (codes.includes(err.code) || /already bind|already exist/i.test(err.message))) return true;
    throw err;
  };
  await Promise.all(
    BITRIX24_APP.placements.map((p) =>
      api
        .call(portalId, 'placement.bind', { PLACEMENT: p.code, HANDLER: handler, TITLE: en.TITLE, DESCRIPTION: en.DESCRIPTION, LANG_ALL: langAll })
        .catch(tolerate(['ERROR_PLACEMENT_ALREADY_BINDED'])),
    ),
  );
  const wanted = new Set(BITRIX24_APP.events);
  await Promise.all(
    events.filter((e) => wanted.has(e.event.toUpperCase()) && e.handler !== eventHandler).map((e) => api.call(portalId, 'event.unbind', { event: e.event, handler: e.handler })),
  );
  const have = new Set(events.filter((e) => e.handler === eventHandler).map((e) => e.event.toUpperCase()));
  const toBind = BITRIX24_APP.events.filter((e) => !have.has(e));
  await Promise.all(toBind.map((e) => api.call(portalId, 'event.bind', { event: e, handler: eventHandler }).catch(tolerate(['ERROR_HANDLER_ALREADY_EXIST']))));
  return { placements: BITRIX24_APP.placements.length, events: BITRIX24_APP.events.length };
}

// ---------------------------------------------------------------- frame proof

export interface FrameUser {
  portal: B24Portal;
  userId: string;
  name: string | null;
  admin: boolean;
}

/** A frame's AUTH_ID, checked on the portal itself: who the user is and whether they are an admin. */
export async function verifyFrameToken(d: Bitrix24RouteDeps, member: string, authId: string, claimedDomain?: string): Promise<FrameUser> {
  if (!d.api) throw new AppError(503, 'unavailable', 'Bitrix24 is not configured on this server (BITRIX24_CLIENT_ID, BITRIX24_CLIENT_SECRET)');
  const portal = await d.store.byMember(member);
  if (!portal || portal.state === 'uninstalled') throw new AppError(403, 'forbidden', 'InCRM is not installed in this Bitrix24 portal');
  if (claimedDomain && claimedDomain !== portal.domain) throw new AppError(403, 'forbidden', 'DOMAIN: not the portal of this member_id');
  let owner: TokenOwner;
  try {
    owner = await tokenOwner(d.api, { portalId: portal.portalId }, authId);
  } catch (err) {
    if (err instanceof Bitrix24Rejected && err.code === 'BAD_PAYLOAD') throw new AppError(502, 'bad_gateway', err.message);
    if (err instanceof Bitrix24NotAuthorized || err instanceof Bitrix24Rejected) throw new AppError(401, 'unauthorized', `AUTH_ID: Bitrix24 did not accept it (${err.message})`);
    if (err instanceof Bitrix24Unavailable) throw new AppError(503, 'unavailable', err.message);
    throw err;
  }
  await d.store.seeUser(portal.portalId, owner.userId, owner.name, owner.admin, d.clock.now());
  return { portal, ...owner };
}

function mint(d: Bitrix24RouteDeps, who: FrameUser): { token: string; expiresAt: string } {
  const now = d.clock.now();
  return { token: d.tokens.issue({ portalId: who.portal.portalId, userId: who.userId, admin: who.admin }, WIDGET_TOKEN_TTL_MS, now), expiresAt: new Date(now + WIDGET_TOKEN_TTL_MS).toISOString() };
}

function placementEntity(placement: string | undefined, options: string | undefined): { type: 'lead' | 'deal' | 'contact' | 'company'; id: string } | null {
  const type = entityOfPlacement(placement);
  if (!type || !options) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(options);
  } catch {
    return null;
  }
  const idValue = parsed && typeof parsed === 'object' ? ((parsed as Record<string, unknown>).ID ?? (parsed as Record<string, unknown>).id) : undefined;
  const id = idValue === undefined || idValue === null ? '' : String(idValue);
  return /^\d{1,20}$/.test(id) ? { type, id } : null;
}

// ---------------------------------------------------------------- routes

export function bitrix24Router(d: Bitrix24RouteDeps): express.Router {
  const r = express.Router();
  const lock = new KeyedMutex();
  const merged = (req: Request) => ({ ...(req.query as Record<string, unknown>), ...((req.body ?? {}) as Record<string, unknown>) });

  // The b24jssdk browser build, for our install page (and anyone else's page that needs it).
  const sdkFile = path.join(path.dirname(require.resolve('@bitrix24/b24jssdk/package.json')), 'dist/umd/index.min.js');
  r.get('/bitrix24/b24jssdk.js', (_req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.type('application/javascript').sendFile(sdkFile);
  });

  r.post('/bitrix24/install', async (req, res) => {
    const f = installForm.safeParse(merged(req));
    if (!f.success) return sendPage(d, res, 400, messagePage('Not a Bitrix24 install request', `This address is where Bitrix24 installs InCRM (${firstIssue(f.error)}).`, true), null);
    if (!d.api) return sendPage(d, res, 503, messagePage('Not configured', 'Bitrix24 is not configured on this server (BITRIX24_CLIENT_ID, BITRIX24_CLIENT_SECRET).', true), null);
    const api = d.api;
    let portal: B24Portal;
    let known: boolean;
    try {
      const out = await acceptInstall({ ...d, api, lock }, {
        memberId: f.data.member_id,
        domain: f.data.DOMAIN,
        accessToken: f.data.AUTH_ID,
        refreshToken: f.data.REFRESH_ID,
        serverEndpoint: f.data.SERVER_ENDPOINT ?? null,
        applicationToken: f.data.APPLICATION_TOKEN ?? null,
      });
      portal = out.portal;
      known = out.known;
      d.log.info({ portalId: portal.portalId, memberId: portal.memberId, domain: portal.domain, created: out.created, known }, 'Bitrix24 portal installed');
    } catch (err) {
      const status = err instanceof AppError ? err.status : err instanceof Bitrix24Unavailable ? 503 : 500;
      if (status >= 500) d.log.error({ err, memberId: f.data.member_id }, 'Bitrix24 install failed');
      else d.log.warn({ memberId: f.data.member_id, err: (err as Error).message }, 'Bitrix24 install refused');
      const p = await d.store.byMember(f.data.member_id);
      // Waiting helps when Bitrix24 was busy, not when it refused (a non-admin, foreign tokens).
      const detail = status >= 500 ? `${(err as Error).message}. Try installing again in a minute.` : `${(err as Error).message}.`;
      return sendPage(d, res, status, installPage({ ok: false, domain: f.data.DOMAIN, detail }), p);
    }
    // An install already accepted from ONAPPINSTALL: its handler queued the binding and the Market
    // check; the page only finishes the install (and cannot be replayed to make us call Bitrix24).
    if (known) return sendPage(d, res, 200, installPage({ ok: true, domain: portal.domain, detail: `InCRM is installed in ${portal.domain}.` }), portal);
    const base = baseUrl(d, req);
    let detail: string;
    try {
      await bindAll(api, portal.portalId, base);
      detail = `The WhatsApp tab was added to lead, deal, contact and company cards of ${portal.domain}.`;
    } catch (err) {
      // A durable job keeps trying; the install itself is done.
      await d.db.repos.jobs.enqueue({ kind: JOB_BITRIX24_BIND, portalId: portal.portalId, payload: { base }, dedupeKey: `bitrix24.bind:${portal.portalId}` });
      d.log.warn({ portalId: portal.portalId, err: (err as Error).message }, 'binding the card tabs failed; retrying in the background');
      detail = `InCRM is installed in ${portal.domain}; the card tabs will appear in a few minutes (Bitrix24 answered: ${(err as Error).message}).`;
    }
    await marketCheck(d.db.repos.jobs, portal.portalId);
    sendPage(d, res, 200, installPage({ ok: true, domain: portal.domain, detail }), portal);
  });

  // Events: verified synchronously (one read and a constant-time compare), answered at once, processed after.
  r.post('/bitrix24/events', async (req, res) => {
    const b = eventBody.safeParse(req.body);
    if (!b.success) throw new AppError(400, 'bad_request', firstIssue(b.error));
    const event = b.data.event.toUpperCase();
    const auth = b.data.auth;
    const stored = await d.store.byMember(auth.member_id);
    const got = auth.application_token ?? '';
    const matches = Boolean(stored?.applicationToken && got && safeEqual(got, stored.applicationToken));
    if (!matches) {
      // Only ONAPPINSTALL may bring a token we do not know yet (first install, reinstall): it is
      // then proven like the install page (the OAuth server, an admin's token) before anything is stored.
      const provable = event === 'ONAPPINSTALL' && Boolean(got) && Boolean(auth.refresh_token || auth.access_token);
      if (!provable) {
        d.log.warn({ memberId: auth.member_id, event, known: Boolean(stored) }, 'Bitrix24 event with a wrong or missing application_token refused');
        throw new AppError(403, 'forbidden', stored?.applicationToken ? 'application_token: does not match' : 'application_token: unknown portal');
      }
    }
    res.status(matches ? 200 : 202).json({ ok: true });
    const base = baseUrl(d, req);
    const data = (Array.isArray(b.data.data) ? {} : (b.data.data ?? {})) as Record<string, unknown>;
    void (async () => {
      if (event === 'ONAPPINSTALL') await onInstallEvent({ ...d, lock }, auth, base, stored);
      // Acted on once Bitrix24 confirms it: the token that matched is in every user's frame too.
      else if (event === 'ONAPPUNINSTALL' && stored) await queueUninstall(d.db.repos.jobs, stored, String(data.CLEAN ?? '0') === '1');
      else if (event === 'ONAPPPAYMENT' && stored) await marketCheck(d.db.repos.jobs, stored.portalId);
      else d.log.debug({ event, memberId: auth.member_id }, 'Bitrix24 event ignored');
    })().catch((err) => d.log.error({ err, event, memberId: auth.member_id }, 'Bitrix24 event processing failed'));
  });

  const frame = (view: 'panel' | 'settings') => async (req: Request, res: Response) => {
    const f = frameForm.safeParse(merged(req));
    if (!f.success) return sendPage(d, res, 400, messagePage('InCRM', `Open InCRM from Bitrix24 (${firstIssue(f.error)}).`, true), null);
    let who: FrameUser;
    try {
      who = await verifyFrameToken(d, f.data.member_id, f.data.AUTH_ID, f.data.DOMAIN);
    } catch (err) {
      const status = err instanceof AppError ? err.status : 500;
      if (status >= 500) d.log.error({ err }, 'Bitrix24 frame failed');
      return sendPage(d, res, status, messagePage('InCRM cannot open', (err as Error).message, true), await d.store.byMember(f.data.member_id));
    }
    // An admin opening the app brings back a portal whose tokens Bitrix24 had refused.
    if (who.admin && who.portal.state === 'revoked' && f.data.REFRESH_ID && d.api) {
      await acceptInstall({ ...d, api: d.api, lock }, {
        memberId: who.portal.memberId,
        domain: who.portal.domain,
        accessToken: f.data.AUTH_ID,
        refreshToken: f.data.REFRESH_ID,
        serverEndpoint: f.data.SERVER_ENDPOINT ?? who.portal.serverEndpoint,
        applicationToken: null,
      }).then(
        () => d.log.info({ portalId: who.portal.portalId }, 'Bitrix24 portal reconnected by an admin'),
        (err) => d.log.warn({ portalId: who.portal.portalId, err: (err as Error).message }, 'reconnecting the portal failed'),
      );
    }
    const t = mint(d, who);
    const html = widgetPage({
      host: 'bitrix24',
      view,
      apiBase: baseUrl(d, req),
      token: t.token,
      tokenExpiresAt: t.expiresAt,
      entity: view === 'panel' ? placementEntity(f.data.PLACEMENT, f.data.PLACEMENT_OPTIONS) : null,
      lang: widgetLang(f.data.LANG),
      admin: who.admin,
      userId: who.userId,
      memberId: who.portal.memberId,
      domain: who.portal.domain,
    });
    sendPage(d, res, 200, html, who.portal);
  };
  r.post('/bitrix24/app', frame('settings'));
  r.post('/bitrix24/placement', frame('panel'));
  // Bitrix24 opens handlers with POST; a GET (someone pasted the URL) gets an explanation.
  for (const p of ['/bitrix24/app', '/bitrix24/placement', '/bitrix24/install']) {
    r.get(p, (_req, res) => sendPage(d, res, 400, messagePage('InCRM for Bitrix24', 'Bitrix24 opens this address itself. Install InCRM in your portal (Applications → Market) and open it from there.'), null));
  }

  // The widget re-exchanges a fresh AUTH_ID (from the SDK) for a core token.
  r.post('/bitrix24/token', async (req, res) => {
    const b = z.object({ member_id: memberId, auth_id: token }).loose().safeParse(req.body);
    if (!b.success) throw new AppError(400, 'bad_request', firstIssue(b.error));
    const who = await verifyFrameToken(d, b.data.member_id, b.data.auth_id);
    const t = mint(d, who);
    res.setHeader('Cache-Control', 'no-store');
    res.json({ token: t.token, expiresAt: t.expiresAt, admin: who.admin, userId: who.userId });
  });
  return r;
}

async function onInstallEvent(d: Bitrix24RouteDeps & { lock: KeyedMutex }, auth: z.infer<typeof eventAuth>, base: string, stored: B24Portal | null): Promise<void> {
  const api = d.api;
  if (!api) return;
  // With the portal already installed and tokens in hand, the event's pair (possibly the very
  // pair the install page spent) is not needed; only the application_token is news.
  if (stored && stored.tokens && stored.state === 'active' && stored.applicationToken && safeEqual(stored.applicationToken, auth.application_token ?? '')) return;
  const dom = auth.domain ?? stored?.domain;
  if (!dom) throw new Error('ONAPPINSTALL without a domain');
  // The event's own `user_id` is a claim like the rest: the installer is whoever Bitrix24 says owns the tokens.
  const out = await acceptInstall({ ...d, api }, {
    memberId: auth.member_id,
    domain: dom,
    accessToken: auth.access_token ?? null,
    refreshToken: auth.refresh_token ?? null,
    serverEndpoint: auth.server_endpoint ?? null,
    applicationToken: auth.application_token ?? null,
  });
  d.log.info({ portalId: out.portal.portalId, memberId: auth.member_id }, 'Bitrix24 ONAPPINSTALL accepted');
  // Install-callback apps have no install page: the tabs are bound from here (a durable job).
  await d.db.repos.jobs.enqueue({ kind: JOB_BITRIX24_BIND, portalId: out.portal.portalId, payload: { base }, dedupeKey: `bitrix24.bind:${out.portal.portalId}` });
  await marketCheck(d.db.repos.jobs, out.portal.portalId);
}

// ---------------------------------------------------------------- /api/v1 and jobs

export function bitrix24ApiRoutes(store: Bitrix24Store, adapter: Bitrix24Adapter, db: Database): RouteDef[] {
  return [
    route({
      method: 'get',
      path: '/bitrix24/options',
      tag: 'bitrix24',
      summary: "For the settings tab (admins): the portal's deal pipelines with their open stages, lead stages, and users",
      access: 'admin',
      responses: { '200': '{ pipelines: [{id, name, main, stages: [{id, name}]}], leadStages: [{id, name}], users: [{id, name, admin}] }', '404': 'not a Bitrix24 portal', '503': 'Bitrix24 unreachable' },
      handler: async ({ principal }) => {
        const portal = await db.repos.portals.get(principal.portalId);
        if (!portal || portal.crm !== 'bitrix24') throw new AppError(404, 'not_found', 'this portal is not a Bitrix24 portal');
        try {
          return await adapter.options(portal);
        } catch (err) {
          if (err instanceof Bitrix24Unavailable || err instanceof Bitrix24NotAuthorized) throw new AppError(503, 'unavailable', err.message);
          throw err;
        }
      },
    }),
    route({
      method: 'get',
      path: '/bitrix24/status',
      tag: 'bitrix24',
      summary: "The portal's connection to Bitrix24: active, revoked (with why and what to do) or uninstalled",
      access: 'user',
      responses: { '200': '{ memberId, domain, state, reason, installedAt, deleteAfter }', '404': 'not a Bitrix24 portal' },
      handler: async ({ principal }) => {
        const p = await store.byPortal(principal.portalId);
        if (!p) throw new AppError(404, 'not_found', 'this portal is not a Bitrix24 portal');
        return {
          memberId: p.memberId,
          domain: p.domain,
          state: p.state,
          reason: p.stateReason,
          installedAt: new Date(p.installedAt).toISOString(),
          deleteAfter: p.deleteAfter ? new Date(p.deleteAfter).toISOString() : null,
        };
      },
    }),
  ];
}

export function bindJob(api: Bitrix24Api | null, log: Logger): JobHandler {
  return {
    run: async (job) => {
      if (!api) throw new Error('Bitrix24 is not configured');
      const done = await bindAll(api, Number(job.portalId), String(job.payload.base));
      log.info({ portalId: job.portalId, ...done }, 'Bitrix24 card tabs and events bound');
    },
  };
}
