import { Client } from 'amocrm-js';
import type { IAPIResponse, IResponseParser } from 'amocrm-js/dist/interfaces/common';
import { z } from 'zod';
import { PermanentJobError } from '../../../domain/jobs';
import { KeyedMutex } from '../../../domain/mutex';
import type { Clock } from '../../../domain/ports';
import type { Logger } from '../../../logger';
import { Lingering } from './lingering';
import { Pacer } from './pacer';
import type { KommoAccount, KommoStore, KommoTokens } from './store';

export interface KommoAppCredentials {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

/** Kommo answered 429 or 5xx, or could not be reached: try again later (a durable job retries). */
export class KommoUnavailable extends Error {
  constructor(message: string, readonly status: number | null) {
    super(message);
    this.name = 'KommoUnavailable';
  }
}

/** We stopped waiting; the request itself may still be carried out and answered. */
export class KommoTimeout extends KommoUnavailable {
  constructor(message: string) {
    super(message, null);
    this.name = 'KommoTimeout';
  }
}

/** Kommo refused the request itself (4xx other than 401/429): retrying the same call will not help. */
export class KommoRejected extends PermanentJobError {
  constructor(message: string, readonly status: number, readonly body: unknown) {
    super(message);
    this.name = 'KommoRejected';
  }
}

/** The account has no usable tokens (uninstalled, or the refresh token was revoked): reinstall needed. */
// Not permanent: jobs keep retrying with backoff, so messages recorded while an admin reinstalls
// still reach the CRM afterwards.
export class KommoNotAuthorized extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KommoNotAuthorized';
  }
}

const tokenResponse = z.object({
  token_type: z.string(),
  expires_in: z.number().int().positive(),
  access_token: z.string().min(1),
  refresh_token: z.string().min(1),
  expires_at: z.number().optional(),
});

const problem = z.object({ status: z.number().optional(), title: z.string().optional(), detail: z.string().optional(), hint: z.string().optional() }).loose();

// amocrm-js's default parser prints every API error to stderr and throws on any body with a
// `status` key; ours only parses, and the status code decides what happens.
const rawParser: IResponseParser<string> = {
  parse<R>(r: IAPIResponse<string>): IAPIResponse<R> {
    let data: unknown = null;
    if (r.data) {
      try {
        data = JSON.parse(r.data);
      } catch {
        data = r.data;
      }
    }
    return { response: r.response, data: data as R };
  },
};

/** Refresh this long before the stored expiry, so a token never expires in flight. */
const EXPIRY_MARGIN_MS = 60_000;

export interface ApiResult {
  status: number;
  data: unknown;
}

function describe(status: number, body: unknown): string {
  const p = problem.safeParse(body);
  const words = p.success ? [p.data.title, p.data.detail, p.data.hint].filter(Boolean).join(': ') : typeof body === 'string' ? body.slice(0, 120) : '';
  return `Kommo answered ${status}${words ? ` (${words})` : ''}`;
}

/**
 * Kommo REST v4 and OAuth through `amocrm-js`, per account. The library refreshes on its own
 * but without any lock; here every refresh for one account runs one at a time, re-reads the
 * stored pair first (another call may have refreshed already), and saves the new pair before
 * anyone uses it, because Kommo refresh tokens are single-use: reusing one answers
 * `401 Token has been revoked` and the account would need a reinstall.
 */
export class KommoApi {
  private readonly refreshLock = new KeyedMutex();
  private readonly clients = new Map<number, { version: number; client: Client }>();
  /** How many refreshes this process made, by portal (for metrics and tests). */
  readonly refreshCount = new Map<number, number>();

  constructor(
    private readonly app: KommoAppCredentials,
    private readonly store: KommoStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** Kommo allows 7 requests per second per account; more answer 429. */
    private readonly maxPerSecond = 7,
    private readonly timeoutMs = 20_000,
    /** How long a request we stopped waiting for may still be answered (Kommo's own proxies give up well before). */
    lingerMs = 120_000,
  ) {
    this.lingering = new Lingering(lingerMs);
    this.lingerMs = lingerMs;
    this.pacer = new Pacer(maxPerSecond);
  }

  /** Bursts queue here instead of earning 429s. */
  private readonly pacer: Pacer;

  private readonly lingering: Lingering;
  private readonly lingerMs: number;

  /**
   * Resolves once every request for this portal that timed out has settled (or is old enough
   * to be given up on). Work that would repeat such a request (write a note again) waits for
   * this first, then looks at what Kommo has.
   */
  settled(portalId: number): Promise<void> {
    return this.lingering.settled(portalId);
  }

  private newClient(domain: string, code?: string): Client {
    return new Client({
      domain,
      auth: { client_id: this.app.clientId, client_secret: this.app.clientSecret, redirect_uri: this.app.redirectUri, ...(code ? { code } : {}) },
    });
  }

  /**
   * Stops waiting for `p` after `timeoutMs`. The request itself keeps running (amocrm-js cannot
   * abort it) and Kommo may still carry it out, so for a portal it is kept in `lingering` until
   * it settles: a retry of the same work waits for it instead of racing it.
   */
  private withTimeout<T>(p: Promise<T>, what: string, portalId: number | null = null): Promise<T> {
    let timer: NodeJS.Timeout;
    const t = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (portalId !== null) void this.lingering.add(portalId, p);
        reject(new KommoTimeout(`${what}: no answer from Kommo in ${this.timeoutMs} ms`));
      }, this.timeoutMs);
    });
    return Promise.race([p, t]).finally(() => clearTimeout(timer));
  }

  /** Turns an amocrm-js token call failure into our error family. */
  private tokenFailure(err: unknown, what: string): Error {
    const e = err as { apiResponse?: { response?: { statusCode?: number }; data?: string }; data?: unknown; code?: string; message?: string };
    const status = e.apiResponse?.response?.statusCode ?? null;
    let body: unknown = e.data ?? null;
    if (body === null && e.apiResponse?.data) {
      try {
        body = JSON.parse(e.apiResponse.data);
      } catch {
        body = e.apiResponse.data;
      }
    }
    if (status === null) return new KommoUnavailable(`${what}: ${e.code ?? e.message ?? String(err)}`, null);
    if (status === 429 || status >= 500) return new KommoUnavailable(`${what}: ${describe(status, body)}`, status);
    return new KommoRejected(`${what}: ${describe(status, body)}`, status, body);
  }

  private stamp(t: z.infer<typeof tokenResponse>): KommoTokens {
    return {
      access_token: t.access_token,
      refresh_token: t.refresh_token,
      token_type: t.token_type,
      expires_in: t.expires_in,
      // amocrm-js derives expires_at from the response's Date header; fall back to our clock.
      expires_at: t.expires_at ?? this.clock.now() + t.expires_in * 1000,
    };
  }

  /** Exchanges an authorization code at the account's own host (codes are single-use, 20 minutes). */
  async exchangeCode(domain: string, code: string): Promise<KommoTokens> {
    const client = this.newClient(domain, code);
    let raw: unknown;
    try {
      raw = await this.withTimeout(client.token.fetch(), 'code exchange');
    } catch (err) {
      throw err instanceof KommoUnavailable ? err : this.tokenFailure(err, 'code exchange');
    }
    const parsed = tokenResponse.safeParse(raw);
    if (!parsed.success) throw new KommoRejected('code exchange: Kommo sent no token', 502, raw);
    return this.stamp(parsed.data);
  }

  /** A raw call with the tokens the caller already holds (install: read the account before it is stored). */
  async callWith(domain: string, tokens: KommoTokens, method: string, path: string, data?: object): Promise<ApiResult> {
    const client = this.newClient(domain);
    client.token.setValue(tokens);
    return this.send(null, client, method, path, data);
  }

  private async send(portalId: number | null, client: Client, method: string, path: string, data?: object): Promise<ApiResult> {
    const release = portalId === null ? () => {} : await this.pacer.acquire(portalId);
    const request = client.request.make(method, path, data, { parser: rawParser });
    // The slot is held until Kommo answers, or until a request we gave up on is given up for good.
    const aged = setTimeout(release, this.timeoutMs + this.lingerMs);
    aged.unref();
    void request.then(noop, noop).then(() => {
      clearTimeout(aged);
      release();
    });
    let res: IAPIResponse<unknown>;
    try {
      res = await this.withTimeout(request, `${method} ${path}`, portalId);
    } catch (err) {
      if (err instanceof KommoUnavailable) throw err;
      throw new KommoUnavailable(`${method} ${path}: ${(err as Error).message ?? String(err)}`, null);
    }
    return { status: res.response.statusCode ?? 0, data: res.data };
  }

  private async account(portalId: number): Promise<KommoAccount> {
    const a = await this.store.byPortal(portalId);
    if (!a || a.disabledAt !== null) throw new KommoNotAuthorized('Kommo integration is not installed for this portal');
    if (!a.tokens) throw new KommoNotAuthorized('Kommo refused our tokens; an account admin must reinstall the integration');
    return a;
  }

  private clientFor(a: KommoAccount): Client {
    const hit = this.clients.get(a.portalId);
    if (hit && hit.version === a.tokenVersion) return hit.client;
    const client = this.newClient(a.domain);
    client.token.setValue(a.tokens!);
    this.clients.set(a.portalId, { version: a.tokenVersion, client });
    return client;
  }

  /**
   * Refreshes the pair read at `staleVersion`, unless someone already did: one at a time per
   * account, and the new pair is stored before it is handed out.
   */
  async refresh(portalId: number, staleVersion: number): Promise<KommoAccount> {
    return this.refreshLock.run(String(portalId), async () => {
      const current = await this.account(portalId);
      if (current.tokenVersion !== staleVersion) return current; // refreshed while we waited
      const client = this.newClient(current.domain);
      client.token.setValue(current.tokens!);
      let raw: unknown;
      try {
        raw = await this.refreshAnswer(portalId, client.token.refresh());
      } catch (err) {
        const e = err instanceof KommoUnavailable ? err : this.tokenFailure(err, 'token refresh');
        if (e instanceof KommoRejected && (e.status === 401 || e.status === 400)) {
          // Revoked or expired refresh token: keeping it would only repeat the refusal.
          await this.store.dropTokens(portalId, current.tokenVersion);
          this.log.error({ portalId, err: e.message }, 'Kommo refused the refresh token; reinstall needed');
          throw new KommoNotAuthorized(e.message);
        }
        throw e;
      }
      const parsed = tokenResponse.safeParse(raw);
      if (!parsed.success) throw new KommoUnavailable('token refresh: Kommo sent no token', 502);
      const tokens = this.stamp(parsed.data);
      if (!(await this.store.saveRefreshed(portalId, current.tokenVersion, tokens))) {
        // Another process stored a pair meanwhile (possible with several server instances).
        this.log.warn({ portalId }, 'Kommo tokens changed during refresh; using the stored pair');
      }
      this.refreshCount.set(portalId, (this.refreshCount.get(portalId) ?? 0) + 1);
      this.log.info({ portalId }, 'Kommo access token refreshed');
      return this.account(portalId);
    });
  }

  /**
   * The answer to a refresh, however late within `lingerMs`. Once Kommo has taken the refresh
   * token it is spent, answer heard or not; giving up at the usual timeout and refreshing again
   * with the same token would be answered "Token has been revoked" and cost a reinstall. So the
   * caller (who holds the account's refresh lock) keeps waiting, and saves the pair that comes.
   */
  private async refreshAnswer(portalId: number, pending: Promise<unknown>): Promise<unknown> {
    try {
      return await this.withTimeout(pending, 'token refresh');
    } catch (err) {
      if (!(err instanceof KommoTimeout)) throw err;
      this.log.warn({ portalId, waitMs: this.lingerMs }, 'Kommo token refresh is slow; waiting for its answer before anyone refreshes again');
      let timer: NodeJS.Timeout | undefined;
      const cap = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new KommoUnavailable(`token refresh: no answer from Kommo in ${this.timeoutMs + this.lingerMs} ms`, null)), this.lingerMs);
      });
      return Promise.race([pending, cap]).finally(() => clearTimeout(timer));
    }
  }

  /**
   * One REST v4 call for a portal: refreshes an expiring token first, retries once after a 401,
   * and sorts failures: 429/5xx/network → KommoUnavailable (retry later), other 4xx → KommoRejected.
   * 204 (nothing found) comes back as `{status: 204, data: null}`.
   */
  async call(portalId: number, method: string, path: string, data?: object): Promise<ApiResult> {
    let a = await this.account(portalId);
    if (a.tokens!.expires_at - EXPIRY_MARGIN_MS <= this.clock.now()) a = await this.refresh(portalId, a.tokenVersion);
    for (let attempt = 0; ; attempt++) {
      const res = await this.send(portalId, this.clientFor(a), method, path, data);
      if (res.status === 401 && attempt === 0) {
        a = await this.refresh(portalId, a.tokenVersion);
        continue;
      }
      if (res.status === 401) throw new KommoNotAuthorized(`${method} ${path}: ${describe(401, res.data)}`);
      if (res.status === 429 || res.status >= 500) throw new KommoUnavailable(`${method} ${path}: ${describe(res.status, res.data)}`, res.status);
      if (res.status >= 400) throw new KommoRejected(`${method} ${path}: ${describe(res.status, res.data)}`, res.status, res.data);
      return res;
    }
  }
}

function noop(): void {}
