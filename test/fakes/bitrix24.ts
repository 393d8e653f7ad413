// A fake Bitrix24 cloud on loopback: the OAuth server (`/oauth/token/`) and the REST endpoint of
// any number of portals (`/rest/<method>`, told apart by the access token, as Bitrix24 itself
// knows the portal from it), speaking Bitrix24's payloads (`result`, `total`, `next`, `time`;
// `error` / `error_description`) and errors (401 expired_token, 503 QUERY_LIMIT_EXCEEDED, 500,
// 400 for "not found"). It enforces the leaky bucket (2 req/s, burst 50 by default) per portal
// and counts requests per second, so tests can see whether a client ever went over it.
// Plain HTTP: the server points BITRIX24_REST_URL and BITRIX24_OAUTH_URL at it.
// Reusable outside tests: `npm run demo` starts one (test/fakes/bitrix24Demo.ts).
import crypto from 'node:crypto';
import http from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import qs from 'qs';

export interface FakeB24User {
  id: number;
  name: string;
  lastName: string;
  admin: boolean;
}

export interface FakeMulti {
  ID: string;
  VALUE_TYPE: string;
  VALUE: string;
  TYPE_ID: 'PHONE';
}

export interface FakeItem {
  ID: number;
  TITLE?: string;
  NAME?: string;
  PHONE?: FakeMulti[];
  ASSIGNED_BY_ID: number;
  COMPANY_ID?: number | null;
  CONTACT_ID?: number | null;
  CATEGORY_ID?: number;
  STAGE_ID?: string;
  STATUS_ID?: string;
  CLOSED?: 'Y' | 'N';
  contactIds?: number[];
  fields: Record<string, unknown>;
}

export interface FakeComment {
  ID: number;
  ENTITY_ID: number;
  ENTITY_TYPE: string;
  COMMENT: string;
  CREATED: string;
}

export interface FakeB24Portal {
  memberId: string;
  domain: string;
  users: FakeB24User[];
  contacts: Map<number, FakeItem>;
  deals: Map<number, FakeItem>;
  leads: Map<number, FakeItem>;
  companies: Map<number, FakeItem>;
  comments: FakeComment[];
  notifications: Array<{ USER_ID: string; MESSAGE: string; TAG?: string; at: number }>;
  placements: Array<{ placement: string; handler: string; title: string }>;
  events: Array<{ event: string; handler: string }>;
  applicationToken: string;
  installed: boolean;
  /** What `app.info` answers about billing (default: a local app, no Market billing). */
  market: { STATUS: string; PAYMENT_EXPIRED: 'Y' | 'N'; DAYS: number | null };
}

export interface FakeBitrix24Options {
  clientId: string;
  clientSecret: string;
  /** Leaky bucket per portal (Bitrix24: 2/s drain, 50 burst). */
  rps?: number;
  burst?: number;
  /** Simulated milliseconds per real millisecond for outages. */
  timeScale?: number;
  accessTtlSec?: number;
}

type Params = Record<string, any>;
class RestError extends Error {
  constructor(readonly status: number, readonly code: string, description: string) {
    super(description);
  }
}

const time = (started: number) => {
  const now = Date.now();
  return {
    start: started / 1000,
    finish: now / 1000,
    duration: (now - started) / 1000,
    processing: (now - started) / 1000,
    date_start: new Date(started).toISOString(),
    date_finish: new Date(now).toISOString(),
    operating_reset_at: Math.floor(now / 1000) + 600,
    operating: 0,
  };
};

export class FakeBitrix24 {
  readonly portals = new Map<string, FakeB24Portal>();
  readonly stats = {
    refreshes: 0,
    refusedRefreshes: 0,
    requests: 0,
    batches: 0,
    outageAnswers: 0,
    /** Of those: QUERY_LIMIT_EXCEEDED answers (the second half of an outage). */
    outageLimitAnswers: 0,
    expiredAnswers: 0,
    /** Requests that found the portal's bucket full (answered QUERY_LIMIT_EXCEEDED). */
    rateLimited: 0,
    writesFailedAfterDoing: 0,
    /** Fullest any portal's leaky bucket got (requests; the limit is `burst`). */
    maxLevel: 0,
  };
  /** Requests per portal per whole second (epoch seconds). */
  readonly perSecond = new Map<string, Map<number, number>>();
  private readonly bucket = new Map<string, { level: number; at: number }>();
  private readonly access = new Map<string, { memberId: string; userId: number; expiresAt: number; app: boolean }>();
  /** Refresh tokens, with the access token issued in the same pair (a refresh invalidates both). */
  private readonly refresh = new Map<string, { memberId: string; userId: number; used: boolean; access: string }>();
  private outage: { until: number; limitFrom: number } | null = null;
  private writeFailures = 0;
  private nextId = 100;
  private server: http.Server | null = null;
  url = '';

  constructor(readonly opts: FakeBitrix24Options) {}

  async start(): Promise<this> {
    this.server = http.createServer(this.app());
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = null;
  }

  get restUrl(): string {
    return `${this.url}/rest/`;
  }

  // ------------------------------------------------------------------ control

  addPortal(name: string, opts: { users?: FakeB24User[] } = {}): FakeB24Portal {
    const p: FakeB24Portal = {
      memberId: crypto.randomBytes(16).toString('hex'),
      domain: `${name}.bitrix24.com`,
      users: opts.users ?? [
        { id: 1, name: 'Ana', lastName: 'Admin', admin: true },
        { id: 7, name: 'Sam', lastName: 'Sales', admin: false },
      ],
      contacts: new Map(),
      deals: new Map(),
      leads: new Map(),
      companies: new Map(),
      comments: [],
      notifications: [],
      placements: [],
      events: [],
      applicationToken: crypto.randomBytes(16).toString('hex'),
      installed: false,
      market: { STATUS: 'L', PAYMENT_EXPIRED: 'N', DAYS: null },
    };
    this.portals.set(p.memberId, p);
    return p;
  }

  private phones(list: string[]): FakeMulti[] {
    return list.map((VALUE) => ({ ID: String(this.nextId++), VALUE_TYPE: 'WORK', VALUE, TYPE_ID: 'PHONE' }));
  }

  addContact(p: FakeB24Portal, c: { name: string; phones: string[]; assigned?: number; companyId?: number }): FakeItem {
    const item: FakeItem = { ID: this.nextId++, NAME: c.name, PHONE: this.phones(c.phones), ASSIGNED_BY_ID: c.assigned ?? 1, COMPANY_ID: c.companyId ?? null, fields: {} };
    p.contacts.set(item.ID, item);
    return item;
  }

  addCompany(p: FakeB24Portal, c: { title: string; phones: string[]; contactIds?: number[] }): FakeItem {
    const item: FakeItem = { ID: this.nextId++, TITLE: c.title, PHONE: this.phones(c.phones), ASSIGNED_BY_ID: 1, contactIds: c.contactIds ?? [], fields: {} };
    p.companies.set(item.ID, item);
    return item;
  }

  addDeal(p: FakeB24Portal, d: { title: string; contactIds: number[]; companyId?: number; assigned?: number; categoryId?: number; stageId?: string; closed?: boolean }): FakeItem {
    const item: FakeItem = {
      ID: this.nextId++,
      TITLE: d.title,
      ASSIGNED_BY_ID: d.assigned ?? 7,
      COMPANY_ID: d.companyId ?? null,
      CONTACT_ID: d.contactIds[0] ?? null,
      CATEGORY_ID: d.categoryId ?? 0,
      STAGE_ID: d.stageId ?? 'NEW',
      CLOSED: d.closed ? 'Y' : 'N',
      contactIds: [...d.contactIds],
      fields: {},
    };
    p.deals.set(item.ID, item);
    return item;
  }

  /** A fresh token pair as Bitrix24 hands it to the app (install) or to a user's frame. */
  issuePair(p: FakeB24Portal, userId: number, app: boolean): { access_token: string; refresh_token: string; expires_in: number } {
    const access_token = crypto.randomBytes(24).toString('hex');
    const refresh_token = crypto.randomBytes(24).toString('hex');
    const ttl = this.opts.accessTtlSec ?? 3600;
    this.access.set(access_token, { memberId: p.memberId, userId, expiresAt: Date.now() + ttl * 1000, app });
    this.refresh.set(refresh_token, { memberId: p.memberId, userId, used: false, access: access_token });
    return { access_token, refresh_token, expires_in: ttl };
  }

  /**
   * One installation by the admin (user 1): the install page POST and the ONAPPINSTALL event
   * carry the same token pair, as Bitrix24 sends them. Returns both bodies.
   */
  installation(p: FakeB24Portal, opts: { newApplicationToken?: boolean } = {}) {
    if (opts.newApplicationToken) p.applicationToken = crypto.randomBytes(16).toString('hex');
    p.installed = true;
    const pair = this.issuePair(p, 1, true);
    const appSid = crypto.randomBytes(16).toString('hex');
    const query = { DOMAIN: p.domain, PROTOCOL: '1', LANG: 'en', APP_SID: appSid };
    const form = {
      AUTH_ID: pair.access_token,
      AUTH_EXPIRES: String(pair.expires_in),
      REFRESH_ID: pair.refresh_token,
      SERVER_ENDPOINT: 'https://oauth.bitrix.info/rest/',
      member_id: p.memberId,
      status: 'L',
      PLACEMENT: 'DEFAULT',
      PLACEMENT_OPTIONS: '{"any":"1\\/"}',
      APPLICATION_TOKEN: p.applicationToken,
    };
    const now = Math.floor(Date.now() / 1000);
    const event = {
      event: 'ONAPPINSTALL',
      event_handler_id: '0',
      data: { VERSION: '1', ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID: 'en' },
      ts: String(now),
      auth: {
        access_token: pair.access_token,
        expires: String(now + pair.expires_in),
        expires_in: String(pair.expires_in),
        scope: 'crm,im,placement,user',
        domain: p.domain,
        server_endpoint: 'https://oauth.bitrix.info/rest/',
        status: 'L',
        client_endpoint: `https://${p.domain}/rest/`,
        member_id: p.memberId,
        user_id: '1',
        refresh_token: pair.refresh_token,
        application_token: p.applicationToken,
      },
    };
    return { query, form, event, pair };
  }

  /** ONAPPPAYMENT, as Bitrix24 posts it when the portal paid for the app in the Market. */
  paymentEvent(p: FakeB24Portal) {
    const auth = { domain: p.domain, server_endpoint: 'https://oauth.bitrix.info/rest/', status: p.market.STATUS, client_endpoint: `https://${p.domain}/rest/`, member_id: p.memberId, application_token: p.applicationToken };
    return { event: 'ONAPPPAYMENT', event_handler_id: '0', data: { CODE: 'incrm.whatsapp', VERSION: '1', STATUS: p.market.STATUS, PAYMENT_EXPIRED: p.market.PAYMENT_EXPIRED, DAYS: String(p.market.DAYS ?? '') }, ts: String(Math.floor(Date.now() / 1000)), auth };
  }

  uninstallEvent(p: FakeB24Portal, opts: { clean?: boolean; applicationToken?: string | null } = {}) {
    p.installed = false;
    const auth: Record<string, string> = { domain: p.domain, server_endpoint: 'https://oauth.bitrix.info/rest/', status: 'L', client_endpoint: `https://${p.domain}/rest/`, member_id: p.memberId };
    if (opts.applicationToken !== null) auth.application_token = opts.applicationToken ?? p.applicationToken;
    return { event: 'ONAPPUNINSTALL', event_handler_id: '0', data: { LANGUAGE_ID: 'en', CLEAN: opts.clean ? '1' : '0' }, ts: String(Math.floor(Date.now() / 1000)), auth };
  }

  /** What Bitrix24 POSTs into a card tab's frame for this user (any user: the app token comes along, reference §3.1). */
  frameForm(p: FakeB24Portal, userId: number, placement: string, options: Record<string, string>, lang = 'en') {
    const pair = this.issuePair(p, userId, false);
    return {
      AUTH_ID: pair.access_token,
      AUTH_EXPIRES: String(pair.expires_in),
      REFRESH_ID: pair.refresh_token,
      APPLICATION_TOKEN: p.applicationToken,
      member_id: p.memberId,
      status: 'L',
      PLACEMENT: placement,
      PLACEMENT_OPTIONS: JSON.stringify(options),
      DOMAIN: p.domain,
      PROTOCOL: '1',
      LANG: lang,
      APP_SID: crypto.randomBytes(16).toString('hex'),
    };
  }

  expireAccessTokens(p: FakeB24Portal): void {
    for (const t of this.access.values()) if (t.memberId === p.memberId) t.expiresAt = 0;
  }

  revokeRefreshTokens(p: FakeB24Portal): void {
    for (const t of this.refresh.values()) if (t.memberId === p.memberId) t.used = true;
  }

  /** Down for `simulatedMs` (scaled by timeScale) from the next request: 5xx (503, 500, 502) for the first half, then QUERY_LIMIT_EXCEEDED. */
  down(simulatedMs: number): void {
    // The clock starts with the first request that meets the outage, so a slow machine still sees both phases.
    this.pendingOutage = simulatedMs / (this.opts.timeScale ?? 1);
  }

  private pendingOutage: number | null = null;

  private startOutage(): void {
    if (this.pendingOutage === null) return;
    const real = this.pendingOutage;
    this.pendingOutage = null;
    this.outage = { until: Date.now() + real, limitFrom: Date.now() + real / 2 };
  }

  get isDown(): boolean {
    return this.pendingOutage !== null || (this.outage !== null && Date.now() < this.outage.until);
  }

  /** The next `n` creating calls (`*.add`) are carried out and then answered 500, as a proxy timeout would. */
  failWritesAfterDoing(n: number): void {
    this.writeFailures = n;
  }

  /**
   * Token refreshes are carried out at once (the old pair is spent) but answered `ms` later, as
   * when the OAuth server or the network between is slow: a client that stops listening loses
   * the new pair. 0 turns it off.
   */
  delayRefreshAnswers(ms: number): void {
    this.refreshAnswerDelayMs = ms;
  }

  private refreshAnswerDelayMs = 0;

  /** Highest number of requests one portal made within one whole second. */
  peakPerSecond(memberId?: string): number {
    let peak = 0;
    for (const [m, secs] of this.perSecond) if (!memberId || m === memberId) for (const n of secs.values()) peak = Math.max(peak, n);
    return peak;
  }

  // ------------------------------------------------------------------ server

  private count(memberId: string): boolean {
    const rps = this.opts.rps ?? 2;
    const burst = this.opts.burst ?? 50;
    const now = Date.now();
    const b = this.bucket.get(memberId) ?? { level: 0, at: now };
    b.level = Math.max(0, b.level - ((now - b.at) * rps) / 1000);
    b.at = now;
    this.bucket.set(memberId, b);
    const sec = Math.floor(now / 1000);
    const secs = this.perSecond.get(memberId) ?? new Map<number, number>();
    secs.set(sec, (secs.get(sec) ?? 0) + 1);
    this.perSecond.set(memberId, secs);
    // Small tolerance for timer rounding between two processes' clocks.
    if (b.level + 1 > burst + 0.05) return false;
    b.level += 1;
    this.stats.maxLevel = Math.max(this.stats.maxLevel, b.level);
    return true;
  }

  private app(): express.Express {
    const app = express();
    app.set('query parser', 'extended');
    // The SDK joins `client_endpoint` (ending in /rest/) and `/method`: nginx merges the slashes.
    app.use((req, _res, next) => {
      req.url = req.url.replace(/^\/{2,}|(?<=\/rest)\/{2,}/g, '/');
      next();
    });
    app.use(express.json({ limit: '5mb' }));
    app.use(express.urlencoded({ extended: true, limit: '5mb' }));

    const oauth = (req: Request, res: Response) => {
      const b = { ...(req.query as Params), ...(req.body as Params) };
      if (b.client_id !== this.opts.clientId || b.client_secret !== this.opts.clientSecret) return void res.status(401).json({ error: 'invalid_client', error_description: 'Invalid client credentials' });
      if (b.grant_type !== 'refresh_token') return void res.status(400).json({ error: 'invalid_request', error_description: 'Unsupported grant type' });
      const r = this.refresh.get(String(b.refresh_token));
      if (!r || r.used) {
        this.stats.refusedRefreshes++;
        return void res.status(400).json({ error: 'invalid_grant', error_description: 'Invalid refresh token' });
      }
      const p = this.portals.get(r.memberId)!;
      if (!p.installed) {
        this.stats.refusedRefreshes++;
        return void res.status(401).json({ error: 'invalid_client', error_description: 'Application is not installed' });
      }
      r.used = true;
      // As the older official docs say (reference §4.3): after a refresh the old refresh token
      // and the access token issued with it are both invalid. Code that still holds the old
      // access token (an install page whose pair the ONAPPINSTALL handler refreshed) must cope.
      this.access.delete(r.access);
      this.stats.refreshes++;
      const pair = this.issuePair(p, r.userId, true);
      const answer = () => res.json({
        access_token: pair.access_token,
        expires: Math.floor(Date.now() / 1000) + pair.expires_in,
        expires_in: pair.expires_in,
        scope: 'crm,im,placement,user',
        domain: p.domain,
        server_endpoint: 'https://oauth.bitrix.info/rest/',
        status: 'L',
        client_endpoint: `https://${p.domain}/rest/`,
        member_id: p.memberId,
        user_id: r.userId,
        refresh_token: pair.refresh_token,
      });
      if (this.refreshAnswerDelayMs > 0) setTimeout(answer, this.refreshAnswerDelayMs);
      else answer();
    };
    // For the emulated portal page (/demo/bitrix24): what Bitrix24's own page would know — a fresh
    // frame token for a user, the card, and its timeline. Loopback demo only; CORS for the page.
    const demo = express.Router();
    demo.use((req, res, next) => {
      res.setHeader('Access-Control-Allow-Origin', '*');
      next();
    });
    demo.get('/demo/portals/:member/frame', (req, res) => {
      const p = this.portals.get(req.params.member);
      if (!p) return void res.status(404).json({ error: 'NOT_FOUND' });
      const user = Number(req.query.user ?? 7);
      res.json(this.frameForm(p, user, String(req.query.placement ?? 'CRM_DEAL_DETAIL_TAB'), { ID: String(req.query.id ?? '') }, String(req.query.lang ?? 'en')));
    });
    demo.get('/demo/portals/:member/card', (req, res) => {
      const p = this.portals.get(req.params.member);
      const deal = p?.deals.get(Number(req.query.id));
      if (!p || !deal) return void res.status(404).json({ error: 'NOT_FOUND' });
      const contacts = (deal.contactIds ?? []).map((id) => p.contacts.get(id)).filter(Boolean);
      const comments = p.comments.filter((c) => (c.ENTITY_TYPE === 'deal' && c.ENTITY_ID === deal.ID) || (c.ENTITY_TYPE === 'contact' && (deal.contactIds ?? []).includes(c.ENTITY_ID)));
      res.json({
        domain: p.domain,
        deal: this.itemJson('deal', deal),
        contacts: contacts.map((c) => this.itemJson('contact', c!)),
        timeline: comments.sort((a, b) => b.ID - a.ID).slice(0, 100),
        notifications: p.notifications.slice(-20).reverse(),
        users: p.users,
      });
    });
    app.use(demo);

    app.post('/oauth/token/', oauth);
    app.get('/oauth/token/', oauth);

    app.post('/rest/:method', (req, res) => {
      const started = Date.now();
      const method = String(req.params.method).replace(/\.json$/, '');
      const params = { ...(req.query as Params), ...(req.body as Params) };
      const token = String(params.auth ?? '');
      const t = this.access.get(token);
      if (!t) return void res.status(401).json({ error: 'invalid_token', error_description: 'The access token provided is invalid.' });
      const p = this.portals.get(t.memberId)!;
      this.stats.requests++;
      const within = this.count(p.memberId);
      this.startOutage();
      if (this.outage && Date.now() < this.outage.until) {
        this.stats.outageAnswers++;
        if (!within) this.stats.rateLimited++;
        if (Date.now() >= this.outage.limitFrom) this.stats.outageLimitAnswers++;
        if (Date.now() >= this.outage.limitFrom) return void res.status(503).json({ error: 'QUERY_LIMIT_EXCEEDED', error_description: 'Too many requests' });
        const n = this.stats.outageAnswers % 3;
        if (n === 0) return void res.status(500).json({ error: 'INTERNAL_SERVER_ERROR', error_description: 'Internal server error' });
        return void res.status(n === 1 ? 503 : 502).type('text/html').send('<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>');
      }
      if (!within) {
        this.stats.rateLimited++;
        return void res.status(503).json({ error: 'QUERY_LIMIT_EXCEEDED', error_description: 'Too many requests' });
      }
      if (t.expiresAt <= Date.now()) {
        this.stats.expiredAnswers++;
        return void res.status(401).json({ error: 'expired_token', error_description: 'The access token provided has expired.' });
      }
      if (!p.installed && t.app) return void res.status(401).json({ error: 'NO_AUTH_FOUND', error_description: 'Wrong authorization data' });
      const writes = { did: false };
      try {
        if (method === 'batch') {
          this.stats.batches++;
          const cmd = (params.cmd ?? {}) as Record<string, string>;
          const out = { result: {} as Params, result_error: {} as Params, result_total: {} as Params, result_next: {} as Params, result_time: {} as Params };
          for (const [key, row] of Object.entries(cmd)) {
            const [m, q = ''] = String(row).split('?');
            const s = Date.now();
            try {
              const r = this.run(p, t.userId, m!, qs.parse(q, { depth: 10, arrayLimit: 100 }) as Params, writes);
              out.result[key] = r.result;
              if (r.total !== undefined) out.result_total[key] = r.total;
              if (r.next !== undefined) out.result_next[key] = r.next;
            } catch (err) {
              if (!(err instanceof RestError)) throw err;
              out.result_error[key] = { error: err.code, error_description: err.message };
            }
            out.result_time[key] = time(s);
          }
          const empty = (o: Params) => (Object.keys(o).length ? o : []);
          return void this.answer(res, writes, { result: { result: empty(out.result), result_error: empty(out.result_error), result_total: empty(out.result_total), result_next: empty(out.result_next), result_time: empty(out.result_time) }, time: time(started) });
        }
        const r = this.run(p, t.userId, method, params, writes);
        this.answer(res, writes, { result: r.result, ...(r.total !== undefined ? { total: r.total } : {}), ...(r.next !== undefined ? { next: r.next } : {}), time: time(started) });
      } catch (err) {
        if (err instanceof RestError) return void res.status(err.status).json({ error: err.code, error_description: err.message });
        throw err;
      }
    });
    app.use((_req: Request, res: Response) => res.status(404).json({ error: 'ERROR_METHOD_NOT_FOUND', error_description: 'Method not found!' }));
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => res.status(500).json({ error: 'INTERNAL_SERVER_ERROR', error_description: String(err) }));
    return app;
  }

  private answer(res: Response, writes: { did: boolean }, body: unknown): void {
    if (writes.did && this.writeFailures > 0) {
      this.writeFailures--;
      this.stats.writesFailedAfterDoing++;
      return void res.status(500).type('text/html').send('<html><body><h1>500 Internal Server Error</h1></body></html>');
    }
    res.json(body);
  }

  private list<T>(items: T[], params: Params): { result: T[]; total: number; next?: number } {
    const start = Number(params.start ?? 0) || 0;
    const page = items.slice(start, start + 50);
    return { result: page, total: items.length, ...(start + 50 < items.length ? { next: start + 50 } : {}) };
  }

  private itemJson(kind: string, i: FakeItem): Params {
    return {
      ID: String(i.ID),
      ...(i.TITLE !== undefined ? { TITLE: i.TITLE } : {}),
      ...(i.NAME !== undefined ? { NAME: i.NAME } : {}),
      ...(kind !== 'deal' ? { PHONE: i.PHONE ?? [], HAS_PHONE: (i.PHONE ?? []).length ? 'Y' : 'N' } : {}),
      ASSIGNED_BY_ID: String(i.ASSIGNED_BY_ID),
      ...(kind === 'deal' || kind === 'lead' || kind === 'contact' ? { COMPANY_ID: i.COMPANY_ID ? String(i.COMPANY_ID) : null } : {}),
      ...(kind === 'deal' || kind === 'lead' ? { CONTACT_ID: i.CONTACT_ID ? String(i.CONTACT_ID) : null } : {}),
      ...(kind === 'deal' ? { CATEGORY_ID: String(i.CATEGORY_ID ?? 0), STAGE_ID: i.STAGE_ID, CLOSED: i.CLOSED ?? 'N' } : {}),
      ...(kind === 'lead' ? { STATUS_ID: i.STATUS_ID ?? 'NEW', STATUS_SEMANTIC_ID: 'P' } : {}),
      ...i.fields,
    };
  }

  private store(p: FakeB24Portal, kind: string): Map<number, FakeItem> {
    const m = ({ deal: p.deals, lead: p.leads, contact: p.contacts, company: p.companies } as Record<string, Map<number, FakeItem>>)[kind];
    if (!m) throw new RestError(400, 'ERROR_METHOD_NOT_FOUND', 'Method not found!');
    return m;
  }

  private run(p: FakeB24Portal, userId: number, method: string, params: Params, writes: { did: boolean }): { result: unknown; total?: number; next?: number } {
    const user = p.users.find((u) => u.id === userId)!;
    const needAdmin = () => {
      if (!user.admin) throw new RestError(403, 'ACCESS_DENIED', 'Access denied! Application context required and admin rights');
    };
    const fields = (params.fields ?? params.FIELDS ?? {}) as Params;
    let m: RegExpMatchArray | null;
    switch (method) {
      case 'user.current':
        return { result: { ID: String(user.id), NAME: user.name, LAST_NAME: user.lastName, EMAIL: `${user.id}@example.test`, ACTIVE: true } };
      case 'user.admin':
        return { result: user.admin };
      case 'profile':
        return { result: { ID: String(user.id), ADMIN: user.admin, NAME: user.name, LAST_NAME: user.lastName } };
      case 'user.get':
        return this.list(
          p.users.map((u) => ({ ID: String(u.id), ACTIVE: true, NAME: u.name, LAST_NAME: u.lastName, EMAIL: `${u.id}@example.test` })),
          params,
        );
      case 'app.info':
        return { result: { ID: 42, CODE: 'local.incrm', VERSION: 1, ...p.market, INSTALLED: p.installed, LANGUAGE_ID: 'en', LICENSE: 'en_pro100' } };
      case 'placement.get':
        return { result: p.placements.map((x) => ({ placement: x.placement, userId: 0, handler: x.handler, options: [], title: x.title, description: '', langAll: {} })) };
      case 'placement.bind': {
        needAdmin();
        const code = String(params.PLACEMENT ?? '');
        const handler = String(params.HANDLER ?? '');
        if (!code || !handler) throw new RestError(400, 'ERROR_ARGUMENT', 'Argument PLACEMENT and HANDLER required');
        if (p.placements.some((x) => x.placement === code && x.handler === handler)) throw new RestError(400, 'ERROR_CORE', 'Unable to set placement handler: Handler already binded');
        p.placements.push({ placement: code, handler, title: String(params.TITLE ?? '') });
        return { result: true };
      }
      case 'placement.unbind': {
        needAdmin();
        const before = p.placements.length;
        p.placements = p.placements.filter((x) => !(x.placement === params.PLACEMENT && (!params.HANDLER || x.handler === params.HANDLER)));
        return { result: { count: before - p.placements.length } };
      }
      case 'event.get':
        return { result: p.events.map((e) => ({ event: e.event, handler: e.handler, auth_type: '0', offline: 0 })) };
      case 'event.bind': {
        needAdmin();
        const ev = String(params.event ?? params.EVENT ?? '').toUpperCase();
        const handler = String(params.handler ?? params.HANDLER ?? '');
        if (p.events.some((e) => e.event === ev && e.handler === handler)) throw new RestError(400, 'ERROR_HANDLER_ALREADY_EXIST', 'Handler already binded');
        p.events.push({ event: ev, handler });
        return { result: true };
      }
      case 'event.unbind': {
        const before = p.events.length;
        p.events = p.events.filter((e) => !(e.event === String(params.event).toUpperCase() && e.handler === params.handler));
        return { result: { count: before - p.events.length } };
      }
      case 'crm.duplicate.findbycomm': {
        const values = ([] as unknown[]).concat(params.values ?? []).map((v) => String(v).replace(/\D/g, ''));
        if (values.length > 20) throw new RestError(400, 'ERROR_ARGUMENT', 'Too many values');
        const hits = [...p.contacts.values()].filter((c) => (c.PHONE ?? []).some((ph) => values.includes(ph.VALUE.replace(/\D/g, '')))).map((c) => c.ID);
        return { result: hits.length ? { CONTACT: hits } : [] };
      }
      case 'crm.timeline.comment.add': {
        // Since crm 23.100.0 only lowercase `fields` is accepted here (reference §3.9): FIELDS is ignored.
        const f = (params.fields ?? null) as Params | null;
        if (!f) throw new RestError(400, 'ERROR_ARGUMENT', 'Required parameter "fields" is missing');
        const type = String(f.ENTITY_TYPE ?? '').toLowerCase();
        const id = Number(f.ENTITY_ID);
        if (!this.store(p, type).has(id)) throw new RestError(400, 'ERROR_ARGUMENT', 'Entity not found');
        writes.did = true;
        const c: FakeComment = { ID: this.nextId++, ENTITY_ID: id, ENTITY_TYPE: type, COMMENT: String(f.COMMENT ?? ''), CREATED: new Date().toISOString() };
        p.comments.push(c);
        return { result: c.ID };
      }
      case 'crm.timeline.comment.list': {
        const f = (params.filter ?? {}) as Params;
        const list = p.comments
          .filter((c) => String(c.ENTITY_ID) === String(f.ENTITY_ID) && c.ENTITY_TYPE === String(f.ENTITY_TYPE).toLowerCase())
          .sort((a, b) => b.ID - a.ID)
          .map((c) => ({ ID: String(c.ID), ENTITY_ID: String(c.ENTITY_ID), ENTITY_TYPE: c.ENTITY_TYPE, COMMENT: c.COMMENT, CREATED: c.CREATED }));
        return this.list(list, params);
      }
      case 'im.notify.system.add': {
        const to = String(params.USER_ID ?? '');
        if (!p.users.some((u) => String(u.id) === to)) throw new RestError(400, 'USER_ID_EMPTY', 'Recipient not found');
        if (params.TAG) p.notifications = p.notifications.filter((n) => !(n.TAG === params.TAG && n.USER_ID === to));
        p.notifications.push({ USER_ID: to, MESSAGE: String(params.MESSAGE ?? ''), ...(params.TAG ? { TAG: String(params.TAG) } : {}), at: Date.now() });
        return { result: this.nextId++ };
      }
      case 'crm.category.list':
        return { result: { categories: [{ id: 0, name: 'General', sort: 100, entityTypeId: 2, isDefault: 'Y' }, { id: 3, name: 'WhatsApp', sort: 200, entityTypeId: 2, isDefault: 'N' }] } };
      case 'crm.status.list': {
        const entity = String(((params.filter ?? {}) as Params).ENTITY_ID ?? '');
        const st = (STATUS_ID: string, NAME: string, SORT: number, SEMANTICS: string | null = null) => ({ ID: String(this.nextId++), ENTITY_ID: entity, STATUS_ID, NAME, SORT: String(SORT), SEMANTICS });
        const lists: Record<string, unknown[]> = {
          STATUS: [st('NEW', 'Unassigned', 10), st('IN_PROCESS', 'In progress', 20), st('CONVERTED', 'Good lead', 60, 'S'), st('JUNK', 'Junk lead', 70, 'F')],
          DEAL_STAGE: [st('NEW', 'New', 10), st('PREPARATION', 'Document preparation', 20), st('WON', 'Deal won', 60, 'S'), st('LOSE', 'Deal lost', 70, 'F')],
          DEAL_STAGE_3: [st('C3:NEW', 'New chat', 10), st('C3:WON', 'Won', 60, 'S'), st('C3:LOSE', 'Lost', 70, 'F')],
        };
        return { result: lists[entity] ?? [] };
      }
    }
    if ((m = /^crm\.(deal|lead|contact|company)\.get$/.exec(method))) {
      const item = this.store(p, m[1]!).get(Number(params.id ?? params.ID));
      if (!item) throw new RestError(400, 'NOT_FOUND', 'Not found');
      return { result: this.itemJson(m[1]!, item) };
    }
    if ((m = /^crm\.(deal|lead|company)\.contact\.items\.get$/.exec(method))) {
      const item = this.store(p, m[1]!).get(Number(params.id ?? params.ID));
      if (!item) throw new RestError(400, 'NOT_FOUND', 'Not found');
      const ids = item.contactIds ?? (item.CONTACT_ID ? [item.CONTACT_ID] : []);
      return { result: ids.map((id, i) => ({ CONTACT_ID: id, SORT: (i + 1) * 10, ROLE_ID: 0, IS_PRIMARY: i === 0 ? 'Y' : 'N' })) };
    }
    if ((m = /^crm\.(deal|lead)\.list$/.exec(method))) {
      const f = (params.filter ?? {}) as Params;
      let list = [...this.store(p, m[1]!).values()];
      if (f.CONTACT_ID !== undefined) list = list.filter((i) => (i.contactIds ?? [i.CONTACT_ID]).map(String).includes(String(f.CONTACT_ID)));
      if (f.CLOSED !== undefined) list = list.filter((i) => (i.CLOSED ?? 'N') === f.CLOSED);
      list.sort((a, b) => b.ID - a.ID);
      return this.list(list.map((i) => ({ ID: String(i.ID) })), params);
    }
    if ((m = /^crm\.(deal|lead|contact)\.add$/.exec(method))) {
      const kind = m[1]!;
      const phones = ([] as Params[]).concat(fields.PHONE ?? []).map((x) => String(x.VALUE ?? ''));
      const item: FakeItem = {
        ID: this.nextId++,
        ...(fields.TITLE !== undefined ? { TITLE: String(fields.TITLE) } : {}),
        ...(fields.NAME !== undefined ? { NAME: String(fields.NAME) } : {}),
        ...(kind !== 'deal' ? { PHONE: this.phones(phones) } : {}),
        ASSIGNED_BY_ID: Number(fields.ASSIGNED_BY_ID ?? userId),
        CONTACT_ID: fields.CONTACT_ID ? Number(fields.CONTACT_ID) : null,
        contactIds: fields.CONTACT_ID ? [Number(fields.CONTACT_ID)] : [],
        ...(kind === 'deal' ? { CATEGORY_ID: Number(fields.CATEGORY_ID ?? 0), STAGE_ID: String(fields.STAGE_ID ?? 'NEW'), CLOSED: 'N' as const } : {}),
        ...(kind === 'lead' ? { STATUS_ID: String(fields.STATUS_ID ?? 'NEW') } : {}),
        fields: { SOURCE_ID: fields.SOURCE_ID ?? null },
      };
      writes.did = true;
      this.store(p, kind).set(item.ID, item);
      return { result: item.ID };
    }
    throw new RestError(404, 'ERROR_METHOD_NOT_FOUND', `Method not found: ${method}`);
  }
}

export async function startFakeBitrix24(opts: FakeBitrix24Options): Promise<FakeBitrix24> {
  return new FakeBitrix24(opts).start();
}
