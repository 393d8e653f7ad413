import type { DomainContext } from './context';
import { DeferJobError, type JobHandler } from './jobs';
import { KeyedMutex } from './mutex';
import type { CrmRegistry, EntityRef } from './ports';
import type { Contact, Portal } from './types';

/** How long a mirroring job without licence access waits before looking again. */
export const MIRROR_DEFER_MS = 15 * 60_000;

/**
 * Who an alert goes to: the contract between these jobs and every CRM adapter's `alert()`.
 *
 * - `userIds` not empty: exactly those users.
 * - `userIds` empty, with the `entity` the alert is about: the record's responsible user, read
 *   from the CRM; when it has none, the settings' `responsibleUserId`; then the portal's admins.
 * - `userIds` empty, no entity: the portal's admins.
 *
 * A new message alerts the settings' `alertUserIds` when that list is not empty (an empty list
 * means "not chosen", never "nobody"); otherwise the record's responsible user as above (a message
 * with no record: the settings' responsible user, else the admins). A number that drops alerts
 * the admins always, and the `alertUserIds` as well: two calls, the same text, so an adapter that
 * lets a repeated alert replace the earlier one (Bitrix24's TAG) shows a user in both lists one.
 */
export function chosenAlertUsers(settings: Portal['settings']): string[] | null {
  const ids = (settings.alertUserIds ?? []).filter((u) => u.trim() !== '');
  return ids.length > 0 ? ids : null;
}

/** The CRM side of the pipeline: mirror each message into the CRM, alert people about new ones. */
export class CrmJobs {
  // The first messages of an unknown phone arrive together; the lookup-or-create for one contact
  // runs one at a time so the CRM gets one contact, not one per message.
  private readonly contactLock = new KeyedMutex();

  constructor(
    private readonly ctx: DomainContext,
    private readonly crm: CrmRegistry,
    /** Builds a signed media link for the CRM, and a link back to the conversation. */
    private readonly links: { media(sha256: string, mimetype: string, filename: string | null): string | null },
    /** Whether the portal's licence lets mirroring run now; when false the job waits and retries. */
    private readonly mayMirror: (portalId: number) => Promise<boolean> = async () => true,
  ) {}

  async entityFor(portal: Portal, contact: Contact): Promise<EntityRef | null> {
    if (contact.crmEntityId && contact.crmEntityType) return { type: contact.crmEntityType, id: contact.crmEntityId };
    if (!contact.phone) return null; // hidden id: a manager links it by hand
    return this.contactLock.run(`${portal.id}:${contact.id}`, async () => {
      const fresh = await this.ctx.db.repos.contacts.get(portal.id, contact.id);
      if (fresh?.crmEntityId && fresh.crmEntityType) return { type: fresh.crmEntityType, id: fresh.crmEntityId };
      if (portal.settings.unknownNumber === 'ignore') return null;
      const ref = await this.crm(portal.crm).findOrCreateByPhone(portal, contact.phone!, contact.name);
      if (ref) await this.ctx.db.repos.contacts.setCrmEntity(contact.id, ref);
      return ref;
    });
  }

  // Portal rows are read for every job; a short-lived copy spares the database that read while
  // settings changes still show within seconds.
  private readonly portals = new Map<number, { portal: Portal; at: number }>();

  private async portal(id: number): Promise<Portal | null> {
    const hit = this.portals.get(id);
    const now = this.ctx.clock.now();
    if (hit && now - hit.at < 2000) return hit.portal;
    const portal = await this.ctx.db.repos.portals.get(id);
    if (portal) this.portals.set(id, { portal, at: now });
    else this.portals.delete(id);
    return portal;
  }

  private async load(messageId: number) {
    const found = await this.ctx.db.repos.messages.withParties(messageId);
    if (!found) return null;
    const portal = await this.portal(found.message.portalId);
    if (!portal) return null;
    return { ...found, portal };
  }

  mirror(): JobHandler {
    return {
      run: async (job) => {
        const loaded = await this.load(Number(job.payload.messageId));
        if (!loaded) return;
        const { message, portal, contact, numberPhone } = loaded;
        if (portal.settings.mirror === false) return;
        // Postponed, not failed: the job waits (without using attempts) and the licence service
        // releases it the moment access returns.
        if (!(await this.mayMirror(portal.id))) throw new DeferJobError('licence inactive: mirroring waits for access to return', this.ctx.clock.now() + MIRROR_DEFER_MS);
        const entity = await this.entityFor(portal, contact);
        await this.crm(portal.crm).record(portal, entity, {
          messageId: message.id,
          direction: message.direction,
          type: message.type,
          text: message.text,
          phone: contact.phone,
          contactName: contact.name,
          numberPhone,
          mediaUrl: message.media ? this.links.media(message.media.sha256, message.media.mimetype, message.media.filename) : null,
          at: message.createdAt,
          status: message.status,
          fromPhone: message.fromPhone,
        });
      },
    };
  }

  alert(): JobHandler {
    return {
      run: async (job) => {
        const loaded = await this.load(Number(job.payload.messageId));
        if (!loaded) return;
        const { message, portal, contact } = loaded;
        const who = contact.name ?? contact.phone ?? 'WhatsApp contact';
        const body = message.text ?? `[${message.type}]`;
        // Same lookup as the mirror job (shared lock, idempotent), so the alert can open the card.
        const entity = portal.settings.mirror === false ? null : await this.entityFor(portal, contact);
        // With a record the adapter finds its responsible user; without one only these settings say who.
        const fallback = portal.settings.responsibleUserId ? [portal.settings.responsibleUserId] : [];
        const users = chosenAlertUsers(portal.settings) ?? (entity ? [] : fallback);
        await this.crm(portal.crm).alert(portal, users, `WhatsApp: ${who}: ${body.slice(0, 200)}`, null, entity);
      },
    };
  }

  numberAlert(): JobHandler {
    return {
      run: async (job) => {
        const portal = await this.portal(Number(job.portalId));
        const number = await this.ctx.db.repos.numbers.getAny(Number(job.payload.numberId));
        if (!portal || !number) return;
        const what = job.payload.state === 'logged_out' ? 'was logged out; connect it again by QR' : `is ${String(job.payload.state)}`;
        const text = `WhatsApp number ${number.phone ?? `#${number.id}`} ${what}`;
        const crm = this.crm(portal.crm);
        // The admins always (only they can connect it again), and whoever the settings chose.
        await crm.alert(portal, [], text, null);
        const chosen = chosenAlertUsers(portal.settings);
        if (chosen) await crm.alert(portal, chosen, text, null);
      },
    };
  }
}
