import type { Clock } from '../../server/domain/ports';
import { DAY_MS } from '../../server/domain/licence';
import type { RunningServer, StartOptions } from '../../server/main';
import { client, startTestServer } from '../helpers/server';

/**
 * A clock that runs with real time plus an offset the test moves forward. Never behind real
 * time: rows stamped with Date.now() (jobs, portals) stay due for the runner.
 */
export class OffsetClock implements Clock {
  offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
  advance(ms: number): void {
    this.offset += ms;
  }
  days(n: number): void {
    this.advance(n * DAY_MS);
  }
}

export const OPERATOR_TOKEN = 'operator-token-0123456789abcdef';

/** A server on an offset clock whose licence rules run only when the test calls tick(). */
export async function licenceServer(env: Record<string, string> = {}, opts: StartOptions = {}) {
  const clock = new OffsetClock();
  const srv = await startTestServer(
    { OPERATOR_TOKEN, ...env },
    { clock, licenceTickMs: 0, console: { slowdownMs: 20, ...opts.console }, ...opts },
  );
  return { srv, clock };
}

/** A bare portal (no number) with admin and user API clients. */
export async function newPortal(srv: RunningServer, name = 'Shop') {
  const anon = client(srv.url + '/api/v1');
  const p = (await anon.post('/simulator/portals', { crm: 'none', name })).body as { portalId: number; adminToken: string; userToken: string };
  return { ...p, admin: client(srv.url + '/api/v1', p.adminToken), user: client(srv.url + '/api/v1', p.userToken), anon };
}

export const operatorApi = (srv: RunningServer, token = OPERATOR_TOKEN) => client(srv.url + '/api/v1/operator', token);
