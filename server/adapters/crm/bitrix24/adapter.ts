import crypto from 'node:crypto';
import { z } from 'zod';
import { crmMessageText } from '../../../domain/crmText';
import { KeyedMutex } from '../../../domain/mutex';
import { toE164 } from '../../../domain/phone';
import type { Clock, CrmAdapter, CrmMessageRecord, EntityRef } from '../../../domain/ports';
import type { Portal } from '../../../domain/types';
import type { Logger } from '../../../logger';
import { Bitrix24Rejected, Bitrix24Unavailable, type Bitrix24Api } from './client';
import type { B24PhoneLink, Bitrix24Store } from './store';
import { TtlCache } from './ttlCache';

// ---------------------------------------------------------------- REST payloads (parsed, never trusted)

const id = z.union([z.number(), z.string().regex(/^\d+$/)]).transform((v) => String(v));
const optId = z.union([z.number(), z.string(), z.null()]).optional().transform((v) => (v === null || v === undefined || v === '' || v === '0' || v === 0 ? null : String(v)));
const multiField = z.object({ VALUE: z.union([z.string(), z.number()]).optional().nullable(), VALUE_TYPE: z.string().optional().nullable() }).loose();
const withPhones = z.object({ ID: id, PHONE: z.array(multiField).optional().nullable(), ASSIGNED_BY_ID: optId, COMPANY_ID: optId, CONTACT_ID: optId }).loose();
const contactItems = z.array(z.object({ CONTACT_ID: id }).loose());
const idList = z.array(z.object({ ID: id }).loose());
const duplicates = z.union([z.array(z.unknown()), z.object({ CONTACT: z.array(id).optional() }).loose()]);
const newId = id;
const comments = z.array(z.object({ ID: id, COMMENT: z.string().nullable().optional() }).loose());
/** A deal's or lead's stage semantics: CLOSED (deals), STATUS_SEMANTIC_ID P in progress / S won / F lost (leads). */
const stageOf = z.object({ ID: id, CLOSED: z.string().nullable().optional(), STATUS_SEMANTIC_ID: z.string().nullable().optional() }).loose();
const categories = z.object({ categories: z.array(z.object({ id, name: z.string(), isDefault: z.union([z.string(), z.boolean()]).optional() }).loose()) }).loose();
const statuses = z.array(z.object({ STATUS_ID: z.string(), NAME: z.string(), SEMANTICS: z.string().nullable().optional(), SORT: z.union([z.string(), z.number()]).optional() }).loose());
const users = z.array(z.object({ ID: id, NAME: z.string().nullable().optional(), LAST_NAME: z.string().nullable().optional(), EMAIL: z.string().nullable().optional(), ACTIVE: z.union([z.boolean(), z.string()]).optional() }).loose());

function parse<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const r = schema.safeParse(data);
  if (!r.success) throw new Bitrix24Rejected(`${what}: unexpected Bitrix24 payload (${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message})`, 'BAD_PAYLOAD', 502);
  return r.data;
}

/** The PHONE values of a CRM item, in E.164 (Bitrix24 stores what people typed). */
export function phonesIn(item: z.infer<typeof withPhones>): string[] {
  const out: string[] = [];
  for (const f of item.PHONE ?? []) {
    const p = f.VALUE === null || f.VALUE === undefined ? null : toE164(String(f.VALUE));
    if (p) out.push(p);
  }
  return out;
}

const KINDS = { deal: 'deal', lead: 'lead', contact: 'contact', company: 'company' } as const;
type Kind = keyof typeof KINDS;
const isKind = (t: string): t is Kind => t in KINDS;

/** Text of the timeline comment a message becomes; the last line is the marker that finds it again. */
export function commentText(m: CrmMessageRecord, key: string): string {
  return `${crmMessageText(m)}\n${marker(key)}`;
}

export const marker = (key: string) => `#incrm-${key}`;

export interface Bitrix24AdapterDeps {
  api: Bitrix24Api;
  store: Bitrix24Store;
  clock: Clock;
  log: Logger;
  /** This process, for the per-phone claim rows. */
  worker: string;
}

/** A claim on a phone whose holder went quiet this long is taken over by another process. */
const CLAIM_STALE_MS = 2 * 60_000;
/**
 * How long "this deal is open" / "this is the contact's open deal" is believed. Managers close
 * deals and open new ones in Bitrix24 without telling us; a minute bounds how many messages still
 * go to a deal closed meanwhile, at one read per deal per minute.
 */
const OPEN_TTL_MS = 60_000;

type Ref = { type: 'deal' | 'lead'; id: string };

/**
 * The CRM port for Bitrix24. A WhatsApp phone maps to one contact (found by
 * `crm.duplicate.findbycomm`, else created with a deal or lead); the mapping row is also the
 * claim that keeps two workers from creating twice. Each message becomes one timeline comment
 * on the contact and one on its open deal, remembered per message, and checked in the timeline
 * before it is written again after an uncertain failure.
 */
export class Bitrix24Adapter implements CrmAdapter {
  private readonly phoneLock = new KeyedMutex();
  /** portal:kind:contact → the contact's newest open deal (lead), or null for none. */
  private readonly openEntity: TtlCache<Ref | null>;
  /** portal:kind:id → whether that deal (lead) is still open. */
  private readonly stillOpenCache: TtlCache<boolean>;

  constructor(private readonly d: Bitrix24AdapterDeps) {
    this.openEntity = new TtlCache(d.clock, OPEN_TTL_MS);
    this.stillOpenCache = new TtlCache(d.clock, OPEN_TTL_MS);
  }

  private now(): number {
    return this.d.clock.now();
  }

  /** A `crm.*.get` that answers null for "Not found" (Bitrix24 sends 400 with no code for it). */
  private async getItem(portalId: number, kind: Kind, itemId: string): Promise<z.infer<typeof withPhones> | null> {
    try {
      return parse(withPhones, await this.d.api.call(portalId, `crm.${kind}.get`, { id: itemId }), kind);
    } catch (err) {
      if (err instanceof Bitrix24Rejected && err.code !== 'BAD_PAYLOAD') return null;
      throw err;
    }
  }

  private async contactIdsOf(portalId: number, kind: 'deal' | 'lead' | 'company', itemId: string): Promise<string[]> {
    try {
      return parse(contactItems, await this.d.api.call(portalId, `crm.${kind}.contact.items.get`, { id: itemId }), 'contact items').map((c) => c.CONTACT_ID);
    } catch (err) {
      if (err instanceof Bitrix24Rejected && err.code !== 'BAD_PAYLOAD') return [];
      throw err;
    }
  }

  async phonesOf(portal: Portal, entity: EntityRef): Promise<string[]> {
    if (entity.type === 'phone') {
      const p = toE164(entity.id);
      return p ? [p] : [];
    }
    if (!isKind(entity.type) || !/^\d+$/.test(entity.id)) return [];
    const kind = entity.type;
    // Issued together: the queue sends them as one batch.
    const [item, contactIds] = await Promise.all([this.getItem(portal.id, kind, entity.id), kind === 'contact' ? Promise.resolve([]) : this.contactIdsOf(portal.id, kind, entity.id)]);
    if (!item) return [];
    const more = new Set(contactIds);
    if (kind === 'lead' && item.CONTACT_ID) more.add(item.CONTACT_ID);
    const related = await Promise.all([
      ...[...more].map((c) => this.getItem(portal.id, 'contact', c)),
      ...(kind !== 'company' && kind !== 'contact' && item.COMPANY_ID ? [this.getItem(portal.id, 'company', item.COMPANY_ID)] : []),
    ]);
    const all = [item, ...related.filter((x): x is NonNullable<typeof x> => x !== null)];
    return [...new Set(all.flatMap(phonesIn))];
  }

  // ---------------------------------------------------------------- unknown numbers

  private async findContact(portalId: number, phone: string): Promise<string | null> {
    const r = parse(duplicates, await this.d.api.call(portalId, 'crm.duplicate.findbycomm', { type: 'PHONE', values: [phone], entity_type: 'CONTACT' }), 'duplicates');
    const ids = Array.isArray(r) ? [] : (r.CONTACT ?? []);
    return ids.sort((a, b) => Number(a) - Number(b))[0] ?? null;
  }

  /** The contact's open deal (or lead in lead mode), newest first; cached a minute. */
  private async openEntityOf(portal: Portal, contactId: string, fresh = false): Promise<Ref | null> {
    const kind: 'deal' | 'lead' = portal.settings.createAs === 'lead' ? 'lead' : 'deal';
    const key = `${portal.id}:${kind}:${contactId}`;
    const hit = fresh ? undefined : this.openEntity.get(key);
    if (hit !== undefined) return hit;
    const filter = kind === 'deal' ? { CONTACT_ID: contactId, CLOSED: 'N' } : { CONTACT_ID: contactId, STATUS_SEMANTIC_ID: 'P' };
    const list = parse(idList, await this.d.api.call(portal.id, `crm.${kind}.list`, { filter, order: { ID: 'DESC' }, select: ['ID'] }), `${kind} list`);
    const ref = list[0] ? { type: kind, id: list[0].ID } : null;
    this.openEntity.set(key, ref);
    if (ref) this.stillOpenCache.set(`${portal.id}:${ref.type}:${ref.id}`, true); // the list just said so
    return ref;
  }

  /** Whether a deal (lead) is still open; a deleted one counts as closed. Cached a minute. */
  private async stillOpen(portalId: number, ref: Ref): Promise<boolean> {
    const key = `${portalId}:${ref.type}:${ref.id}`;
    const hit = this.stillOpenCache.get(key);
    if (hit !== undefined) return hit;
    let open: boolean;
    try {
      const item = parse(stageOf, await this.d.api.call(portalId, `crm.${ref.type}.get`, { id: ref.id }), ref.type);
      // A lead without STATUS_SEMANTIC_ID (old portals) is taken as open: better a comment too many than none.
      open = ref.type === 'deal' ? item.CLOSED !== 'Y' : (item.STATUS_SEMANTIC_ID ?? 'P') === 'P';
    } catch (err) {
      if (!(err instanceof Bitrix24Rejected) || err.code === 'BAD_PAYLOAD') throw err;
      open = false; // "Not found": deleted
    }
    this.stillOpenCache.set(key, open);
    return open;
  }

  /**
   * The deal (lead) a contact's messages go to now: the one we created for the phone while it is
   * open, else the contact's newest open one (a manager may have closed ours and opened another),
   * else none: the contact's timeline alone.
   */
  private async currentEntity(portal: Portal, contactId: string, link: B24PhoneLink | null): Promise<Ref | null> {
    const ours = link?.entityId && link.entityType ? { type: link.entityType, id: link.entityId } : null;
    if (ours && (await this.stillOpen(portal.id, ours))) return ours;
    const listed = await this.openEntityOf(portal, contactId);
    // The list is cached too: ask again if what it remembers has closed since.
    if (listed && !(await this.stillOpen(portal.id, listed))) return this.openEntityOf(portal, contactId, true);
    return listed;
  }

  async findOrCreateByPhone(portal: Portal, phone: string, name: string | null): Promise<EntityRef | null> {
    return this.phoneLock.run(`${portal.id}:${phone}`, async () => {
      const known = await this.d.store.phoneLink(portal.id, phone);
      if (known?.contactId) {
        if (known.createdByUs && !known.entityId) await this.createEntity(portal, phone, known.contactId, name);
        return { type: 'contact', id: known.contactId };
      }
      // The row (portal, phone) is unique: only the process holding it looks up and creates.
      const claim = await this.d.store.claimPhone(portal.id, phone, this.d.worker, this.now(), CLAIM_STALE_MS);
      if (claim.link.contactId) return { type: 'contact', id: claim.link.contactId };
      if (!claim.mine) throw new Bitrix24Unavailable('another server process is creating the CRM records of this phone', null);
      const found = await this.findContact(portal.id, phone);
      if (found) {
        // Ours if an earlier attempt of ours sent the create and did not learn the outcome.
        await this.d.store.saveContact(portal.id, phone, found, claim.link.createdByUs);
        if (claim.link.createdByUs) await this.createEntity(portal, phone, found, name);
        return { type: 'contact', id: found };
      }
      if (portal.settings.unknownNumber === 'ignore') {
        await this.d.store.releasePhone(portal.id, phone, this.d.worker);
        return null;
      }
      await this.d.store.markAttempt(portal.id, phone);
      const contactId = await this.createContact(portal, phone, name);
      await this.d.store.saveContact(portal.id, phone, contactId, true);
      await this.createEntity(portal, phone, contactId, name);
      return { type: 'contact', id: contactId };
    });
  }

  private responsible(portal: Portal): Record<string, string> {
    const r = portal.settings.responsibleUserId;
    return r && /^\d+$/.test(r) ? { ASSIGNED_BY_ID: r } : {};
  }

  private async createContact(portal: Portal, phone: string, name: string | null): Promise<string> {
    const fields = {
      NAME: name ?? phone,
      OPENED: 'Y',
      SOURCE_ID: 'OTHER',
      SOURCE_DESCRIPTION: 'WhatsApp (InCRM)',
      PHONE: [{ VALUE: phone, VALUE_TYPE: 'MOBILE' }],
      ...this.responsible(portal),
    };
    const made = parse(newId, await this.d.api.call(portal.id, 'crm.contact.add', { fields }, { write: true }), 'contact creation');
    this.d.log.info({ portalId: portal.id, contactId: made }, 'Bitrix24 contact created for a new WhatsApp phone');
    return made;
  }

  /**
   * The deal (or lead) for a contact we created. An earlier attempt may have created it without
   * learning so: an open one of this contact is adopted instead of making a second.
   */
  private async createEntity(portal: Portal, phone: string, contactId: string, name: string | null): Promise<void> {
    const existing = await this.openEntityOf(portal, contactId, true);
    if (existing) {
      await this.d.store.saveEntity(portal.id, phone, existing.type, existing.id);
      return;
    }
    const s = portal.settings;
    const title = `WhatsApp: ${name ?? phone}`;
    let made: string;
    if (s.createAs === 'lead') {
      const fields = { TITLE: title, NAME: name ?? phone, CONTACT_ID: contactId, OPENED: 'Y', SOURCE_ID: 'OTHER', PHONE: [{ VALUE: phone, VALUE_TYPE: 'MOBILE' }], ...(s.stageId ? { STATUS_ID: s.stageId } : {}), ...this.responsible(portal) };
      made = parse(newId, await this.d.api.call(portal.id, 'crm.lead.add', { fields }, { write: true }), 'lead creation');
    } else {
      const fields = {
        TITLE: title,
        CONTACT_ID: contactId,
        OPENED: 'Y',
        SOURCE_ID: 'OTHER',
        ...(s.pipelineId && /^\d+$/.test(s.pipelineId) ? { CATEGORY_ID: s.pipelineId } : {}),
        ...(s.stageId ? { STAGE_ID: s.stageId } : {}),
        ...this.responsible(portal),
      };
      made = parse(newId, await this.d.api.call(portal.id, 'crm.deal.add', { fields }, { write: true }), 'deal creation');
    }
    const type = s.createAs === 'lead' ? 'lead' : 'deal';
    await this.d.store.saveEntity(portal.id, phone, type, made);
    this.openEntity.set(`${portal.id}:${type}:${contactId}`, { type, id: made });
    this.stillOpenCache.set(`${portal.id}:${type}:${made}`, true);
    this.d.log.info({ portalId: portal.id, contactId, [`${type}Id`]: made }, `Bitrix24 ${type} created for a new WhatsApp phone`);
  }

  // ---------------------------------------------------------------- timeline

  /** Where a message's comments go: the contact and its current open deal (or the record a manager linked). */
  private async targets(portal: Portal, entity: EntityRef | null, phone: string | null): Promise<Array<{ type: Kind; id: string }>> {
    if (entity && isKind(entity.type) && entity.type !== 'contact') return [{ type: entity.type, id: entity.id }];
    let link: B24PhoneLink | null = null;
    let contactId = entity?.type === 'contact' ? entity.id : null;
    if (contactId) link = await this.d.store.linkOfContact(portal.id, contactId);
    else if (phone) {
      link = await this.d.store.phoneLink(portal.id, phone);
      contactId = link?.contactId ?? null;
    }
    if (!contactId) return [];
    const open = await this.currentEntity(portal, contactId, link);
    return [{ type: 'contact', id: contactId }, ...(open ? [open] : [])];
  }

  /** Whether a comment with this marker is already in the item's timeline (after an uncertain write). */
  private async inTimeline(portalId: number, t: { type: Kind; id: string }, key: string): Promise<string | null> {
    const list = parse(
      comments,
      await this.d.api.call(portalId, 'crm.timeline.comment.list', { filter: { ENTITY_ID: t.id, ENTITY_TYPE: t.type }, select: ['ID', 'COMMENT'], order: { ID: 'DESC' } }),
      'timeline comments',
    );
    return list.find((c) => (c.COMMENT ?? '').endsWith(marker(key)))?.ID ?? null;
  }

  async record(portal: Portal, entity: EntityRef | null, message: CrmMessageRecord): Promise<void> {
    const targets = await this.targets(portal, entity, message.phone);
    if (targets.length === 0) return; // nothing in Bitrix24 to attach it to (hidden id, or "ignore unknown numbers")
    const key =
      message.messageId !== undefined
        ? `m${message.messageId}`
        : 'h' + crypto.createHash('sha256').update(JSON.stringify([message.direction, message.phone, message.at, message.type, message.text])).digest('hex').slice(0, 32);
    const state = await this.d.store.comments(portal.id, key);
    const text = commentText(message, key);
    // All targets at once (one batch); each is remembered as soon as Bitrix24 confirms it.
    await Promise.all(
      targets.map(async (t) => {
        const s = state.get(`${t.type}:${t.id}`);
        if (s === 'done') return;
        if (s === 'pending') {
          const found = await this.inTimeline(portal.id, t, key);
          if (found) return this.d.store.markComment(portal.id, key, t.type, t.id, 'done', found, this.now());
        } else {
          await this.d.store.markComment(portal.id, key, t.type, t.id, 'pending', null, this.now());
        }
        const made = parse(newId, await this.d.api.call(portal.id, 'crm.timeline.comment.add', { fields: { ENTITY_ID: t.id, ENTITY_TYPE: t.type, COMMENT: text } }, { write: true }), 'comment');
        await this.d.store.markComment(portal.id, key, t.type, t.id, 'done', made, this.now());
      }),
    );
  }

  // ---------------------------------------------------------------- alerts

  private async responsibleOf(portalId: number, entity: EntityRef): Promise<string | null> {
    if (!isKind(entity.type) || !/^\d+$/.test(entity.id)) return null;
    return (await this.getItem(portalId, entity.type, entity.id))?.ASSIGNED_BY_ID ?? null;
  }

  /** The card an alert opens: the contact's current open deal when there is one, else the item itself. */
  private async cardLink(portal: Portal, entity: EntityRef): Promise<string | null> {
    const p = await this.d.store.byPortal(portal.id);
    if (!p || !isKind(entity.type)) return null;
    let target: { type: string; id: string } = entity;
    if (entity.type === 'contact') {
      const open = await this.currentEntity(portal, entity.id, await this.d.store.linkOfContact(portal.id, entity.id));
      if (open) target = open;
    }
    return `https://${p.domain}/crm/${target.type}/details/${target.id}/`;
  }

  /**
   * A Bitrix24 notification (`im.notify.system.add`) per user, to whom the contract in
   * server/domain/crmJobs.ts says: the users given; else the record's responsible user, then the
   * settings' responsible user; else (a number dropped, nobody responsible) the portal's admins.
   * The TAG makes a retried or repeated alert replace its earlier copy instead of adding a second.
   */
  async alert(portal: Portal, userIds: string[], text: string, link: string | null, entity?: EntityRef | null): Promise<void> {
    const isUser = (u: string | null | undefined): u is string => Boolean(u && /^\d+$/.test(u));
    let to = userIds.filter(isUser);
    if (to.length === 0 && entity) {
      const r = await this.responsibleOf(portal.id, entity);
      const fallback = portal.settings.responsibleUserId;
      if (isUser(r)) to = [r];
      else if (isUser(fallback)) to = [fallback];
    }
    if (to.length === 0) {
      const p = await this.d.store.byPortal(portal.id);
      to = [...new Set([...(await this.d.store.adminIds(portal.id)), ...(p?.installerUserId ? [p.installerUserId] : [])])];
    }
    if (to.length === 0) return;
    const href = link ?? (entity ? await this.cardLink(portal, entity) : null);
    const tag = 'incrm-' + crypto.createHash('sha256').update(JSON.stringify([text, href, entity ?? null])).digest('hex').slice(0, 24);
    const message = href ? `${text}\n[URL=${href}]Open in CRM[/URL]` : text;
    await Promise.all(
      [...new Set(to)].map((u) => this.d.api.call(portal.id, 'im.notify.system.add', { USER_ID: u, MESSAGE: message, MESSAGE_OUT: href ? `${text}\n${href}` : text, TAG: tag })),
    );
  }

  // ---------------------------------------------------------------- settings page

  /** Pipelines (deal categories) with their open stages, lead stages, and the portal's users. */
  async options(portal: Portal): Promise<{
    pipelines: Array<{ id: string; name: string; main: boolean; stages: Array<{ id: string; name: string }> }>;
    leadStages: Array<{ id: string; name: string }>;
    users: Array<{ id: string; name: string; admin: boolean }>;
  }> {
    const open = (list: z.infer<typeof statuses>) =>
      [...list].filter((s) => s.SEMANTICS !== 'S' && s.SEMANTICS !== 'F').sort((a, b) => Number(a.SORT ?? 0) - Number(b.SORT ?? 0)).map((s) => ({ id: s.STATUS_ID, name: s.NAME }));
    const [cats, leadStages, userList, admins] = await Promise.all([
      this.d.api.call(portal.id, 'crm.category.list', { entityTypeId: 2 }).then((r) => parse(categories, r, 'categories').categories),
      this.d.api.call(portal.id, 'crm.status.list', { filter: { ENTITY_ID: 'STATUS' }, order: { SORT: 'ASC' } }).then((r) => open(parse(statuses, r, 'lead stages'))),
      this.d.api.call(portal.id, 'user.get', { FILTER: { ACTIVE: true }, ADMIN_MODE: true }).then((r) => parse(users, r, 'users')),
      this.d.store.adminIds(portal.id),
    ]);
    const stageLists = await Promise.all(
      cats.map((c) =>
        this.d.api
          .call(portal.id, 'crm.status.list', { filter: { ENTITY_ID: c.id === '0' ? 'DEAL_STAGE' : `DEAL_STAGE_${c.id}` }, order: { SORT: 'ASC' } })
          .then((r) => open(parse(statuses, r, 'deal stages'))),
      ),
    );
    const p = await this.d.store.byPortal(portal.id);
    const adminSet = new Set([...admins, ...(p?.installerUserId ? [p.installerUserId] : [])]);
    return {
      pipelines: cats.map((c, i) => ({ id: c.id, name: c.name, main: c.isDefault === true || c.isDefault === 'Y' || c.id === '0', stages: stageLists[i]! })),
      leadStages,
      users: userList.map((u) => ({ id: u.ID, name: [u.NAME, u.LAST_NAME].filter(Boolean).join(' ') || u.EMAIL || `#${u.ID}`, admin: adminSet.has(u.ID) })),
    };
  }
}
