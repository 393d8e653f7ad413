import { B24OAuth, type AjaxResult } from '@bitrix24/b24jssdk';
import { z } from 'zod';
import { PermanentJobError } from '../../../domain/jobs';
import { KeyedMutex } from '../../../domain/mutex';
import type { Clock } from '../../../domain/ports';
import type { Logger } from '../../../logger';
import type { B24Portal, B24Tokens, Bitrix24Store } from './store';

export interface Bitrix24AppCredentials {
  clientId: string;
  clientSecret: string;
}

/** Bitrix24 is over its limits, answered 5xx, or could not be reached: try again later. */
export class Bitrix24Unavailable extends Error {
  constructor(message: string, readonly status: number | null) {
    super(message);
    this.name = 'Bitrix24Unavailable';
  }
}

/**
 * A write whose outcome is unknown (5xx or no answer after the request left): it may have been
 * done. Never resent as is; the caller checks Bitrix24 first (find by phone, list comments).
 */
export class Bitrix24Uncertain extends Bitrix24Unavailable {
  constructor(message: string, status: number | null) {
    super(message, status);
    this.name = 'Bitrix24Uncertain';
  }
}

/** Bitrix24 refused the call itself (4xx, a method error): the same call will not succeed. */
export class Bitrix24Rejected extends PermanentJobError {
  constructor(message: string, readonly code: string, readonly status: number) {
    super(message);
    this.name = 'Bitrix24Rejected';
  }
}

/** No usable tokens (uninstalled, revoked, payment required). Jobs retry: a reinstall brings access back. */
export class Bitrix24NotAuthorized extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Bitrix24NotAuthorized';
  }
}

/** The OAuth server refused a refresh token (invalid_grant, PAYMENT_REQUIRED, invalid_client…). */
export class Bitrix24OAuthRefused extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'Bitrix24OAuthRefused';
  }
}

const numeric = z.union([z.number(), z.string().regex(/^\d+$/)]).transform(Number);

/** What the OAuth server answers to `grant_type=refresh_token` (R settings/oauth/auto-renewal). */
export const oauthTokenResponse = z
  .object({
    access_token: z.string().min(1),
    refresh_token: z.string().min(1),
    expires: numeric.optional(),
    expires_in: numeric.optional(),
    member_id: z.string().min(1),
    domain: z.string().min(1).optional(),
    client_endpoint: z.string().url(),
    server_endpoint: z.string().url().optional(),
    scope: z.string().optional(),
    status: z.string().optional(),
    user_id: z.union([z.number(), z.string()]).optional(),
  })
  .loose();
export type OAuthTokenResponse = z.infer<typeof oauthTokenResponse>;

const oauthError = z.object({ error: z.string(), error_description: z.string().optional() }).loose();

/** Bitrix24's own OAuth servers: SERVER_ENDPOINT is believed only when it names one of these. */
const OAUTH_HOSTS = new Set(['oauth.bitrix.info', 'oauth.bitrix24.tech']);
const DEFAULT_OAUTH = 'https://oauth.bitrix.info';
const MAX_BATCH = 50;
const MAX_IN_FLIGHT = 2;
/** In-queue attempts of a call before it is handed back as Bitrix24Unavailable (a durable job retries). */
const MAX_ATTEMPTS = 4;
const EXPIRY_MARGIN_MS = 30_000;

/** Where a portal's REST API is: enough to call it before the portal is stored (install proof). */
export type RestTarget = Pick<B24Portal, 'memberId' | 'domain' | 'clientEndpoint' | 'serverEndpoint'>;

export interface CallResult {
  result: unknown;
  total: number | null;
  next: number | null;
}

interface Pending {
  method: string;
  params: Record<string, unknown>;
  /** Creates something: never resent after an uncertain failure. */
  write: boolean;
  /** A user's own access token (frame proof) instead of the app's stored one. */
  auth?: string;
  attempts: number;
  resolve(r: CallResult): void;
  reject(e: Error): void;
}

/** A portal's leaky bucket and waiting calls. Bitrix24 counts per portal: 2 req/s drain, 50 burst. */
class Lane {
  tokens: number;
  at: number;
  queue: Pending[] = [];
  inFlight = 0;
  pausedUntil = 0;
  pauses = 0;
  timer: NodeJS.Timeout | null = null;
  scheduled = false;
  constructor(burst: number) {
    this.tokens = burst;
    this.at = Date.now();
  }
}

interface Failure {
  kind: 'limit' | 'uncertain' | 'auth' | 'rejected';
  code: string;
  status: number;
  message: string;
  cause?: Error;
}

export interface Bitrix24ApiOptions {
  app: Bitrix24AppCredentials;
  store: Bitrix24Store;
  clock: Clock;
  log: Logger;
  /** BITRIX24_OAUTH_URL: the one OAuth server to use. */
  oauthUrl?: string;
  /** BITRIX24_REST_URL: every portal's REST endpoint. */
  restUrl?: string;
  rps: number;
  burst: number;
  backoffMs: number;
  timeoutMs?: number;
}

/**
 * Bitrix24 REST through `@bitrix24/b24jssdk` (`B24OAuth`, `actions.v2.call` / `actions.v2.batch`),
 * one SDK client per portal, behind a per-portal queue of our own:
 *
 * - the queue is a leaky bucket with Bitrix24's numbers (the SDK's own limiter is kept with the
 *   same numbers as a second line, but it lives per SDK client, and a client is rebuilt when the
 *   tokens change, so it cannot be the only one);
 * - calls that wait together leave as one `batch` (≤ 50), so a burst costs one request;
 * - QUERY_LIMIT_EXCEEDED, OPERATION_TIME_LIMIT and 5xx pause the whole portal with a growing
 *   backoff. The SDK's own retries are off (`maxRetries: 1`): it would resend a create after a
 *   timeout (b24jssdk #24); here only reads and calls Bitrix24 certainly refused are resent, and a
 *   write with an unknown outcome goes back to the caller as Bitrix24Uncertain.
 *
 * Refresh: the SDK coalesces 401s per client, but neither across clients nor across processes,
 * and it would refresh with the pair it holds even when the store has a newer one. Its
 * `setCustomRefreshAuth` hook plugs in `refresh()` here: one at a time per portal, re-reads the
 * stored pair first, and saves the new pair (compare-and-swap on a version) before it is used.
 * The refresh request itself is a plain form POST to `<oauth host>/oauth/token/`, as the SDK's
 * own does, because install needs the same exchange before any SDK client exists.
 */
export class Bitrix24Api {
  private readonly lanes = new Map<number, Lane>();
  private readonly sdks = new Map<number, { version: number; sdk: B24OAuth }>();
  private readonly refreshLock = new KeyedMutex();
  /** Refreshes this process made, by portal (metrics, tests). */
  readonly refreshCount = new Map<number, number>();
  /** HTTP requests sent to portals' REST endpoints, by portal. */
  readonly requestCount = new Map<number, number>();

  /**
   * Our bucket is two requests smaller than the portal's: Bitrix24 counts arrivals, we count
   * departures, and a request that takes longer on the way than the next one would otherwise
   * land two in one slot when the bucket is full.
   */
  private readonly burst: number;

  constructor(private readonly o: Bitrix24ApiOptions) {
    this.burst = Math.max(1, o.burst - 2);
  }

  // ------------------------------------------------------------------ endpoints

  /** The OAuth server to use for a portal: the configured one, else Bitrix24's named one if it is a known host. */
  oauthBase(serverEndpoint: string | null | undefined): string {
    if (this.o.oauthUrl) return this.o.oauthUrl;
    try {
      const u = new URL(String(serverEndpoint ?? ''));
      if (u.protocol === 'https:' && OAUTH_HOSTS.has(u.hostname)) return u.origin;
    } catch {
      /* fall through */
    }
    return DEFAULT_OAUTH;
  }

  /** `server_endpoint` to remember for a portal (normalised to the host we will really use). */
  serverEndpoint(named: string | null | undefined): string {
    return `${this.oauthBase(named)}/rest/`;
  }

  restBase(p: Pick<B24Portal, 'clientEndpoint'>): string {
    return this.o.restUrl ?? p.clientEndpoint;
  }

  // ------------------------------------------------------------------ OAuth

  /**
   * `grant_type=refresh_token` at the OAuth server. Its answer names the portal (member_id, domain, endpoint).
   *
   * Not aborted unless `abortable`: once the request left, the OAuth server may have rotated the
   * pair, and its answer then holds the only refresh token that still works. Cutting the wait
   * short would throw that pair away. Without a signal the request ends with the answer or when the
   * transport gives up on a dead connection (undici's header and body timeouts, 300 s each).
   * Install proofs are `abortable`: no stored state depends on their pair (the admin installs again).
   */
  async oauthRefresh(serverEndpoint: string | null | undefined, refreshToken: string, opts: { abortable?: boolean } = {}): Promise<OAuthTokenResponse> {
    const url = `${this.oauthBase(serverEndpoint)}/oauth/token/`;
    const body = new URLSearchParams({ grant_type: 'refresh_token', client_id: this.o.app.clientId, client_secret: this.o.app.clientSecret, refresh_token: refreshToken });
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body,
        ...(opts.abortable ? { signal: AbortSignal.timeout(this.timeoutMs) } : {}),
      });
    } catch (err) {
      throw new Bitrix24Unavailable(`token refresh: ${(err as Error).message}`, null);
    }
    const text = await res.text();
    let data: unknown = null;
    try {
      data = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    const err = oauthError.safeParse(data);
    if (err.success && res.status < 500) throw new Bitrix24OAuthRefused(err.data.error, `OAuth server refused the refresh token: ${err.data.error}${err.data.error_description ? ` (${err.data.error_description})` : ''}`);
    if (res.status >= 500 || res.status === 429) throw new Bitrix24Unavailable(`token refresh: OAuth server answered ${res.status}`, res.status);
    const ok = oauthTokenResponse.safeParse(data);
    if (!ok.success) throw new Bitrix24OAuthRefused('bad_response', `token refresh: OAuth server answered ${res.status} without a token pair`);
    return ok.data;
  }

  /** How long a caller waits for the OAuth server. */
  get timeoutMs(): number {
    return this.o.timeoutMs ?? 20_000;
  }

  tokensFrom(t: OAuthTokenResponse): B24Tokens {
    const now = this.o.clock.now();
    const expiresAt = t.expires ? t.expires * 1000 : now + (t.expires_in ?? 3600) * 1000;
    return { access_token: t.access_token, refresh_token: t.refresh_token, expires_at: expiresAt, scope: t.scope ?? '' };
  }

  private async activePortal(portalId: number): Promise<B24Portal> {
    const p = await this.o.store.byPortal(portalId);
    if (!p || p.state === 'uninstalled') throw new Bitrix24NotAuthorized('InCRM is not installed in this Bitrix24 portal');
    if (!p.tokens) throw new Bitrix24NotAuthorized(p.stateReason ?? 'no Bitrix24 tokens for this portal; an admin must open the app again');
    return p;
  }

  /**
   * Refreshes the pair read at `staleVersion` unless someone already did. One at a time per
   * portal; the new pair is stored before anyone gets it (refresh tokens may be single-use).
   *
   * The caller waits at most `timeoutMs` (then Bitrix24Unavailable: its job retries), but the
   * refresh itself goes on holding the portal's lock until the OAuth server has answered and the
   * answer is saved. Nobody may try the old refresh token meanwhile (it may already be spent), and
   * a late answer is the portal's new pair, not something to drop.
   */
  async refresh(portalId: number, staleVersion: number): Promise<B24Portal> {
    const done = this.refreshLock.run(String(portalId), () => this.refreshHoldingLock(portalId, staleVersion));
    let timer: NodeJS.Timeout | undefined;
    let gaveUp = false;
    const waited = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        gaveUp = true;
        reject(new Bitrix24Unavailable('token refresh: the OAuth server has not answered yet (its answer will be saved when it comes)', null));
      }, this.timeoutMs);
      timer.unref?.();
    });
    // Once the caller stopped waiting, nobody else sees how the refresh ended: log it here.
    done.catch((err) => {
      if (gaveUp) this.o.log.warn({ portalId, err: (err as Error).message }, 'Bitrix24 token refresh failed after its caller stopped waiting');
    });
    try {
      return await Promise.race([done, waited]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async refreshHoldingLock(portalId: number, staleVersion: number): Promise<B24Portal> {
    const cur = await this.activePortal(portalId);
    if (cur.tokenVersion !== staleVersion) return cur; // refreshed while we waited
    let fresh: OAuthTokenResponse;
    try {
      fresh = await this.oauthRefresh(cur.serverEndpoint, cur.tokens!.refresh_token);
    } catch (err) {
      if (err instanceof Bitrix24OAuthRefused) {
        const why =
          err.code === 'PAYMENT_REQUIRED'
            ? 'The Bitrix24 subscription for the app has ended (PAYMENT_REQUIRED): renew it in the Market, then open the app once.'
            : `Bitrix24 refused our access (${err.code}): an administrator must open InCRM in Bitrix24 once (or reinstall it) to reconnect.`;
        await this.o.store.markRevoked(portalId, cur.tokenVersion, why);
        this.o.log.error({ portalId, code: err.code }, 'Bitrix24 refused the refresh token; portal marked revoked');
        throw new Bitrix24NotAuthorized(why);
      }
      throw err;
    }
    if (fresh.member_id !== cur.memberId) throw new Bitrix24Unavailable('token refresh: the OAuth server answered for another portal', 502);
    if (!(await this.o.store.saveRefreshed(portalId, cur.tokenVersion, this.tokensFrom(fresh)))) {
      this.o.log.warn({ portalId }, 'Bitrix24 tokens changed during refresh; using the stored pair');
    }
    this.refreshCount.set(portalId, (this.refreshCount.get(portalId) ?? 0) + 1);
    this.o.log.info({ portalId }, 'Bitrix24 access token refreshed');
    return this.activePortal(portalId);
  }

  // ------------------------------------------------------------------ SDK clients

  private restriction() {
    return {
      rateLimit: { burstLimit: this.o.burst, drainRate: this.o.rps, adaptiveEnabled: false },
      adaptiveConfig: { enabled: false, thresholdPercent: 100, coefficient: 0, maxDelay: 0 },
      maxRetries: 1,
      retryDelay: 0,
      retryOnNetworkError: false,
    };
  }

  private newSdk(p: RestTarget & { tokens?: B24Tokens | null }, accessToken: string, refreshToken: string, expiresAt: number): B24OAuth {
    const sdk = new B24OAuth(
      {
        applicationToken: '',
        userId: 0,
        memberId: p.memberId,
        accessToken,
        refreshToken,
        expires: Math.floor(expiresAt / 1000),
        expiresIn: 3600,
        scope: p.tokens?.scope ?? '',
        domain: p.domain,
        clientEndpoint: this.restBase(p),
        serverEndpoint: p.serverEndpoint,
        status: 'F' as never,
      },
      { clientId: this.o.app.clientId, clientSecret: this.o.app.clientSecret },
      { restrictionParams: this.restriction() as never },
    );
    sdk.offClientSideWarning();
    return sdk;
  }

  private sdkFor(p: B24Portal): B24OAuth {
    const hit = this.sdks.get(p.portalId);
    if (hit && hit.version === p.tokenVersion) return hit.sdk;
    const t = p.tokens!;
    // Refresh a little before the stored expiry, so the token never lapses in flight.
    const entry = { version: p.tokenVersion, sdk: this.newSdk(p, t.access_token, t.refresh_token, t.expires_at - EXPIRY_MARGIN_MS) };
    entry.sdk.setCustomRefreshAuth(async () => {
      const fresh = await this.refresh(p.portalId, entry.version);
      entry.version = fresh.tokenVersion;
      const ft = fresh.tokens!;
      return {
        access_token: ft.access_token,
        refresh_token: ft.refresh_token,
        expires: Math.floor((ft.expires_at - EXPIRY_MARGIN_MS) / 1000),
        expires_in: 3600,
        client_endpoint: fresh.clientEndpoint,
        server_endpoint: fresh.serverEndpoint,
        member_id: fresh.memberId,
        scope: ft.scope,
        status: 'F',
        domain: fresh.domain,
      } as never;
    });
    this.sdks.set(p.portalId, entry);
    return entry.sdk;
  }

  /** A client for a user's own frame token: no refresh (an expired frame token is simply refused). */
  private userSdk(p: RestTarget, accessToken: string): B24OAuth {
    const sdk = this.newSdk(p, accessToken, 'none', this.o.clock.now() + 3600_000);
    sdk.setCustomRefreshAuth(async () => {
      throw new Bitrix24NotAuthorized('the frame token has expired; reopen the tab');
    });
    return sdk;
  }

  // ------------------------------------------------------------------ the queue

  /** One REST call for a portal (queued, paced, batched with others). Resolves with `result` and paging. */
  callFull(portalId: number, method: string, params: Record<string, unknown> = {}, opts: { write?: boolean; auth?: string } = {}): Promise<CallResult> {
    return new Promise<CallResult>((resolve, reject) => {
      const lane = this.lane(portalId);
      lane.queue.push({ method, params, write: opts.write ?? false, ...(opts.auth ? { auth: opts.auth } : {}), attempts: 0, resolve, reject });
      this.pump(portalId, lane);
    });
  }

  async call<T = unknown>(portalId: number, method: string, params: Record<string, unknown> = {}, opts: { write?: boolean; auth?: string } = {}): Promise<T> {
    return (await this.callFull(portalId, method, params, opts)).result as T;
  }

  /**
   * Calls with a user's own token on a portal that is not stored (a first install, a reinstall
   * after uninstall): there is no queue to join, so they leave at once as one request and are not
   * retried. Only install proofs use it: one request per install attempt.
   */
  async callDirect(target: RestTarget, accessToken: string, calls: Array<{ method: string; params?: Record<string, unknown> }>): Promise<unknown[]> {
    const settled: Array<Promise<CallResult>> = [];
    const items: Pending[] = calls.map((c) => {
      let item!: Pending;
      settled.push(new Promise<CallResult>((resolve, reject) => (item = { method: c.method, params: c.params ?? {}, write: false, auth: accessToken, attempts: 0, resolve, reject })));
      return item;
    });
    try {
      await this.exchange(this.userSdk(target, accessToken), items);
    } catch (err) {
      const f = classify(err);
      for (const it of items) this.failedOne(it, f);
    }
    return (await Promise.all(settled)).map((r) => r.result);
  }

  /** For tests and metrics: how many calls wait, and whether the portal is paused. */
  laneState(portalId: number): { queued: number; inFlight: number; pausedMs: number } {
    const l = this.lanes.get(portalId);
    return l ? { queued: l.queue.length, inFlight: l.inFlight, pausedMs: Math.max(0, l.pausedUntil - Date.now()) } : { queued: 0, inFlight: 0, pausedMs: 0 };
  }

  private lane(portalId: number): Lane {
    let l = this.lanes.get(portalId);
    if (!l) {
      l = new Lane(this.burst);
      this.lanes.set(portalId, l);
    }
    return l;
  }

  private pump(portalId: number, lane: Lane): void {
    if (lane.scheduled) return;
    lane.scheduled = true;
    // Next turn of the event loop: calls made together (Promise.all) join one batch.
    setImmediate(() => {
      lane.scheduled = false;
      this.drain(portalId, lane);
    });
  }

  private wake(portalId: number, lane: Lane, ms: number): void {
    if (lane.timer) return;
    lane.timer = setTimeout(() => {
      lane.timer = null;
      this.pump(portalId, lane);
    }, Math.max(1, ms));
    lane.timer.unref?.();
  }

  private drain(portalId: number, lane: Lane): void {
    while (lane.queue.length > 0 && lane.inFlight < MAX_IN_FLIGHT) {
      const now = Date.now();
      if (lane.pausedUntil > now) return this.wake(portalId, lane, lane.pausedUntil - now);
      lane.tokens = Math.min(this.burst, lane.tokens + ((now - lane.at) * this.o.rps) / 1000);
      lane.at = now;
      if (lane.tokens < 1) return this.wake(portalId, lane, Math.ceil(((1 - lane.tokens) * 1000) / this.o.rps));
      lane.tokens -= 1;
      // One request: the first waiting call and every other one that can share its batch.
      const first = lane.queue[0]!;
      const items: Pending[] = [];
      const rest: Pending[] = [];
      for (const it of lane.queue) {
        if (items.length < MAX_BATCH && it.auth === first.auth) items.push(it);
        else rest.push(it);
      }
      lane.queue = rest;
      lane.inFlight++;
      void this.send(portalId, lane, items).finally(() => {
        lane.inFlight--;
        this.pump(portalId, lane);
      });
    }
  }

  private async send(portalId: number, lane: Lane, items: Pending[]): Promise<void> {
    let sdk: B24OAuth;
    try {
      const auth = items[0]!.auth;
      // A user's own token works even while the app's pair is revoked (that is how an admin reconnects).
      const p = auth ? await this.o.store.byPortal(portalId) : await this.activePortal(portalId);
      if (!p || p.state === 'uninstalled') throw new Bitrix24NotAuthorized('InCRM is not installed in this Bitrix24 portal');
      sdk = auth ? this.userSdk(p, auth) : this.sdkFor(p);
    } catch (err) {
      for (const it of items) it.reject(err as Error);
      return;
    }
    this.requestCount.set(portalId, (this.requestCount.get(portalId) ?? 0) + 1);
    try {
      await this.exchange(sdk, items);
      lane.pauses = 0;
    } catch (err) {
      this.failed(portalId, lane, items, classify(err));
    }
  }

  /** One request: a single call, or a batch of several. Settles each call; throws when the request as a whole failed. */
  private async exchange(sdk: B24OAuth, items: Pending[]): Promise<void> {
    if (items.length === 1) {
      const it = items[0]!;
      const r = await sdk.actions.v2.call.make({ method: it.method, params: it.params });
      this.settle(it, r);
      return;
    }
    const calls = Object.fromEntries(items.map((it, i) => [`c${i}`, { method: it.method, params: it.params }]));
    const r = await sdk.actions.v2.batch.make({ calls, options: { isHaltOnError: false, returnAjaxResult: true } });
    const data = (r.getData() ?? {}) as Record<string, AjaxResult | undefined>;
    items.forEach((it, i) => {
      const one = data[`c${i}`];
      if (one) this.settle(it, one);
      else it.reject(new Bitrix24Unavailable(`${it.method}: no answer for it in the batch`, 502));
    });
  }

  private settle(it: Pending, r: AjaxResult): void {
    if (r.isSuccess) {
      const d = r.getData() as { result?: unknown; total?: unknown; next?: unknown } | null;
      const num = (v: unknown) => (v === undefined || v === null || v === '' ? null : Number(v));
      it.resolve({ result: d?.result ?? null, total: num(d?.total), next: num(d?.next) || null });
      return;
    }
    const e = r.getErrors().next().value as { code?: string; status?: number } | undefined;
    const f = classify(Object.assign(new Error(r.getErrorMessages().join('; ')), { code: e?.code ?? 'ERROR', status: e?.status ?? r.getStatus() }));
    this.failedOne(it, f);
  }

  private failedOne(it: Pending, f: Failure): void {
    const what = `${it.method}: ${f.code}${f.message && f.message !== f.code ? ` (${f.message})` : ''}`;
    if (f.kind === 'auth') it.reject(f.cause instanceof Bitrix24NotAuthorized ? f.cause : new Bitrix24NotAuthorized(what));
    else if (f.kind === 'rejected') it.reject(new Bitrix24Rejected(what, f.code, f.status));
    else if (f.kind === 'uncertain' && it.write) it.reject(new Bitrix24Uncertain(what, f.status));
    else it.reject(new Bitrix24Unavailable(what, f.status));
  }

  /** The whole request failed: pause the portal, resend what is safe to resend, hand back the rest. */
  private failed(portalId: number, lane: Lane, items: Pending[], f: Failure): void {
    if (f.kind === 'limit' || f.kind === 'uncertain') {
      const base = Math.min(60_000, this.o.backoffMs * 2 ** lane.pauses);
      const until = Date.now() + Math.round(base * (0.8 + Math.random() * 0.4));
      if (until > lane.pausedUntil) {
        lane.pausedUntil = until;
        lane.pauses = Math.min(lane.pauses + 1, 5); // longest pause: 32 × BITRIX24_BACKOFF_MS (60 s cap)
      }
      this.o.log.warn({ portalId, code: f.code, status: f.status, pauseMs: until - Date.now(), calls: items.length }, 'Bitrix24 refused or failed a request; portal queue paused');
      const again: Pending[] = [];
      for (const it of items) {
        it.attempts++;
        // A refused request (limit) did nothing: safe to resend. A 5xx/timeout may have: reads only.
        const safe = f.kind === 'limit' || !it.write;
        if (safe && it.attempts < MAX_ATTEMPTS) again.push(it);
        else this.failedOne(it, f);
      }
      lane.queue.unshift(...again);
      return;
    }
    for (const it of items) this.failedOne(it, f);
  }
}

/** Sorts an SDK failure: a limit (certainly not executed), uncertain (5xx, network), auth, or a refusal. */
function classify(err: unknown): Failure {
  const e = err as { code?: unknown; status?: unknown; message?: string; originalError?: unknown };
  const cause = e.originalError instanceof Error ? e.originalError : null;
  if (cause instanceof Bitrix24NotAuthorized) return { kind: 'auth', code: 'NOT_AUTHORIZED', status: 401, message: cause.message, cause };
  if (cause instanceof Bitrix24Unavailable) return { kind: 'uncertain', code: 'OAUTH_UNAVAILABLE', status: cause.status ?? 0, message: cause.message };
  const code = String(e.code ?? 'ERROR');
  const status = Number(e.status ?? 0) || 0;
  const message = String(e.message ?? code);
  if (code === 'QUERY_LIMIT_EXCEEDED' || code === 'OPERATION_TIME_LIMIT' || status === 429) return { kind: 'limit', code, status, message };
  if (status === 401 || ['expired_token', 'invalid_token', 'NO_AUTH_FOUND', 'PAYMENT_REQUIRED', 'ACCESS_DENIED'].includes(code)) return { kind: 'auth', code, status, message };
  if (status >= 500 || status === 0 || status === 408 || code === 'NETWORK_ERROR' || code === 'REQUEST_TIMEOUT') return { kind: 'uncertain', code, status, message };
  return { kind: 'rejected', code, status, message };
}
