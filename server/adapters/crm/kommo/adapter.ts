import crypto from 'node:crypto';
import { z } from 'zod';
import { crmMessageText } from '../../../domain/crmText';
import { KeyedMutex } from '../../../domain/mutex';
import { toE164 } from '../../../domain/phone';
import type { Clock, CrmAdapter, CrmMessageRecord, EntityRef, LivePublisher } from '../../../domain/ports';
import type { Portal } from '../../../domain/types';
import type { Logger } from '../../../logger';
import { KommoRejected, type KommoApi } from './client';
import { KommoLeads, newLeadFields } from './leads';
import { KommoNotes, type NoteTarget } from './notes';
import { id, parse } from './payload';
import { isSamePhone, searchQuery } from './phoneMatch';
import type { KommoStore, PhoneLink } from './store';

// ---------------------------------------------------------------- REST v4 payloads (parsed, never trusted)

const fieldValue = z.object({ value: z.union([z.string(), z.number()]).nullable().optional(), enum_code: z.string().nullable().optional(), enum: z.string().nullable().optional() }).loose();
const customField = z.object({ field_code: z.string().nullable().optional(), field_type: z.string().optional(), values: z.array(fieldValue).nullable().optional() }).loose();
const withFields = z.object({ id, responsible_user_id: z.number().nullable().optional(), custom_fields_values: z.array(customField).nullable().optional() }).loose();

const contactEntity = withFields.extend({ _embedded: z.object({ leads: z.array(z.object({ id }).loose()).optional() }).loose().optional() });
const contactList = z.object({ _embedded: z.object({ contacts: z.array(contactEntity) }).loose() }).loose();
const companyList = z.object({ _embedded: z.object({ companies: z.array(withFields) }).loose() }).loose();
const leadEntity = z
  .object({
    id,
    responsible_user_id: z.number().nullable().optional(),
    _embedded: z
      .object({ contacts: z.array(z.object({ id }).loose()).optional(), companies: z.array(z.object({ id }).loose()).optional() })
      .loose()
      .optional(),
  })
  .loose();
const complexCreated = z.array(z.object({ id, contact_id: id.nullable().optional() }).loose()).min(1);
const userList = z.object({
  _embedded: z.object({ users: z.array(z.object({ id, rights: z.object({ is_admin: z.boolean().optional() }).loose().optional() }).loose()) }).loose(),
});

const pipelineList = z.object({
  _embedded: z.object({
    pipelines: z.array(
      z
        .object({
          id,
          name: z.string(),
          is_main: z.boolean().optional(),
          _embedded: z.object({ statuses: z.array(z.object({ id, name: z.string(), type: z.number().optional() }).loose()) }).loose().optional(),
        })
        .loose(),
    ),
  }).loose(),
});
const userNames = z.object({
  _embedded: z.object({ users: z.array(z.object({ id, name: z.string(), rights: z.object({ is_admin: z.boolean().optional(), is_active: z.boolean().optional() }).loose().optional() }).loose()) }).loose(),
});

/** The PHONE values of a contact or company as stored (Kommo keeps what people typed). */
function rawPhonesIn(entity: z.infer<typeof withFields>): string[] {
  const out: string[] = [];
  for (const f of entity.custom_fields_values ?? []) {
    if (f.field_code !== 'PHONE') continue;
    for (const v of f.values ?? []) if (v.value !== null && v.value !== undefined) out.push(String(v.value));
  }
  return out;
}

/** The PHONE values of a contact or company, in E.164. */
export function phonesIn(entity: z.infer<typeof withFields>): string[] {
  return rawPhonesIn(entity)
    .map((v) => toE164(v))
    .filter((p): p is string => p !== null);
}

const ENTITY_PATHS: Record<string, 'leads' | 'contacts' | 'companies'> = { lead: 'leads', deal: 'leads', contact: 'contacts', company: 'companies' };

export interface KommoAdapterDeps {
  api: KommoApi;
  store: KommoStore;
  live: LivePublisher;
  clock: Clock;
  log: Logger;
}


/**
 * The CRM port for Kommo. A WhatsApp phone maps to one Kommo contact (and the lead made or found
 * for it); that mapping is stored, so twenty first messages from one phone make one contact and
 * one lead, and a note is written once per message and record even when its job is retried.
 */
export class KommoAdapter implements CrmAdapter {
  private readonly phoneLock = new KeyedMutex();
  private readonly admins = new Map<number, { ids: string[]; at: number }>();

  private readonly notes: KommoNotes;
  private readonly leads: KommoLeads;

  constructor(private readonly d: KommoAdapterDeps) {
    this.notes = new KommoNotes(d);
    this.leads = new KommoLeads(d);
  }

  private async fetchContacts(portalId: number, ids: string[]): Promise<z.infer<typeof contactEntity>[]> {
    if (ids.length === 0) return [];
    const res = await this.d.api.call(portalId, 'GET', '/api/v4/contacts', { filter: { id: ids.map(Number) }, limit: 250 });
    return res.status === 204 ? [] : parse(contactList, res.data, 'contacts')._embedded.contacts;
  }

  private async fetchCompanies(portalId: number, ids: string[]): Promise<z.infer<typeof withFields>[]> {
    if (ids.length === 0) return [];
    const res = await this.d.api.call(portalId, 'GET', '/api/v4/companies', { filter: { id: ids.map(Number) }, limit: 250 });
    return res.status === 204 ? [] : parse(companyList, res.data, 'companies')._embedded.companies;
  }

  async phonesOf(portal: Portal, entity: EntityRef): Promise<string[]> {
    if (entity.type === 'phone') {
      const p = toE164(entity.id);
      return p ? [p] : [];
    }
    if (!/^\d+$/.test(entity.id)) return [];
    const entities: z.infer<typeof withFields>[] = [];
    if (entity.type === 'lead' || entity.type === 'deal') {
      const res = await this.d.api.call(portal.id, 'GET', `/api/v4/leads/${entity.id}`, { with: 'contacts' });
      if (res.status === 204) return []; // no such lead
      const lead = parse(leadEntity, res.data, 'lead');
      entities.push(...(await this.fetchContacts(portal.id, (lead._embedded?.contacts ?? []).map((c) => c.id))));
      entities.push(...(await this.fetchCompanies(portal.id, (lead._embedded?.companies ?? []).map((c) => c.id))));
    } else if (entity.type === 'contact' || entity.type === 'company') {
      const res = await this.d.api.call(portal.id, 'GET', `/api/v4/${ENTITY_PATHS[entity.type]}/${entity.id}`);
      if (res.status === 204) return [];
      entities.push(parse(withFields, res.data, entity.type));
    } else {
      return [];
    }
    return [...new Set(entities.flatMap(phonesIn))];
  }

  /** The Kommo contact whose PHONE field holds this number (in any format), with its most recent lead. */
  private async searchByPhone(portalId: number, phone: string): Promise<PhoneLink | null> {
    const res = await this.d.api.call(portalId, 'GET', '/api/v4/contacts', { query: searchQuery(phone), with: 'leads', limit: 250 });
    if (res.status === 204) return null;
    const found = parse(contactList, res.data, 'contact search')._embedded.contacts.find((c) => rawPhonesIn(c).some((v) => isSamePhone(v, phone)));
    if (!found) return null;
    // Its newest open lead: a won or lost one is history, new messages do not belong there.
    const open = await this.leads.newestOpen(portalId, (found._embedded?.leads ?? []).map((l) => l.id));
    return { contactId: found.id, leadId: open?.id ?? null };
  }

  async findOrCreateByPhone(portal: Portal, phone: string, name: string | null): Promise<EntityRef | null> {
    return this.phoneLock.run(`${portal.id}:${phone}`, async () => {
      const known = await this.d.store.phoneLink(portal.id, phone);
      if (known) return { type: 'contact', id: known.contactId };
      // A creation of ours that timed out may still be running: let it land before searching.
      await this.d.api.settled(portal.id);
      let link = await this.searchByPhone(portal.id, phone);
      if (!link) {
        if (portal.settings.unknownNumber === 'ignore') return null;
        link = await this.create(portal, phone, name);
      }
      await this.d.store.savePhoneLink(portal.id, phone, link, this.d.clock.now());
      this.leads.remember(portal.id, link.contactId, link.leadId);
      return { type: 'contact', id: link.contactId };
    });
  }

  /** Contact and lead in one call (`/leads/complex`), so a failure cannot leave half of them. */
  private async create(portal: Portal, phone: string, name: string | null): Promise<PhoneLink> {
    const responsible = /^\d+$/.test(portal.settings.responsibleUserId ?? '') ? Number(portal.settings.responsibleUserId) : undefined;
    const lead = {
      ...newLeadFields(portal, name ?? phone),
      _embedded: {
        tags: [{ name: 'WhatsApp' }],
        contacts: [
          {
            name: name ?? phone,
            ...(responsible ? { responsible_user_id: responsible } : {}),
            custom_fields_values: [{ field_code: 'PHONE', values: [{ value: phone, enum_code: 'MOB' }] }],
          },
        ],
      },
    };
    const res = await this.d.api.call(portal.id, 'POST', '/api/v4/leads/complex', [lead]);
    const [made] = parse(complexCreated, res.data, 'lead creation');
    if (!made!.contact_id) throw new KommoRejected('lead creation: Kommo returned no contact id', 502, res.data);
    this.d.log.info({ portalId: portal.id, leadId: made!.id, contactId: made!.contact_id }, 'Kommo contact and lead created for a new WhatsApp phone');
    return { contactId: made!.contact_id, leadId: made!.id };
  }

  /**
   * Where a message's notes go: the contact and its open lead (or the lead a manager linked). A
   * client writing while all its leads are closed gets a new one where the settings create leads;
   * a message of ours never makes one.
   */
  private async targets(portal: Portal, entity: EntityRef | null, message: CrmMessageRecord): Promise<NoteTarget[]> {
    if (entity?.type === 'lead' || entity?.type === 'deal') return [{ path: 'leads', id: entity.id }];
    let contactId = entity?.type === 'contact' ? entity.id : null;
    if (!contactId && message.phone) contactId = (await this.d.store.phoneLink(portal.id, message.phone))?.contactId ?? null;
    if (!contactId) return [];
    const create = message.direction === 'in' && portal.settings.unknownNumber === 'create' ? { name: message.contactName ?? message.phone ?? 'WhatsApp contact' } : null;
    const leadId = await this.leads.openLeadOf(portal, contactId, create);
    return [...(leadId ? [{ path: 'leads' as const, id: leadId }] : []), { path: 'contacts' as const, id: contactId }];
  }

  async record(portal: Portal, entity: EntityRef | null, message: CrmMessageRecord): Promise<void> {
    const targets = await this.targets(portal, entity, message);
    if (targets.length === 0) return; // nothing in Kommo to attach it to (hidden id, or "ignore unknown numbers")
    const key =
      message.messageId !== undefined
        ? `m:${message.messageId}`
        : 'h:' + crypto.createHash('sha256').update(JSON.stringify([message.direction, message.phone, message.at, message.type, message.text])).digest('hex').slice(0, 40);
    await this.notes.write(portal.id, key, crmMessageText(message), targets);
  }

  /** What the settings page offers: pipelines with their stages, and the account's users. */
  async options(portal: Portal): Promise<{
    pipelines: Array<{ id: string; name: string; main: boolean; stages: Array<{ id: string; name: string }> }>;
    users: Array<{ id: string; name: string; admin: boolean }>;
  }> {
    const [p, u] = await Promise.all([this.d.api.call(portal.id, 'GET', '/api/v4/leads/pipelines'), this.d.api.call(portal.id, 'GET', '/api/v4/users', { limit: 250 })]);
    const pipelines = p.status === 204 ? [] : parse(pipelineList, p.data, 'pipelines')._embedded.pipelines;
    const users = u.status === 204 ? [] : parse(userNames, u.data, 'users')._embedded.users;
    return {
      // Stages 142 (won) and 143 (lost) are closing stages: a new lead never starts there.
      pipelines: pipelines.map((x) => ({
        id: x.id,
        name: x.name,
        main: x.is_main === true,
        stages: (x._embedded?.statuses ?? []).filter((s) => s.id !== '142' && s.id !== '143').map((s) => ({ id: s.id, name: s.name })),
      })),
      users: users.filter((x) => x.rights?.is_active !== false).map((x) => ({ id: x.id, name: x.name, admin: x.rights?.is_admin === true })),
    };
  }

  private async adminsOf(portalId: number): Promise<string[]> {
    const hit = this.admins.get(portalId);
    if (hit && this.d.clock.now() - hit.at < 5 * 60_000) return hit.ids;
    const res = await this.d.api.call(portalId, 'GET', '/api/v4/users', { limit: 250 });
    const ids = res.status === 204 ? [] : parse(userList, res.data, 'users')._embedded.users.filter((u) => u.rights?.is_admin).map((u) => u.id);
    this.admins.set(portalId, { ids, at: this.d.clock.now() });
    return ids;
  }

  private async responsibleOf(portalId: number, entity: EntityRef): Promise<string | null> {
    const path = ENTITY_PATHS[entity.type];
    if (!path || !/^\d+$/.test(entity.id)) return null;
    const res = await this.d.api.call(portalId, 'GET', `/api/v4/${path}/${entity.id}`);
    if (res.status === 204) return null;
    const r = parse(withFields, res.data, entity.type).responsible_user_id;
    return r ? String(r) : null;
  }

  /** The card an alert opens: the contact's lead when there is one, else the contact. */
  private async cardLink(portal: Portal, entity: EntityRef): Promise<string | null> {
    const account = await this.d.store.byPortal(portal.id);
    if (!account) return null;
    if (entity.type === 'lead' || entity.type === 'deal') return `https://${account.domain}/leads/detail/${entity.id}`;
    if (entity.type === 'company') return `https://${account.domain}/companies/detail/${entity.id}`;
    if (entity.type !== 'contact') return null;
    const lead = await this.leads.openLeadOf(portal, entity.id, null);
    return lead ? `https://${account.domain}/leads/detail/${lead}` : `https://${account.domain}/contacts/detail/${entity.id}`;
  }

  /**
   * Alerts go to a per-user queue the widget's `everywhere` script reads (and, live, as an
   * `alert` event on the portal's stream). No user chosen: for an alert about a message (the
   * caller passes its record, or null when none is known) the record's responsible user, else
   * the settings' responsible user, else the admins; for an alert about no record at all (no
   * `entity` argument: a number dropped) the admins.
   */
  async alert(portal: Portal, userIds: string[], text: string, link: string | null, entity?: EntityRef | null): Promise<void> {
    let users = userIds;
    if (users.length === 0 && entity !== undefined) {
      const r = (entity ? await this.responsibleOf(portal.id, entity) : null) ?? (/^\d+$/.test(portal.settings.responsibleUserId ?? '') ? portal.settings.responsibleUserId! : null);
      if (r) users = [r];
    }
    if (users.length === 0) users = await this.adminsOf(portal.id);
    const href = link ?? (entity ? await this.cardLink(portal, entity) : null);
    const stored = await this.d.store.pushAlerts(portal.id, [...new Set(users)], text, href, this.d.clock.now());
    if (stored.length === 0) return;
    this.d.live.publish(portal.id, { type: 'alert', alertId: stored[stored.length - 1]!.id, userIds: stored.map((a) => a.userId), text, link: href });
  }
}
