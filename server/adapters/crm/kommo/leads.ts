import { z } from 'zod';
import { KeyedMutex } from '../../../domain/mutex';
import type { Clock } from '../../../domain/ports';
import type { Portal } from '../../../domain/types';
import type { Logger } from '../../../logger';
import type { KommoApi } from './client';
import { id, parse } from './payload';
import type { KommoStore } from './store';

/** Kommo's two closing stages, the same ids in every pipeline: 142 won, 143 lost. */
const CLOSED = new Set(['142', '143']);
/**
 * How long we trust that a contact's lead is (still) its open one. Short: a manager may close
 * it at any moment, and then messages must stop landing there.
 */
export const OPEN_LEAD_TTL_MS = 60_000;

const leadStatus = z.object({ id, status_id: id, responsible_user_id: z.number().nullable().optional() }).loose();
const leadList = z.object({ _embedded: z.object({ leads: z.array(leadStatus) }).loose() }).loose();
const contactLeads = z.object({ id, _embedded: z.object({ leads: z.array(z.object({ id }).loose()).optional() }).loose().optional() }).loose();
const leadsCreated = z.object({ _embedded: z.object({ leads: z.array(z.object({ id }).loose()).min(1) }).loose() }).loose();

const num = (v: string | undefined) => (v && /^\d+$/.test(v) ? Number(v) : undefined);

/** The lead a new WhatsApp contact or a returning client gets, per the portal's settings. */
export function newLeadFields(portal: Portal, name: string): Record<string, unknown> {
  const s = portal.settings;
  return {
    name: `WhatsApp: ${name}`,
    ...(num(s.pipelineId) ? { pipeline_id: num(s.pipelineId) } : {}),
    ...(num(s.stageId) ? { status_id: num(s.stageId) } : {}),
    ...(num(s.responsibleUserId) ? { responsible_user_id: num(s.responsibleUserId) } : {}),
  };
}

/**
 * Which lead of a contact a message belongs to: its open one (not won, not lost), newest first.
 * The answer is kept for OPEN_LEAD_TTL_MS; after that the lead's status is asked again. When the
 * contact has no open lead, a new one is made only where the caller says the settings want it.
 */
export class KommoLeads {
  private readonly known = new Map<string, { leadId: string | null; at: number }>();
  private readonly lock = new KeyedMutex();

  constructor(private readonly d: { api: KommoApi; store: KommoStore; clock: Clock; log: Logger }) {}

  /** Notes what we just learnt (a lead found or made with its contact). */
  remember(portalId: number, contactId: string, leadId: string | null): void {
    this.known.set(`${portalId}:${contactId}`, { leadId, at: this.d.clock.now() });
  }

  /** The newest open lead among these ids, or null. */
  async newestOpen(portalId: number, leadIds: string[]): Promise<{ id: string; responsible: string | null } | null> {
    if (leadIds.length === 0) return null;
    const res = await this.d.api.call(portalId, 'GET', '/api/v4/leads', { filter: { id: leadIds.map(Number) }, limit: 250 });
    if (res.status === 204) return null;
    const open = parse(leadList, res.data, 'leads')
      ._embedded.leads.filter((l) => !CLOSED.has(l.status_id))
      .sort((a, b) => Number(b.id) - Number(a.id))[0];
    return open ? { id: open.id, responsible: open.responsible_user_id ? String(open.responsible_user_id) : null } : null;
  }

  /**
   * The contact's open lead. `create` (a message from the client, settings that create leads):
   * when it has none, make one in the settings' pipeline and stage, once however many messages
   * ask at the same time.
   */
  async openLeadOf(portal: Portal, contactId: string, create: { name: string } | null): Promise<string | null> {
    const key = `${portal.id}:${contactId}`;
    const fresh = () => {
      const hit = this.known.get(key);
      return hit && this.d.clock.now() - hit.at < OPEN_LEAD_TTL_MS && (hit.leadId !== null || !create) ? hit : null;
    };
    const hit = fresh();
    if (hit) return hit.leadId;
    return this.lock.run(key, async () => {
      const again = fresh();
      if (again) return again.leadId;
      const stored = await this.d.store.leadOfContact(portal.id, contactId);
      let leadId = stored && (await this.newestOpen(portal.id, [stored])) ? stored : null;
      if (!leadId) {
        // A lead creation of ours that timed out may still land: let it, then look.
        await this.d.api.settled(portal.id);
        leadId = (await this.newestOpen(portal.id, await this.leadsOfContact(portal.id, contactId)))?.id ?? null;
      }
      if (!leadId && create) leadId = await this.createFor(portal, contactId, create.name);
      if (leadId !== stored) await this.d.store.setLeadOfContact(portal.id, contactId, leadId);
      this.remember(portal.id, contactId, leadId);
      return leadId;
    });
  }

  private async leadsOfContact(portalId: number, contactId: string): Promise<string[]> {
    const res = await this.d.api.call(portalId, 'GET', `/api/v4/contacts/${contactId}`, { with: 'leads' });
    if (res.status === 204) return []; // the contact was deleted
    return (parse(contactLeads, res.data, 'contact')._embedded?.leads ?? []).map((l) => l.id);
  }

  private async createFor(portal: Portal, contactId: string, name: string): Promise<string> {
    const lead = { ...newLeadFields(portal, name), _embedded: { tags: [{ name: 'WhatsApp' }], contacts: [{ id: Number(contactId) }] } };
    const res = await this.d.api.call(portal.id, 'POST', '/api/v4/leads', [lead]);
    const made = parse(leadsCreated, res.data, 'lead creation')._embedded.leads[0]!.id;
    this.d.log.info({ portalId: portal.id, leadId: made, contactId }, 'Kommo lead created: the contact had no open lead');
    return made;
  }
}
