import crypto from 'node:crypto';
import type { RunningServer } from '../../server/main';
import { startFakeKommo, type FakeAccount, type FakeKommo, type FakeKommoOptions } from '../fakes/kommo';
import { client, startTestServer, waitFor } from '../helpers/server';
import type { StartOptions } from '../../server/main';

export const KOMMO_APP = {
  clientId: 'b1c2d3e4-0000-4000-8000-00000000c11e',
  clientSecret: 'kommo-test-client-secret-0123456789abcdef',
  redirectUri: 'https://incrm.example.test/kommo/oauth',
};

export interface KommoWorld {
  fake: FakeKommo;
  acc: FakeAccount;
  srv: RunningServer;
  portalId: number;
  close(): Promise<void>;
}

/** A fake Kommo on loopback TLS, our server pointed at it, and one account installed through /kommo/oauth. */
export async function kommoWorld(opts: { fake?: Partial<FakeKommoOptions>; env?: Record<string, string>; start?: StartOptions } = {}): Promise<KommoWorld> {
  // Kommo allows 7 requests per second per account, and the fake enforces whatever both sides
  // are told here. Most suites raise it (their bursts would take minutes at 7/s);
  // rateLimit.test.ts runs at Kommo's own 7 and checks nothing goes over it.
  const rps = opts.env?.KOMMO_MAX_RPS ?? '1000';
  const fake = await startFakeKommo({ ...KOMMO_APP, maxRps: Number(rps), ...opts.fake });
  const acc = fake.addAccount('acme' + crypto.randomBytes(3).toString('hex'));
  const srv = await startTestServer(
    {
      KOMMO_CLIENT_ID: KOMMO_APP.clientId,
      KOMMO_CLIENT_SECRET: KOMMO_APP.clientSecret,
      KOMMO_REDIRECT_URI: KOMMO_APP.redirectUri,
      KOMMO_API_BASE: fake.url,
      KOMMO_CA_FILE: fake.caFile,
      ...opts.env,
      KOMMO_MAX_RPS: rps,
    },
    opts.start,
  );
  const res = await fetch(`${srv.url}/kommo/oauth?${new URLSearchParams({ code: fake.issueCode(acc.domain), referer: acc.domain, from_widget: '1', state: 'x' })}`);
  if (res.status !== 200 && res.status !== 202) throw new Error(`install answered ${res.status}: ${await res.text()}`);
  const row = await waitFor(() => srv.db.knex('kommo_accounts').where({ account_id: String(acc.id) }).first(), 5000, 'installed account');
  return {
    fake,
    acc,
    srv,
    portalId: Number(row.portal_id),
    close: async () => {
      await srv.close();
      await fake.stop();
    },
  };
}

/** A widget session: X-Auth-Token → core token → API client. */
export async function widgetClient(w: KommoWorld, userId = 501) {
  const res = await fetch(`${w.srv.url}/kommo/token`, { method: 'POST', headers: { 'X-Auth-Token': w.fake.widgetJwt(w.acc.domain, userId) } });
  const body = (await res.json()) as { token: string };
  if (res.status !== 200) throw new Error(`token exchange answered ${res.status}: ${JSON.stringify(body)}`);
  return client(w.srv.url + '/api/v1', body.token);
}

/** Connects a simulated WhatsApp number to the Kommo portal (admin token from the widget). */
export async function connectNumber(w: KommoWorld, phone = '+15550001000') {
  const admin = await widgetClient(w, 501);
  const anon = client(w.srv.url + '/api/v1');
  const numberId = (await admin.post('/numbers')).body.id as number;
  await waitFor(async () => (await admin.get(`/numbers/${numberId}`)).body.state === 'qr', 5000, 'QR');
  await anon.post(`/simulator/numbers/${numberId}/scan`, { phone });
  await waitFor(async () => (await admin.get(`/numbers/${numberId}`)).body.state === 'ready', 5000, 'ready');
  return { numberId, phone, admin, anon };
}
