import type { Knex } from 'knex';
import type { SecretBox } from '../../../security/secretBox';
import { JOB_KOMMO_PURGE } from './purge';

/** An OAuth pair as Kommo returns it, with the absolute expiry we compute on receipt. */
export interface KommoTokens {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  /** Milliseconds since the epoch. */
  expires_at: number;
}

export interface KommoAccount {
  portalId: number;
  accountId: string;
  domain: string;
  tokens: KommoTokens | null;
  tokenVersion: number;
  disabledAt: number | null;
  deleteAfter: number | null;
}

export interface PhoneLink {
  contactId: string;
  leadId: string | null;
}

/** What we know of one message's note on one record. */
export interface NoteMark {
  /** null: sent, outcome unknown. */
  noteId: string | null;
  /** When it was first marked (ms): Kommo's copy, if any, was stored after this. */
  since: number;
}

export interface KommoAlert {
  id: number;
  userId: string;
  text: string;
  link: string | null;
  createdAt: number;
}

type Row = Record<string, unknown>;

/** The Kommo adapter's own tables (migration 003_kommo). Tokens never touch the disk unsealed. */
export class KommoStore {
  constructor(
    private readonly knex: Knex,
    private readonly box: SecretBox,
  ) {}

  private toAccount(r: Row): KommoAccount {
    return {
      portalId: Number(r.portal_id),
      accountId: String(r.account_id),
      domain: String(r.domain),
      tokens: r.tokens ? this.box.openJson<KommoTokens>(String(r.tokens)) : null,
      tokenVersion: Number(r.token_version),
      disabledAt: r.disabled_at === null || r.disabled_at === undefined ? null : Number(r.disabled_at),
      deleteAfter: r.delete_after === null || r.delete_after === undefined ? null : Number(r.delete_after),
    };
  }

  async byPortal(portalId: number): Promise<KommoAccount | null> {
    const r = await this.knex('kommo_accounts').where({ portal_id: portalId }).first();
    return r ? this.toAccount(r) : null;
  }

  async byAccountId(accountId: string): Promise<KommoAccount | null> {
    const r = await this.knex('kommo_accounts').where({ account_id: accountId }).first();
    return r ? this.toAccount(r) : null;
  }

  async activeAccounts(): Promise<KommoAccount[]> {
    const rows = await this.knex('kommo_accounts').whereNull('disabled_at').whereNotNull('tokens');
    return rows.map((r: Row) => this.toAccount(r));
  }

  async isKnownDomain(domain: string): Promise<boolean> {
    const r = await this.knex('kommo_accounts').where({ domain }).whereNull('disabled_at').first('portal_id');
    return Boolean(r);
  }

  /**
   * Install or reinstall: finds or creates the portal of this account and stores its tokens, in
   * one transaction. A reinstall within the 30-day grace period keeps all the portal's data.
   */
  async install(a: { accountId: string; domain: string; name: string; tokens: KommoTokens; now: number }): Promise<{ portalId: number; created: boolean }> {
    return this.knex.transaction(async (trx) => {
      let portal = await trx('portals').where({ crm: 'kommo', external_id: a.accountId }).first('id');
      let created = false;
      if (!portal) {
        [portal] = await trx('portals')
          .insert({ crm: 'kommo', name: a.name, external_id: a.accountId, settings: JSON.stringify({ unknownNumber: 'create' }), created_at: a.now })
          .returning('id');
        created = true;
      }
      const portalId = Number((portal as Row).id);
      const sealed = this.box.sealJson(a.tokens);
      const existing = await trx('kommo_accounts').where({ account_id: a.accountId }).first('id');
      if (existing) {
        await trx('kommo_accounts')
          .where({ account_id: a.accountId })
          .update({ domain: a.domain, tokens: sealed, token_version: trx.raw('token_version + 1'), disabled_at: null, delete_after: null });
        // Reinstalled within the grace period: the deletion scheduled at uninstall is off.
        await trx('jobs').where({ kind: JOB_KOMMO_PURGE, portal_id: portalId, state: 'pending' }).delete();
      } else {
        await trx('kommo_accounts').insert({ portal_id: portalId, account_id: a.accountId, domain: a.domain, tokens: sealed, token_version: 1, installed_at: a.now });
      }
      return { portalId, created };
    });
  }

  /**
   * Saves a refreshed pair only if nobody replaced the tokens since `expectVersion` was read:
   * the compare-and-swap that keeps two writers from overwriting a newer pair with an older one.
   */
  async saveRefreshed(portalId: number, expectVersion: number, tokens: KommoTokens): Promise<boolean> {
    const n = await this.knex('kommo_accounts')
      .where({ portal_id: portalId, token_version: expectVersion })
      .update({ tokens: this.box.sealJson(tokens), token_version: expectVersion + 1 });
    return Number(n) === 1;
  }

  /** The refresh token was refused (revoked, expired): only a reinstall can bring access back. */
  async dropTokens(portalId: number, expectVersion: number): Promise<void> {
    await this.knex('kommo_accounts').where({ portal_id: portalId, token_version: expectVersion }).update({ tokens: null, token_version: expectVersion + 1 });
  }

  /** Marks the account uninstalled; one already uninstalled keeps its first date and deadline (`changed` false). */
  async disable(accountId: string, now: number, deleteAfter: number): Promise<{ account: KommoAccount; changed: boolean } | null> {
    const n = await this.knex('kommo_accounts')
      .where({ account_id: accountId })
      .whereNull('disabled_at')
      .update({ tokens: null, disabled_at: now, delete_after: deleteAfter, token_version: this.knex.raw('token_version + 1') });
    const account = await this.byAccountId(accountId);
    return account ? { account, changed: Number(n) === 1 } : null;
  }

  // ------------------------------------------------------------------ phone → CRM records

  async phoneLink(portalId: number, phone: string): Promise<PhoneLink | null> {
    const r = await this.knex('kommo_phone_links').where({ portal_id: portalId, phone }).first();
    return r ? { contactId: String(r.contact_id), leadId: r.lead_id === null ? null : String(r.lead_id) } : null;
  }

  async leadOfContact(portalId: number, contactId: string): Promise<string | null> {
    const r = await this.knex('kommo_phone_links').where({ portal_id: portalId, contact_id: contactId }).whereNotNull('lead_id').first('lead_id');
    return r ? String(r.lead_id) : null;
  }

  /** The contact's lead changed (the old one was closed, or a new one was made): every phone of it follows. */
  async setLeadOfContact(portalId: number, contactId: string, leadId: string | null): Promise<void> {
    await this.knex('kommo_phone_links').where({ portal_id: portalId, contact_id: contactId }).update({ lead_id: leadId });
  }

  async savePhoneLink(portalId: number, phone: string, link: PhoneLink, now: number): Promise<void> {
    await this.knex('kommo_phone_links')
      .insert({ portal_id: portalId, phone, contact_id: link.contactId, lead_id: link.leadId, created_at: now })
      .onConflict(['portal_id', 'phone'])
      .merge(['contact_id', 'lead_id']);
  }

  // ------------------------------------------------------------------ notes written
  // A row with a note id: Kommo confirmed the note. A row without one: the note was sent (or was
  // about to be) and we do not know whether Kommo stored it; the next try looks before it writes.

  async notes(portalId: number, messageKey: string): Promise<Map<string, NoteMark>> {
    const rows = await this.knex('kommo_notes').where({ portal_id: portalId, message_key: messageKey }).select('entity_type', 'entity_id', 'note_id', 'created_at');
    return new Map(
      rows.map((r: Row) => [`${String(r.entity_type)}:${String(r.entity_id)}`, { noteId: r.note_id === null || r.note_id === undefined ? null : String(r.note_id), since: Number(r.created_at) }]),
    );
  }

  async markNotePending(portalId: number, messageKey: string, entityType: string, entityId: string, now: number): Promise<void> {
    await this.knex('kommo_notes')
      .insert({ portal_id: portalId, message_key: messageKey, entity_type: entityType, entity_id: entityId, note_id: null, created_at: now })
      .onConflict(['portal_id', 'message_key', 'entity_type', 'entity_id'])
      .ignore();
  }

  /** Kommo refused the note outright (429, 4xx, no access): it was not stored, the next try writes it without looking. */
  async clearPendingNote(portalId: number, messageKey: string, entityType: string, entityId: string): Promise<void> {
    await this.knex('kommo_notes').where({ portal_id: portalId, message_key: messageKey, entity_type: entityType, entity_id: entityId }).whereNull('note_id').delete();
  }

  async markNote(portalId: number, messageKey: string, entityType: string, entityId: string, noteId: string, now: number): Promise<void> {
    await this.knex('kommo_notes')
      .insert({ portal_id: portalId, message_key: messageKey, entity_type: entityType, entity_id: entityId, note_id: noteId, created_at: now })
      .onConflict(['portal_id', 'message_key', 'entity_type', 'entity_id'])
      .merge(['note_id']);
  }

  // ------------------------------------------------------------------ alert queue

  async pushAlerts(portalId: number, userIds: string[], text: string, link: string | null, now: number): Promise<KommoAlert[]> {
    if (userIds.length === 0) return [];
    const rows = await this.knex('kommo_alerts')
      .insert(userIds.map((u) => ({ portal_id: portalId, user_id: u, text, link, created_at: now })))
      .returning(['id', 'user_id']);
    return rows.map((r: Row) => ({ id: Number(r.id), userId: String(r.user_id), text, link, createdAt: now }));
  }

  async alertsFor(portalId: number, userId: string, afterId: number, limit: number): Promise<KommoAlert[]> {
    const rows = await this.knex('kommo_alerts')
      .where({ portal_id: portalId, user_id: userId })
      .andWhere('id', '>', afterId)
      .orderBy('id')
      .limit(limit);
    return rows.map((r: Row) => ({ id: Number(r.id), userId: String(r.user_id), text: String(r.text), link: r.link === null ? null : String(r.link), createdAt: Number(r.created_at) }));
  }

  async purgePortal(portalId: number): Promise<void> {
    await this.knex('portals').where({ id: portalId }).delete();
  }
}
