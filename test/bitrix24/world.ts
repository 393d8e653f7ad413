import qs from 'qs';
import type { RunningServer, StartOptions } from '../../server/main';
import { startFakeBitrix24, type FakeB24Portal, type FakeBitrix24, type FakeBitrix24Options } from '../fakes/bitrix24';
import { client, startTestServer, waitFor } from '../helpers/server';

export const B24_APP = { clientId: 'local.6a1b2c3d4e5f60.12345678', clientSecret: 'b24-test-client-secret-0123456789abcdef' };

export interface B24World {
  fake: FakeBitrix24;
  portal: FakeB24Portal;
  srv: RunningServer;
  portalId: number;
  close(): Promise<void>;
}

/** Bitrix24's form POST (nested fields bracketed, `auth[member_id]`), as it delivers events. */
export function form(body: object): { headers: Record<string, string>; body: string } {
  return { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: qs.stringify(body) };
}

export async function postInstall(srv: RunningServer, inst: { query: Record<string, string>; form: Record<string, string> }): Promise<Response> {
  return fetch(`${srv.url}/bitrix24/install?${new URLSearchParams(inst.query)}`, { method: 'POST', ...form(inst.form) });
}

export async function postEvent(srv: RunningServer, event: object): Promise<Response> {
  return fetch(`${srv.url}/bitrix24/events`, { method: 'POST', ...form(event) });
}

export async function startB24(opts: { fake?: Partial<FakeBitrix24Options>; env?: Record<string, string>; start?: StartOptions } = {}) {
  const fake = await startFakeBitrix24({ ...B24_APP, ...opts.fake });
  const srv = await startTestServer(
    {
      BITRIX24_CLIENT_ID: B24_APP.clientId,
      BITRIX24_CLIENT_SECRET: B24_APP.clientSecret,
      BITRIX24_OAUTH_URL: fake.url,
      BITRIX24_REST_URL: fake.restUrl,
      BITRIX24_BACKOFF_MS: '50',
      ...opts.env,
    },
    opts.start,
  );
  return { fake, srv };
}

/** A fake Bitrix24, our server pointed at it, and one portal installed through the install page. */
export async function bitrix24World(opts: Parameters<typeof startB24>[0] & { beforeInstall?: (p: FakeB24Portal) => void } = {}): Promise<B24World> {
  const { fake, srv } = await startB24(opts);
  const portal = fake.addPortal('acme' + Math.random().toString(16).slice(2, 8));
  opts.beforeInstall?.(portal);
  const inst = fake.installation(portal);
  const res = await postInstall(srv, inst);
  if (res.status !== 200) throw new Error(`install answered ${res.status}: ${await res.text()}`);
  const row = await waitFor(() => srv.db.knex('bitrix24_portals').where({ member_id: portal.memberId }).first(), 5000, 'installed portal');
  return {
    fake,
    portal,
    srv,
    portalId: Number(row.portal_id),
    close: async () => {
      await srv.close();
      await fake.stop();
    },
  };
}

/** A frame session: the card tab's form → boot page → core token → API client. */
export async function frameToken(w: { fake: FakeBitrix24; portal: FakeB24Portal; srv: RunningServer }, userId = 1): Promise<string> {
  const f = w.fake.frameForm(w.portal, userId, 'CRM_DEAL_DETAIL_TAB', { ID: '1' });
  const res = await fetch(`${w.srv.url}/bitrix24/token`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ member_id: f.member_id, auth_id: f.AUTH_ID }) });
  const body = (await res.json()) as { token: string };
  if (res.status !== 200) throw new Error(`token exchange answered ${res.status}: ${JSON.stringify(body)}`);
  return body.token;
}

export async function apiClient(w: B24World, userId = 1) {
  return client(w.srv.url + '/api/v1', await frameToken(w, userId));
}

/** Connects a simulated WhatsApp number to the portal (admin token from a frame). */
export async function connectNumber(w: B24World, phone = '+15550001000') {
  const admin = await apiClient(w, 1);
  const anon = client(w.srv.url + '/api/v1');
  const numberId = (await admin.post('/numbers')).body.id as number;
  await waitFor(async () => (await admin.get(`/numbers/${numberId}`)).body.state === 'qr', 5000, 'QR');
  await anon.post(`/simulator/numbers/${numberId}/scan`, { phone });
  await waitFor(async () => (await admin.get(`/numbers/${numberId}`)).body.state === 'ready', 5000, 'ready');
  return { numberId, phone, admin, anon };
}
