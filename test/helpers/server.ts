import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEnv, type Config } from '../../server/config';
import { createLogger } from '../../server/logger';
import { startServer, type RunningServer, type StartOptions } from '../../server/main';

/** A fresh DATA_DIR under the OS temp dir. */
export function tempDir(prefix = 'incrm-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function testConfig(env: Record<string, string> = {}): Config {
  const parsed = parseEnv({ WA_ENGINE: 'simulator', PORT: '0', LOG_LEVEL: 'silent', DATA_DIR: tempDir(), ...env });
  return { ...parsed, SECRET_KEY: parsed.SECRET_KEY ?? 'test-secret-key-0123456789abcdef0123456789', mediaMaxBytes: 5 * 1024 * 1024 };
}

/** Starts the real server in-process on a free port with the simulator and short job backoffs. */
export async function startTestServer(env: Record<string, string> = {}, opts: StartOptions = {}): Promise<RunningServer> {
  const config = testConfig(env);
  return startServer(config, {
    log: createLogger(config.LOG_LEVEL),
    ...opts,
    jobs: { pollMs: 50, backoffBaseMs: 20, backoffMaxMs: 200, ...opts.jobs },
  });
}

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** A small JSON client for the widget API, over real HTTP. */
export function client(baseUrl: string, token?: string) {
  const call = async <T = any>(method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> => {
    const res = await fetch(baseUrl + p, {
      method,
      headers: {
        ...(body !== undefined && !(body instanceof FormData) ? { 'Content-Type': 'application/json' } : {}),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : body instanceof FormData ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  };
  return {
    get: <T = any>(p: string, h?: Record<string, string>) => call<T>('GET', p, undefined, h),
    post: <T = any>(p: string, b?: unknown, h?: Record<string, string>) => call<T>('POST', p, b ?? {}, h),
    put: <T = any>(p: string, b?: unknown, h?: Record<string, string>) => call<T>('PUT', p, b ?? {}, h),
    del: <T = any>(p: string, h?: Record<string, string>) => call<T>('DELETE', p, undefined, h),
  };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(fn: () => Promise<T> | T, timeoutMs = 5000, what = 'condition'): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A portal with one ready simulated number: the starting point of most tests. */
export async function portalWithNumber(srv: RunningServer, numberPhone = '+15550000001') {
  const anon = client(srv.url + '/api/v1');
  const portal = (await anon.post('/simulator/portals', { crm: 'none', name: 'Test' })).body as { portalId: number; adminToken: string; userToken: string };
  const admin = client(srv.url + '/api/v1', portal.adminToken);
  const user = client(srv.url + '/api/v1', portal.userToken);
  const created = await admin.post('/numbers');
  const numberId = created.body.id as number;
  await waitFor(async () => (await admin.get(`/numbers/${numberId}`)).body.state === 'qr', 5000, 'QR');
  await anon.post(`/simulator/numbers/${numberId}/scan`, { phone: numberPhone });
  await waitFor(async () => (await admin.get(`/numbers/${numberId}`)).body.state === 'ready', 5000, 'ready');
  return { ...portal, numberId, numberPhone, admin, user, anon };
}

/**
 * The CRM outage tests' burst: 300 inbound messages in 15 waves of 20 to `to`, from 30 clients
 * `+15558880000`… (the first ten are the CRM's known contacts), each text `outage msg N.`.
 * Returns the texts in the order sent.
 */
export async function outageBurst(serverUrl: string, to: string): Promise<string[]> {
  const anon = client(serverUrl + '/api/v1');
  const sent: string[] = [];
  for (let batch = 0; batch < 15; batch++) {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const n = batch * 20 + i;
        const text = `outage msg ${n}.`;
        sent.push(text);
        return anon.post('/simulator/inbound', { to, from: `+1555888${String(n % 30).padStart(4, '0')}`, name: `Client ${n % 30}`, text });
      }),
    );
  }
  return sent;
}
