// For `npm run demo` (`/demo/kommo`): a fake Kommo account with a lead and its contact, the
// environment that points the server at it, and the two things Kommo itself would do — install
// the integration and hand the widget an X-Auth-Token.
import crypto from 'node:crypto';
import { startFakeKommo, type FakeAccount, type FakeContact, type FakeKommo, type FakeLead } from './kommo';

export interface DemoKommo {
  fake: FakeKommo;
  account: FakeAccount;
  lead: FakeLead;
  contact: FakeContact;
  /** Environment for `startServer` (merge into the demo's config). */
  env: Record<string, string>;
  /** Kommo's install call to our redirect URI; resolves when the server answered. */
  install(serverUrl: string): Promise<number>;
  /** What `self.$authorizedAjax` would send for this user (501 = admin, 502 = manager). */
  widgetJwt(userId?: number): string;
  close(): Promise<void>;
}

export async function startDemoKommo(opts: { redirectUri: string; contactPhone?: string }): Promise<DemoKommo> {
  const clientId = crypto.randomUUID();
  const clientSecret = crypto.randomBytes(24).toString('hex');
  const fake = await startFakeKommo({ clientId, clientSecret, redirectUri: opts.redirectUri });
  const account = fake.addAccount('demo', { name: 'Demo Account' });
  const contact = fake.addContact(account, { name: 'Maria Silva', phones: [opts.contactPhone ?? '+15550000002'] });
  const lead = fake.addLead(account, { name: 'Website redesign', contactIds: [contact.id] });
  return {
    fake,
    account,
    lead,
    contact,
    env: {
      KOMMO_CLIENT_ID: clientId,
      KOMMO_CLIENT_SECRET: clientSecret,
      KOMMO_REDIRECT_URI: opts.redirectUri,
      KOMMO_API_BASE: fake.url,
      KOMMO_CA_FILE: fake.caFile,
    },
    install: async (serverUrl) => {
      const q = new URLSearchParams({ code: fake.issueCode(account.domain), referer: account.domain, from_widget: '1' });
      return (await fetch(`${serverUrl}/kommo/oauth?${q}`)).status;
    },
    widgetJwt: (userId = 502) => fake.widgetJwt(account.domain, userId),
    close: () => fake.stop(),
  };
}
