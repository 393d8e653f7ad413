// For `npm run demo` (`/demo/kommo`): a fake Kommo account with a lead and its contact, the
// environment that points the server at it, and the two things Kommo itself would do — install
// the integration and hand the widget an X-Auth-Token.
import crypto from 'node:crypto';
import type { DemoCardType, KommoDemoProvider } from '../../server/http/routes/kommoDemo';
import { startFakeKommo, type FakeAccount, type FakeContact, type FakeKommo, type FakeLead, type FakeNote } from './kommo';

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
  /** What /demo/kommo shows of this account: cards, their notes, and the widget's JWT. */
  provider(archivePath: string): KommoDemoProvider;
  close(): Promise<void>;
}

export async function startDemoKommo(opts: { redirectUri: string; contactPhone?: string; maxRps?: number }): Promise<DemoKommo> {
  const clientId = crypto.randomUUID();
  const clientSecret = crypto.randomBytes(24).toString('hex');
  // No rate limit unless asked: the demo and the browser suites run the server at their own
  // pace; Kommo's 7/s is checked by test/kommo/rateLimit.test.ts.
  const fake = await startFakeKommo({ clientId, clientSecret, redirectUri: opts.redirectUri, maxRps: opts.maxRps ?? Infinity });
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
    provider: (archivePath) => demoProvider(fake, account, lead, archivePath),
    close: () => fake.stop(),
  };
}

const NOTE_ENTITY: Record<DemoCardType, FakeNote['entity_type']> = { lead: 'leads', contact: 'contacts', company: 'companies' };

function phonesOf(fields: FakeContact['custom_fields_values']): string {
  const f = (fields ?? []).find((x) => x.field_code === 'PHONE');
  return f ? f.values.map((v) => v.value).join(', ') : '';
}

/** The fake account as the emulated Kommo page shows it. */
export function demoProvider(fake: FakeKommo, account: FakeAccount, lead: FakeLead, archivePath: string): KommoDemoProvider {
  const userName = (id: number) => account.users.find((u) => u.id === id)?.name ?? String(id);
  return {
    archivePath,
    account: { id: account.id, name: account.name, subdomain: account.subdomain, domain: account.domain, users: account.users.map((u) => ({ ...u })) },
    defaultCard: { type: 'lead', id: lead.id },
    clientPhones: [...account.contacts.values()].flatMap((c) => phonesOf(c.custom_fields_values).split(', ').filter(Boolean)),
    card: (type, id) => {
      if (type === 'lead') {
        const l = account.leads.get(id);
        if (!l) return null;
        const contacts = l.contactIds.map((c) => account.contacts.get(c)).filter((c): c is FakeContact => !!c);
        return {
          id: l.id,
          name: l.name,
          fields: [
            { label: 'Pipeline', value: l.pipeline_id === 7_000_042 ? 'WhatsApp' : 'Sales' },
            { label: 'Responsible', value: userName(l.responsible_user_id) },
            { label: 'Tags', value: l.tags.join(', ') || '—' },
            ...contacts.map((c) => ({ label: 'Contact', value: `${c.name} ${phonesOf(c.custom_fields_values)}`.trim() })),
          ],
          links: contacts.map((c) => ({ type: 'contact' as const, id: c.id, name: c.name })),
        };
      }
      if (type === 'contact') {
        const c = account.contacts.get(id);
        if (!c) return null;
        return {
          id: c.id,
          name: c.name,
          fields: [
            { label: 'Phone', value: phonesOf(c.custom_fields_values) || '—' },
            { label: 'Responsible', value: userName(c.responsible_user_id) },
          ],
          links: c.leadIds.map((lid) => ({ type: 'lead' as const, id: lid, name: account.leads.get(lid)?.name ?? String(lid) })),
        };
      }
      const co = account.companies.get(id);
      if (!co) return null;
      return { id: co.id, name: co.name, fields: [{ label: 'Phone', value: phonesOf(co.custom_fields_values) || '—' }], links: [] };
    },
    notes: (type, id) =>
      account.notes
        .filter((n) => n.entity_type === NOTE_ENTITY[type] && n.entity_id === id)
        .map((n) => ({ id: n.id, noteType: n.note_type, text: typeof n.params.text === 'string' ? n.params.text : JSON.stringify(n.params), createdAt: n.created_at })),
    jwt: (userId) => fake.widgetJwt(account.domain, userId),
  };
}
