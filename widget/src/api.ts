// The widget API client: bearer token from the host (cached until shortly before expiry, renewed
// once on a 401), JSON in and out, errors as ApiError with the server's code and message.
import type { Host } from './host';
import { expiryMs } from './logic';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class Api {
  private cached: { token: string; exp: number } | null = null;
  private pending: Promise<string> | null = null;

  constructor(private readonly host: Host) {}

  get base(): string {
    return this.host.apiBase.replace(/\/+$/, '');
  }

  /** A token valid for at least another minute. */
  token(force = false): Promise<string> {
    if (!force && this.cached && this.cached.exp - Date.now() > 60_000) return Promise.resolve(this.cached.token);
    if (this.pending && !force) return this.pending;
    const p = this.host.getToken(force).then(
      (t) => {
        this.cached = { token: t.token, exp: expiryMs(t.expiresAt) };
        this.pending = null;
        return t.token;
      },
      (err: unknown) => {
        this.pending = null;
        throw err;
      },
    );
    this.pending = p;
    return p;
  }

  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const isForm = typeof FormData !== 'undefined' && body instanceof FormData;
    const go = async (force: boolean) => {
      const token = await this.token(force);
      return fetch(`${this.base}/api/v1${path}`, {
        method,
        headers: {
          Authorization: `Bearer ${token}`,
          ...(body !== undefined && !isForm ? { 'Content-Type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : isForm ? (body as FormData) : JSON.stringify(body),
      });
    };
    let res: Response;
    try {
      res = await go(false);
      if (res.status === 401) res = await go(true);
    } catch (err) {
      throw new ApiError(0, 'network', err instanceof Error ? err.message : String(err));
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let data: unknown = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    if (!res.ok) {
      const e = (data as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiError(res.status, e?.code ?? 'http_' + res.status, e?.message ?? (text.slice(0, 200) || res.statusText));
    }
    return data as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
  post<T>(path: string, body: unknown = {}, headers?: Record<string, string>): Promise<T> {
    return this.request<T>('POST', path, body, headers);
  }
  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }
}

/** GET that treats 404 as "the server has no such feature" (licence, console link, CRM options). */
export async function optional<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return null;
    throw err;
  }
}
