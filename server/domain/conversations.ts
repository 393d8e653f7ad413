import type { DomainContext } from './context';
import { badRequest, notFound } from './errors';
import { chatIdOf, toE164 } from './phone';
import type { ConversationView, CrmRegistry, EntityRef } from './ports';
import type { HistoryMessage, Principal } from './types';

/** Reading and starting conversations, scoped to the caller's portal. */
export class ConversationService {
  constructor(
    private readonly ctx: DomainContext,
    private readonly crm: CrmRegistry,
  ) {}

  /** The phones of a CRM card (its contacts' phones), normalised; for the chat panel. */
  async phonesOf(p: Principal, entity: EntityRef): Promise<string[]> {
    const portal = await this.ctx.db.repos.portals.get(p.portalId);
    if (!portal) throw notFound('portal');
    const raw = await this.crm(portal.crm).phonesOf(portal, entity);
    return [...new Set(raw.map((r) => toE164(r)).filter((x): x is string => x !== null))];
  }

  async list(p: Principal, phones: string[]): Promise<ConversationView[]> {
    const normalised = phones.map((raw) => {
      const e164 = toE164(raw);
      if (!e164) throw badRequest(`phone: "${raw}" is not a phone number`, { field: 'phone' });
      return e164;
    });
    if (normalised.length === 0) return [];
    return this.ctx.db.repos.conversations.listByPhones(p.portalId, [...new Set(normalised)]);
  }

  /** Opens (or finds) the conversation with a phone, even one that never wrote. */
  async start(p: Principal, rawPhone: string, numberId?: number | null): Promise<ConversationView> {
    const phone = toE164(rawPhone);
    if (!phone) throw badRequest(`phone: "${rawPhone}" is not a phone number`, { field: 'phone' });
    const { repos } = this.ctx.db;
    const numbers = await repos.numbers.list(p.portalId);
    let number = numberId != null ? numbers.find((n) => n.id === numberId) : numbers.find((n) => n.state === 'ready') ?? numbers[0];
    if (numberId != null && !number) throw badRequest('numberId: no such WhatsApp number in this portal', { field: 'numberId' });
    if (!number) throw badRequest('numberId: connect a WhatsApp number first', { field: 'numberId' });
    const existing = await repos.contacts.findByPhone(p.portalId, phone);
    const contact = existing ?? (await repos.contacts.upsert(p.portalId, { waId: chatIdOf(phone), phone, name: null }));
    const conv = await repos.conversations.upsert(p.portalId, number.id, contact.id);
    return (await repos.conversations.view(p.portalId, conv.id))!;
  }

  async get(p: Principal, id: number): Promise<ConversationView> {
    const v = await this.ctx.db.repos.conversations.view(p.portalId, id);
    if (!v) throw notFound('conversation');
    return v;
  }

  /** One page of history, newest first across pages, oldest first within the page. */
  async messages(p: Principal, id: number, before: number | null, limit: number): Promise<{ items: HistoryMessage[]; nextCursor: number | null }> {
    // The page query is scoped to the portal itself; only an empty page needs to ask whether the
    // conversation exists at all (404) or simply has no older messages.
    const rows = await this.ctx.db.repos.messages.page(p.portalId, id, before, limit + 1);
    if (rows.length === 0 && !(await this.ctx.db.repos.conversations.get(p.portalId, id))) throw notFound('conversation');
    const more = rows.length > limit;
    const items = rows.slice(0, limit).reverse();
    // The cursor is the oldest id shown: the next page holds what came before it.
    return { items, nextCursor: more ? items[0]!.id : null };
  }

  async markRead(p: Principal, id: number, seen?: (numberId: number, chatId: string) => Promise<void>): Promise<void> {
    const conv = await this.ctx.db.repos.conversations.markRead(p.portalId, id);
    if (!conv) throw notFound('conversation');
    this.ctx.live.publish(p.portalId, { type: 'conversation', conversationId: id, unreadCount: 0, lastMessageAt: conv.lastMessageAt });
    const contact = await this.ctx.db.repos.contacts.get(p.portalId, conv.contactId);
    if (seen && contact) await seen(conv.numberId, contact.waId).catch(() => {});
  }
}
