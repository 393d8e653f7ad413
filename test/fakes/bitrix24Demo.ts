// For `npm run demo` (`/demo/bitrix24`): a fake Bitrix24 portal with a deal and its contact, the
// environment that points the server at it, and what Bitrix24 itself does on install — POST the
// install page form and send ONAPPINSTALL.
import crypto from 'node:crypto';
import qs from 'qs';
import { startFakeBitrix24, type FakeB24Portal, type FakeBitrix24, type FakeItem } from './bitrix24';

export interface DemoBitrix24 {
  fake: FakeBitrix24;
  portal: FakeB24Portal;
  deal: FakeItem;
  contact: FakeItem;
  /** Environment for `startServer` (merge into the demo's config). */
  env: Record<string, string>;
  /** Bitrix24's install: the install page POST, then ONAPPINSTALL. Resolves with the page's status. */
  install(serverUrl: string): Promise<number>;
  /** The emulated portal page of this deal on our server. */
  pageUrl(serverUrl: string): string;
  /** What a bare /demo/bitrix24 opens. */
  card: { member: string; deal: string };
  close(): Promise<void>;
}

export async function startDemoBitrix24(opts: { contactPhone?: string } = {}): Promise<DemoBitrix24> {
  const clientId = `local.${crypto.randomBytes(7).toString('hex')}.${crypto.randomBytes(4).toString('hex')}`;
  const clientSecret = crypto.randomBytes(24).toString('hex');
  const fake = await startFakeBitrix24({ clientId, clientSecret });
  const portal = fake.addPortal('demo');
  const contact = fake.addContact(portal, { name: 'Maria Silva', phones: [opts.contactPhone ?? '+15550000002'] });
  const deal = fake.addDeal(portal, { title: 'Website redesign', contactIds: [contact.ID] });
  return {
    fake,
    portal,
    deal,
    contact,
    env: { BITRIX24_CLIENT_ID: clientId, BITRIX24_CLIENT_SECRET: clientSecret, BITRIX24_OAUTH_URL: fake.url, BITRIX24_REST_URL: fake.restUrl },
    install: async (serverUrl) => {
      const inst = fake.installation(portal);
      const page = await fetch(`${serverUrl}/bitrix24/install?${new URLSearchParams(inst.query)}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(inst.form).toString(),
      });
      await fetch(`${serverUrl}/bitrix24/events`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: qs.stringify(inst.event) });
      return page.status;
    },
    card: { member: portal.memberId, deal: String(deal.ID) },
    pageUrl: (serverUrl) => `${serverUrl}/demo/bitrix24?member=${portal.memberId}&deal=${deal.ID}`,
    close: () => fake.stop(),
  };
}
