// A fake Kommo (amoCRM) account server: OAuth 2 and the parts of REST v4 InCRM uses, over TLS
// with its own test certificate authority, speaking Kommo's payloads and errors (401 expired or
// revoked, 429, 5xx, 204 for "nothing found"). Several accounts share one server and are told
// apart by the Host header (`<subdomain>.kommo.com`), as amocrm-js sends it.
// Reusable outside tests: `npm run demo` can start one and point KOMMO_API_BASE at it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import { generate } from 'selfsigned';
import { signKommoJwt } from '../../server/adapters/crm/kommo/jwt';

export interface FakeUser {
  id: number;
  name: string;
  is_admin: boolean;
}

type Field = { field_id: number; field_name: string; field_code: string; field_type: string; values: Array<{ value: string; enum_id?: number; enum_code?: string }> };

export interface FakeContact {
  id: number;
  name: string;
  responsible_user_id: number;
  custom_fields_values: Field[] | null;
  leadIds: number[];
  companyId: number | null;
}

export interface FakeLead {
  id: number;
  name: string;
  pipeline_id: number;
  status_id: number;
  responsible_user_id: number;
  tags: string[];
  contactIds: number[];
  companyId: number | null;
}

export interface FakeCompany {
  id: number;
  name: string;
  responsible_user_id: number;
  custom_fields_values: Field[] | null;
}

export interface FakeNote {
  id: number;
  entity_type: 'leads' | 'contacts' | 'companies';
  entity_id: number;
  note_type: string;
  params: Record<string, unknown>;
  created_at: number;
  updated_at: number;
}

/**
 * How a note creation goes wrong after Kommo has already stored the note, so the caller cannot
 * know it worked: `error` answers 500; `late` stores the note only after `ms` and answers then (a
 * caller with a shorter timeout gives up while the request still runs); `hang` stores it at once
 * and never answers.
 */
export type NoteFault = { kind: 'error' } | { kind: 'late'; ms: number } | { kind: 'hang' };

export interface FakeAccount {
  id: number;
  name: string;
  subdomain: string;
  domain: string;
  users: FakeUser[];
  contacts: Map<number, FakeContact>;
  leads: Map<number, FakeLead>;
  companies: Map<number, FakeCompany>;
  notes: FakeNote[];
}

export interface FakeKommoOptions {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** Lifetime of access tokens it issues (Kommo: 86400). */
  accessTtlSec?: number;
  /** The fake's own clock (token expiry, JWT times). */
  now?: () => number;
  /** Simulated milliseconds per real millisecond for outages (tests: 5 simulated minutes in 2 s). */
  timeScale?: number;
  /**
   * REST requests per second per account before Kommo answers 429 (Kommo: 7). Counted on arrival
   * over a sliding second; the request that would be one too many is refused and not counted.
   */
  maxRps?: number;
}

let caPromise: Promise<{ caCert: string; caFile: string; key: string; cert: string }> | null = null;

/** One test CA and one server certificate for every Kommo account host, made once per process. */
export function testCertificates() {
  caPromise ??= (async () => {
    const ca = await generate([{ name: 'commonName', value: 'InCRM test CA' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }],
    });
    const leaf = await generate([{ name: 'commonName', value: 'kommo.test' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      ca: { key: ca.private, cert: ca.cert },
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: '*.kommo.com' },
            { type: 2, value: '*.amocrm.ru' },
            { type: 2, value: '*.amocrm.com' },
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    });
    const caFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'incrm-kommo-ca-')), 'ca.pem');
    fs.writeFileSync(caFile, ca.cert);
    return { caCert: ca.cert, caFile, key: leaf.private, cert: leaf.cert };
  })();
  return caPromise;
}

const PHONE_FIELD_ID = 264_001;
const problem = (res: Response, status: number, body: Record<string, unknown>) =>
  res.status(status).type('application/problem+json').send(JSON.stringify({ ...body, status }));
const hal = (res: Response, body: unknown, status = 200) => res.status(status).type('application/hal+json').send(JSON.stringify(body));

export class FakeKommo {
  readonly accounts = new Map<string, FakeAccount>();
  /** What happened, for assertions. */
  readonly stats = {
    codeExchanges: 0,
    refreshes: 0,
    revokedRefreshes: 0,
    apiCalls: 0,
    outageAnswers: 0,
    expiredAnswers: 0,
    /** REST requests refused for going over `maxRps`. */
    rateLimited: 0,
    /** Most REST requests one account sent within any second (refused ones included). */
    peakPerSecond: 0,
  };
  private readonly arrivals = new Map<string, { all: number[]; accepted: number[] }>();
  private readonly codes = new Map<string, { domain: string; used: boolean }>();
  private readonly access = new Map<string, { domain: string; expiresAt: number; revoked: boolean }>();
  private readonly refresh = new Map<string, { domain: string; used: boolean }>();
  private outageUntil = 0;
  private outageN = 0;
  private outageHeld = false;
  private readonly noteFaults: NoteFault[] = [];
  private readonly refreshDelays: number[] = [];
  private nextId = 1000;
  private server: https.Server | null = null;
  url = '';
  caFile = '';
  readonly now: () => number;

  constructor(readonly opts: FakeKommoOptions) {
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<this> {
    const certs = await testCertificates();
    this.caFile = certs.caFile;
    this.server = https.createServer({ key: certs.key, cert: certs.cert }, this.app());
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = null;
  }

  // ------------------------------------------------------------------ control

  addAccount(subdomain: string, opts: { id?: number; name?: string; tld?: 'kommo.com' | 'amocrm.ru' | 'amocrm.com'; users?: FakeUser[] } = {}): FakeAccount {
    const domain = `${subdomain}.${opts.tld ?? 'kommo.com'}`;
    const acc: FakeAccount = {
      id: opts.id ?? 30_000_000 + this.accounts.size + 1,
      name: opts.name ?? `${subdomain} Ltd`,
      subdomain,
      domain,
      users: opts.users ?? [
        { id: 501, name: 'Ana Admin', is_admin: true },
        { id: 502, name: 'Sam Sales', is_admin: false },
      ],
      contacts: new Map(),
      leads: new Map(),
      companies: new Map(),
      notes: [],
    };
    this.accounts.set(domain, acc);
    return acc;
  }

  /** What Kommo would send to the redirect URI when an admin installs the widget. */
  issueCode(domain: string): string {
    const code = 'def50200' + crypto.randomBytes(24).toString('hex');
    this.codes.set(code, { domain, used: false });
    return code;
  }

  /** Every access token of the account expires now (the next call answers 401). */
  expireAccessTokens(domain: string): void {
    for (const t of this.access.values()) if (t.domain === domain) t.expiresAt = 0;
  }

  /** Every refresh token of the account counts as used (as if another process had spent it). */
  revokeRefreshTokens(domain: string): void {
    for (const t of this.refresh.values()) if (t.domain === domain) t.used = true;
  }

  /** What Kommo does when an admin disables the integration: every token of the account stops working (API → 401). */
  uninstall(domain: string): void {
    for (const t of this.access.values()) if (t.domain === domain) t.revoked = true;
    this.revokeRefreshTokens(domain);
  }

  /**
   * Kommo down for `simulatedMs` (scaled by `timeScale`): answers 429, 500, 502, 503 in turn.
   * With `hold`, it also stays down until `release()`, so a test on a busy machine can finish sending
   * its burst while Kommo is down however slowly the burst goes.
   */
  outage(simulatedMs: number, opts: { hold?: boolean } = {}): void {
    this.outageUntil = Date.now() + simulatedMs / (this.opts.timeScale ?? 1);
    this.outageHeld = opts.hold === true;
  }

  release(): void {
    this.outageHeld = false;
  }

  get down(): boolean {
    return this.outageHeld || Date.now() < this.outageUntil;
  }

  /** The next note creations (one request each, in order) store their notes and then fail this way. */
  failNoteCreates(...faults: NoteFault[]): void {
    this.noteFaults.push(...faults);
  }

  /** The next refreshes rotate the pair at once (the old refresh token is spent) but answer only after these delays. */
  delayRefreshes(...ms: number[]): void {
    this.refreshDelays.push(...ms);
  }

  addContact(acc: FakeAccount, c: { name: string; phones: string[]; responsible?: number }): FakeContact {
    const contact: FakeContact = {
      id: this.nextId++,
      name: c.name,
      responsible_user_id: c.responsible ?? acc.users[0]!.id,
      custom_fields_values: c.phones.length
        ? [{ field_id: PHONE_FIELD_ID, field_name: 'Phone', field_code: 'PHONE', field_type: 'multitext', values: c.phones.map((value) => ({ value, enum_id: 1, enum_code: 'WORK' })) }]
        : null,
      leadIds: [],
      companyId: null,
    };
    acc.contacts.set(contact.id, contact);
    return contact;
  }

  addCompany(acc: FakeAccount, c: { name: string; phones: string[] }): FakeCompany {
    const company: FakeCompany = {
      id: this.nextId++,
      name: c.name,
      responsible_user_id: acc.users[0]!.id,
      custom_fields_values: c.phones.length ? [{ field_id: PHONE_FIELD_ID, field_name: 'Phone', field_code: 'PHONE', field_type: 'multitext', values: c.phones.map((value) => ({ value, enum: 'WORK' } as never)) }] : null,
    };
    acc.companies.set(company.id, company);
    return company;
  }

  addLead(acc: FakeAccount, l: { name: string; contactIds?: number[]; companyId?: number | null; pipelineId?: number; statusId?: number; tags?: string[]; responsible?: number }): FakeLead {
    const lead: FakeLead = {
      id: this.nextId++,
      name: l.name,
      pipeline_id: l.pipelineId ?? 7_000_001,
      status_id: l.statusId ?? 142_000_001,
      responsible_user_id: l.responsible ?? acc.users[0]!.id,
      tags: l.tags ?? [],
      contactIds: l.contactIds ?? [],
      companyId: l.companyId ?? null,
    };
    acc.leads.set(lead.id, lead);
    for (const cid of lead.contactIds) acc.contacts.get(cid)?.leadIds.push(lead.id);
    return lead;
  }

  /** The X-Auth-Token `self.$authorizedAjax` would send for this user (HS256, client secret). */
  widgetJwt(domain: string, userId: number, over: Record<string, unknown> = {}, secret = this.opts.clientSecret): string {
    const acc = this.accounts.get(domain)!;
    const now = Math.floor(this.now() / 1000);
    const user = acc.users.find((u) => u.id === userId);
    return signKommoJwt(
      {
        iss: `https://${domain}`,
        aud: new URL(this.opts.redirectUri).origin,
        jti: crypto.randomUUID(),
        iat: now,
        nbf: now,
        exp: now + 1800,
        account_id: acc.id,
        user_id: userId,
        client_uuid: this.opts.clientId,
        subdomain: acc.subdomain,
        is_admin: user?.is_admin ?? false,
        ...over,
      },
      secret,
    );
  }

  /** The disable hook query Kommo sends on uninstall. */
  disableQuery(accountId: number, secret = this.opts.clientSecret): string {
    const signature = crypto.createHmac('sha256', secret).update(`${this.opts.clientId}|${accountId}`).digest('hex');
    return new URLSearchParams({ account_id: String(accountId), client_uuid: this.opts.clientId, signature }).toString();
  }

  // ------------------------------------------------------------------ server

  /** Counts one REST request of the account; false when it is over the per-second limit. */
  private admit(domain: string): boolean {
    const now = Date.now();
    let a = this.arrivals.get(domain);
    if (!a) this.arrivals.set(domain, (a = { all: [], accepted: [] }));
    a.all = a.all.filter((t) => now - t < 1000);
    a.all.push(now);
    this.stats.peakPerSecond = Math.max(this.stats.peakPerSecond, a.all.length);
    a.accepted = a.accepted.filter((t) => now - t < 1000);
    if (a.accepted.length >= (this.opts.maxRps ?? 7)) return false;
    a.accepted.push(now);
    return true;
  }

  private newPair(domain: string) {
    const access_token = 'at-' + crypto.randomBytes(16).toString('hex');
    const refresh_token = 'rt-' + crypto.randomBytes(16).toString('hex');
    const ttl = this.opts.accessTtlSec ?? 86_400;
    this.access.set(access_token, { domain, expiresAt: this.now() + ttl * 1000, revoked: false });
    this.refresh.set(refresh_token, { domain, used: false });
    return { token_type: 'Bearer', expires_in: ttl, server_time: Math.floor(this.now() / 1000), access_token, refresh_token };
  }

  private app(): express.Express {
    const app = express();
    app.set('query parser', 'extended');
    app.use(express.json({ limit: '2mb', type: () => true }));

    const account = (req: Request): FakeAccount | undefined => this.accounts.get(String(req.headers.host ?? '').replace(/:\d+$/, ''));

    app.use((req, res, next) => {
      const acc = account(req);
      if (!acc) return void problem(res, 404, { title: 'Not Found', detail: `no such account host ${req.headers.host}` });
      if (req.path.startsWith('/api/v4/') && !this.admit(acc.domain)) {
        this.stats.rateLimited++;
        return void problem(res, 429, { title: 'Too Many Requests', type: 'https://httpstatus.es/429', detail: `more than ${this.opts.maxRps ?? 7} requests per second` });
      }
      if (this.down) {
        this.stats.outageAnswers++;
        const n = this.outageN++ % 4;
        if (n === 0) return void problem(res, 429, { title: 'Too Many Requests', type: 'https://httpstatus.es/429', detail: 'Too many requests' });
        return void res.status([500, 502, 503][n - 1]!).type('text/html').send('<html><body><h1>502 Bad Gateway</h1></body></html>');
      }
      next();
    });

    app.post('/oauth2/access_token', (req, res) => {
      const acc = account(req)!;
      const b = req.body as Record<string, unknown>;
      if (b.client_id !== this.opts.clientId || b.client_secret !== this.opts.clientSecret) {
        return void problem(res, 401, { hint: 'Client authentication failed', title: 'Unauthorized', type: 'https://developers.amocrm.ru/v3/errors/OAuthProblemJson', detail: 'Client authentication failed' });
      }
      if (b.redirect_uri !== this.opts.redirectUri) return void problem(res, 400, { hint: 'redirect_uri mismatch', title: 'Bad Request', detail: 'redirect_uri mismatch' });
      if (b.grant_type === 'authorization_code') {
        const c = this.codes.get(String(b.code));
        if (!c || c.used || c.domain !== acc.domain) {
          return void problem(res, 400, { hint: 'Cannot decrypt the authorization code', title: 'Bad Request', type: 'https://developers.amocrm.ru/v3/errors/OAuthProblemJson', detail: 'Cannot decrypt the authorization code' });
        }
        c.used = true;
        this.stats.codeExchanges++;
        return void res.json(this.newPair(acc.domain));
      }
      if (b.grant_type === 'refresh_token') {
        const r = this.refresh.get(String(b.refresh_token));
        if (!r || r.used || r.domain !== acc.domain) {
          this.stats.revokedRefreshes++;
          return void problem(res, 401, { hint: 'Token has been revoked', title: 'Unauthorized', type: 'https://developers.amocrm.ru/v3/errors/OAuthProblemJson', detail: 'The refresh token is invalid.' });
        }
        r.used = true;
        this.stats.refreshes++;
        const pair = this.newPair(acc.domain);
        const delay = this.refreshDelays.shift();
        if (delay === undefined) return void res.json(pair);
        setTimeout(() => res.json(pair), delay);
        return;
      }
      problem(res, 400, { hint: 'unsupported grant_type', title: 'Bad Request', detail: 'The authorization grant type is not supported' });
    });

    const api = express.Router();
    api.use((req, res, next) => {
      this.stats.apiCalls++;
      const acc = account(req)!;
      const h = req.headers.authorization ?? '';
      const t = this.access.get(h.replace(/^Bearer /, ''));
      if (!t || t.domain !== acc.domain || t.revoked) return void problem(res, 401, { title: 'Unauthorized', type: 'https://httpstatus.es/401', detail: 'Invalid token' });
      if (t.expiresAt <= this.now()) {
        this.stats.expiredAnswers++;
        return void problem(res, 401, { title: 'Unauthorized', type: 'https://httpstatus.es/401', detail: 'Token has expired' });
      }
      next();
    });

    const contactJson = (acc: FakeAccount, c: FakeContact, withLeads: boolean) => ({
      id: c.id,
      name: c.name,
      responsible_user_id: c.responsible_user_id,
      account_id: acc.id,
      custom_fields_values: c.custom_fields_values,
      _links: { self: { href: `https://${acc.domain}/api/v4/contacts/${c.id}` } },
      _embedded: {
        tags: [],
        companies: c.companyId ? [{ id: c.companyId }] : [],
        ...(withLeads ? { leads: c.leadIds.map((id) => ({ id, _links: { self: { href: `https://${acc.domain}/api/v4/leads/${id}` } } })) } : {}),
      },
    });
    const ids = (q: unknown): number[] => {
      const f = (q as { filter?: { id?: unknown } } | undefined)?.filter?.id;
      const list = Array.isArray(f) ? f : f && typeof f === 'object' ? Object.values(f) : f !== undefined ? [f] : [];
      return list.map(Number).filter((n) => Number.isFinite(n));
    };
    const withList = (q: Record<string, unknown>) => String(q.with ?? '').split(',');

    api.get('/account', (req, res) => {
      const acc = account(req)!;
      hal(res, { id: acc.id, name: acc.name, subdomain: acc.subdomain, country: 'US', currency: 'USD', _links: { self: { href: `https://${acc.domain}/api/v4/account` } } });
    });
    api.get('/leads/pipelines', (req, res) => {
      const acc = account(req)!;
      const stage = (id: number, name: string, sort: number, type = 0) => ({ id, name, sort, is_editable: type === 0, pipeline_id: 0, color: '#99ccff', type, account_id: acc.id });
      hal(res, {
        _total_items: 2,
        _embedded: {
          pipelines: [
            { id: 7000001, name: 'Sales', sort: 1, is_main: true, is_unsorted_on: true, account_id: acc.id, _embedded: { statuses: [stage(142000000, 'Incoming leads', 10, 1), stage(142000001, 'Initial contact', 20), stage(142000002, 'Negotiation', 30), stage(142, 'Closed - won', 10000), stage(143, 'Closed - lost', 11000)] } },
            { id: 7000042, name: 'WhatsApp', sort: 2, is_main: false, is_unsorted_on: true, account_id: acc.id, _embedded: { statuses: [stage(142000042, 'New chat', 10), stage(142, 'Closed - won', 10000), stage(143, 'Closed - lost', 11000)] } },
          ],
        },
      });
    });
    api.get('/users', (req, res) => {
      const acc = account(req)!;
      hal(res, { _page: 1, _embedded: { users: acc.users.map((u) => ({ id: u.id, name: u.name, email: `${u.id}@example.test`, rights: { is_admin: u.is_admin, is_free: false, is_active: true } })) } });
    });
    api.get('/users/:id', (req, res) => {
      const u = account(req)!.users.find((x) => String(x.id) === req.params.id);
      if (!u) return void res.status(204).end();
      hal(res, { id: u.id, name: u.name, rights: { is_admin: u.is_admin, is_active: true } });
    });
    const leadJson = (acc: FakeAccount, l: FakeLead, withContacts: boolean) => ({
      id: l.id,
      name: l.name,
      pipeline_id: l.pipeline_id,
      status_id: l.status_id,
      responsible_user_id: l.responsible_user_id,
      account_id: acc.id,
      _embedded: {
        tags: l.tags.map((name, i) => ({ id: i + 1, name })),
        companies: l.companyId ? [{ id: l.companyId }] : [],
        ...(withContacts ? { contacts: l.contactIds.map((id, i) => ({ id, is_main: i === 0 })) } : {}),
      },
    });
    api.get('/leads', (req, res) => {
      const acc = account(req)!;
      const wanted = ids(req.query);
      const list = [...acc.leads.values()].filter((l) => wanted.length === 0 || wanted.includes(l.id));
      if (list.length === 0) return void res.status(204).end();
      hal(res, { _page: 1, _embedded: { leads: list.map((l) => leadJson(acc, l, withList(req.query as Record<string, unknown>).includes('contacts'))) } });
    });
    api.get('/leads/:id', (req, res) => {
      const acc = account(req)!;
      const l = acc.leads.get(Number(req.params.id));
      if (!l) return void res.status(204).end();
      hal(res, leadJson(acc, l, withList(req.query as Record<string, unknown>).includes('contacts')));
    });
    // Leads for existing contacts: `_embedded.contacts: [{id}]` links them, `_embedded.tags` tags it.
    api.post('/leads', (req, res) => {
      const acc = account(req)!;
      const body = req.body as Array<Record<string, any>>;
      if (!Array.isArray(body) || body.length === 0) return void problem(res, 400, { title: 'Bad Request', detail: 'Request body must be a non-empty array' });
      const made = body.map((item, i) => {
        const contactIds = ((item._embedded?.contacts ?? []) as Array<{ id?: unknown }>).map((c) => Number(c.id)).filter((id) => acc.contacts.has(id));
        const lead = this.addLead(acc, {
          name: String(item.name ?? 'Lead'),
          contactIds,
          pipelineId: item.pipeline_id,
          statusId: item.status_id,
          responsible: item.responsible_user_id,
          tags: ((item._embedded?.tags ?? []) as Array<{ name: string }>).map((t) => t.name),
        });
        return { id: lead.id, request_id: String(item.request_id ?? i), _links: { self: { href: `https://${acc.domain}/api/v4/leads/${lead.id}` } } };
      });
      hal(res, { _links: { self: { href: `https://${acc.domain}/api/v4/leads` } }, _embedded: { leads: made } });
    });
    api.get('/contacts', (req, res) => {
      const acc = account(req)!;
      const q = req.query as Record<string, unknown>;
      let list = [...acc.contacts.values()];
      const wanted = ids(q);
      if (wanted.length) list = list.filter((c) => wanted.includes(c.id));
      if (q.query) {
        const needle = String(q.query).replace(/\D/g, '');
        list = list.filter((c) => c.name.includes(String(q.query)) || (c.custom_fields_values ?? []).some((f) => f.values.some((v) => v.value.replace(/\D/g, '').includes(needle))));
      }
      if (list.length === 0) return void res.status(204).end();
      hal(res, { _page: 1, _embedded: { contacts: list.map((c) => contactJson(acc, c, withList(q).includes('leads'))) } });
    });
    api.get('/contacts/:id', (req, res) => {
      const acc = account(req)!;
      const c = acc.contacts.get(Number(req.params.id));
      if (!c) return void res.status(204).end();
      hal(res, contactJson(acc, c, withList(req.query as Record<string, unknown>).includes('leads')));
    });
    const companyJson = (acc: FakeAccount, c: FakeCompany) => ({ id: c.id, name: c.name, responsible_user_id: c.responsible_user_id, account_id: acc.id, custom_fields_values: c.custom_fields_values });
    api.get('/companies', (req, res) => {
      const acc = account(req)!;
      const wanted = ids(req.query);
      const list = [...acc.companies.values()].filter((c) => wanted.length === 0 || wanted.includes(c.id));
      if (list.length === 0) return void res.status(204).end();
      hal(res, { _page: 1, _embedded: { companies: list.map((c) => companyJson(acc, c)) } });
    });
    api.get('/companies/:id', (req, res) => {
      const acc = account(req)!;
      const c = acc.companies.get(Number(req.params.id));
      if (!c) return void res.status(204).end();
      hal(res, companyJson(acc, c));
    });
    api.post('/leads/complex', (req, res) => {
      const acc = account(req)!;
      const body = req.body as Array<Record<string, any>>;
      if (!Array.isArray(body) || body.length === 0) return void problem(res, 400, { title: 'Bad Request', detail: 'Request body must be a non-empty array' });
      const out = body.map((item) => {
        const contacts = (item._embedded?.contacts ?? []) as Array<Record<string, any>>;
        const made = contacts.map((c) =>
          this.addContact(acc, {
            name: String(c.name ?? c.first_name ?? 'Contact'),
            phones: ((c.custom_fields_values ?? []) as Field[]).filter((f) => f.field_code === 'PHONE').flatMap((f) => f.values.map((v) => String(v.value))),
            responsible: c.responsible_user_id,
          }),
        );
        const lead = this.addLead(acc, {
          name: String(item.name ?? 'Lead'),
          contactIds: made.map((c) => c.id),
          pipelineId: item.pipeline_id,
          statusId: item.status_id,
          responsible: item.responsible_user_id,
          tags: ((item._embedded?.tags ?? []) as Array<{ name: string }>).map((t) => t.name),
        });
        return { id: lead.id, contact_id: made[0]?.id ?? null, company_id: null, request_id: [String(lead.id)], merged: false };
      });
      hal(res, out);
    });
    api.post('/:entity/notes', (req, res) => {
      const acc = account(req)!;
      const entity = req.params.entity as FakeNote['entity_type'];
      if (!['leads', 'contacts', 'companies'].includes(entity)) return void problem(res, 404, { title: 'Not Found', detail: 'unknown entity' });
      const body = req.body as Array<Record<string, any>>;
      if (!Array.isArray(body) || body.length === 0) return void problem(res, 400, { title: 'Bad Request', detail: 'Request body must be a non-empty array' });
      const store = entity === 'leads' ? acc.leads : entity === 'contacts' ? acc.contacts : acc.companies;
      for (const [i, n] of body.entries()) {
        if (!store.has(Number(n.entity_id)) || typeof n.note_type !== 'string') {
          return void problem(res, 400, {
            title: 'Bad Request',
            type: 'https://httpstatus.es/400',
            detail: 'Request validation failed',
            'validation-errors': [{ request_id: String(i), errors: [{ code: 'NotSupportedChoice', path: 'entity_id', detail: 'The value you selected is not a valid choice.' }] }],
          });
        }
      }
      const create = () =>
        body.map((n) => {
          const at = Math.floor(this.now() / 1000);
          const note: FakeNote = { id: this.nextId++, entity_type: entity, entity_id: Number(n.entity_id), note_type: String(n.note_type), params: n.params ?? {}, created_at: at, updated_at: at };
          acc.notes.push(note);
          return { id: note.id, entity_id: note.entity_id, request_id: String(n.request_id ?? '0') };
        });
      const answer = (made: ReturnType<typeof create>) => hal(res, { _links: { self: { href: `https://${acc.domain}/api/v4/${entity}/notes` } }, _embedded: { notes: made } });
      const fault = this.noteFaults.shift();
      if (!fault) return void answer(create());
      if (fault.kind === 'error') {
        create();
        return void res.status(500).type('text/html').send('<html><body><h1>500 Internal Server Error</h1></body></html>');
      }
      if (fault.kind === 'hang') return void create();
      setTimeout(() => answer(create()), fault.ms);
    });
    // The notes of one record, as Kommo lists them: filter[note_type], filter[updated_at] (a
    // timestamp, or {from, to}), order[id|updated_at], limit ≤ 250, page; 204 when none.
    api.get('/:entity/:id/notes', (req, res) => {
      const acc = account(req)!;
      const entity = req.params.entity as FakeNote['entity_type'];
      if (!['leads', 'contacts', 'companies'].includes(entity)) return void problem(res, 404, { title: 'Not Found', detail: 'unknown entity' });
      const q = req.query as { filter?: { note_type?: unknown; updated_at?: unknown }; order?: Record<string, unknown>; limit?: unknown; page?: unknown };
      const limit = Math.min(250, Number(q.limit ?? 50));
      const page = Math.max(1, Number(q.page ?? 1));
      const types = q.filter?.note_type === undefined ? null : ([] as unknown[]).concat(typeof q.filter.note_type === 'object' ? Object.values(q.filter.note_type as object) : q.filter.note_type).map(String);
      const u = q.filter?.updated_at;
      const from = typeof u === 'object' && u ? Number((u as { from?: unknown }).from ?? 0) : u !== undefined ? Number(u) : 0;
      const to = typeof u === 'object' && u && (u as { to?: unknown }).to !== undefined ? Number((u as { to?: unknown }).to) : Infinity;
      let list = acc.notes.filter((n) => n.entity_type === entity && String(n.entity_id) === req.params.id && (!types || types.includes(n.note_type)) && n.updated_at >= from && n.updated_at <= to);
      const [field, dir] = Object.entries(q.order ?? {})[0] ?? ['id', 'asc'];
      const key = field === 'updated_at' ? (n: FakeNote) => n.updated_at * 1e9 + n.id : (n: FakeNote) => n.id;
      list = list.sort((a, b) => (String(dir) === 'desc' ? key(b) - key(a) : key(a) - key(b)));
      const slice = list.slice((page - 1) * limit, page * limit);
      if (slice.length === 0) return void res.status(204).end();
      const self = `https://${acc.domain}/api/v4/${entity}/${req.params.id}/notes`;
      hal(res, {
        _page: page,
        _links: { self: { href: `${self}?page=${page}&limit=${limit}` }, ...(list.length > page * limit ? { next: { href: `${self}?page=${page + 1}&limit=${limit}` } } : {}) },
        _embedded: {
          notes: slice.map((n) => ({ id: n.id, entity_id: n.entity_id, created_by: 0, updated_by: 0, created_at: n.created_at, updated_at: n.updated_at, responsible_user_id: acc.users[0]!.id, group_id: 0, note_type: n.note_type, params: n.params, account_id: acc.id })),
        },
      });
    });
    app.use('/api/v4', api);
    app.use((_req: Request, res: Response) => problem(res, 404, { title: 'Not Found', detail: 'no such route in the fake' }));
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => problem(res, 400, { title: 'Bad Request', detail: String(err) }));
    return app;
  }
}

export async function startFakeKommo(opts: FakeKommoOptions): Promise<FakeKommo> {
  return new FakeKommo(opts).start();
}
