import type { Knex } from 'knex';
import type { SecretBox } from '../../../security/secretBox';

/** The app's OAuth pair for a portal (the installing admin's rights), with its absolute expiry. */
export interface B24Tokens {
  access_token: string;
  refresh_token: string;
  /** Milliseconds since the epoch. */
  expires_at: number;
  scope: string;
}

export type B24State = 'active' | 'revoked' | 'uninstalled';

export interface B24Portal {
  portalId: number;
  memberId: string;
  domain: string;
  /** `https://<portal>/rest/` as the OAuth server reported it. */
  clientEndpoint: string;
  /** `https://oauth.bitrix.info/rest/` (or whichever OAuth server Bitrix24 named). */
  serverEndpoint: string;
  tokens: B24Tokens | null;
  tokenVersion: number;
  applicationToken: string | null;
  state: B24State;
  stateReason: string | null;
  installerUserId: string | null;
  installedAt: number;
  disabledAt: number | null;
  deleteAfter: number | null;
}

export interface B24PhoneLink {
  contactId: string | null;
  entityType: 'deal' | 'lead' | null;
  entityId: string | null;
  createdByUs: boolean;
  claimedBy: string | null;
  claimedAt: number | null;
}

type Row = Record<string, unknown>;
const numOrNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** The Bitrix24 adapter's tables (migration 004_bitrix24). Secrets never touch the disk unsealed. */
export class Bitrix24Store {
  constructor(
    private readonly knex: Knex,
    private readonly box: SecretBox,
  ) {}

  private toPortal(r: Row): B24Portal {
    return {
      portalId: Number(r.portal_id),
      memberId: String(r.member_id),
      domain: String(r.domain),
      clientEndpoint: String(r.client_endpoint),
      serverEndpoint: String(r.server_endpoint),
      tokens: r.tokens ? this.box.openJson<B24Tokens>(String(r.tokens)) : null,
      tokenVersion: Number(r.token_version),
      applicationToken: r.application_token ? this.box.open(String(r.application_token)) : null,
      state: String(r.state) as B24State,
      stateReason: r.state_reason === null || r.state_reason === undefined ? null : String(r.state_reason),
      installerUserId: r.installer_user_id === null || r.installer_user_id === undefined ? null : String(r.installer_user_id),
      installedAt: Number(r.installed_at),
      disabledAt: numOrNull(r.disabled_at),
      deleteAfter: numOrNull(r.delete_after),
    };
  }

  async byPortal(portalId: number): Promise<B24Portal | null> {
    const r = await this.knex('bitrix24_portals').where({ portal_id: portalId }).first();
    return r ? this.toPortal(r) : null;
  }

  async byMember(memberId: string): Promise<B24Portal | null> {
    const r = await this.knex('bitrix24_portals').where({ member_id: memberId }).first();
    return r ? this.toPortal(r) : null;
  }

  /**
   * Install or reinstall, in one transaction: finds or creates the portal of this member_id (a
   * reinstall keeps all its history) and stores what was proven. `tokens` null keeps the stored
   * pair; `applicationToken` null keeps the stored one. The caller has proven that the install
   * came from a portal administrator (install.ts): nothing here checks it again.
   */
  async install(a: {
    memberId: string;
    domain: string;
    clientEndpoint: string;
    serverEndpoint: string;
    tokens: B24Tokens | null;
    applicationToken: string | null;
    installerUserId: string | null;
    now: number;
  }): Promise<{ portalId: number; created: boolean; reinstalled: boolean }> {
    return this.knex.transaction(async (trx) => {
      let portal = await trx('portals').where({ crm: 'bitrix24', external_id: a.memberId }).first('id');
      let created = false;
      if (!portal) {
        [portal] = await trx('portals')
          .insert({ crm: 'bitrix24', name: a.domain, external_id: a.memberId, settings: JSON.stringify({ unknownNumber: 'create' }), created_at: a.now })
          .returning('id');
        created = true;
      }
      const portalId = Number((portal as Row).id);
      const existing = await trx('bitrix24_portals').where({ member_id: a.memberId }).first();
      const patch: Row = { domain: a.domain, client_endpoint: a.clientEndpoint, server_endpoint: a.serverEndpoint };
      if (a.tokens) patch.tokens = this.box.sealJson(a.tokens);
      if (a.applicationToken) patch.application_token = this.box.seal(a.applicationToken);
      if (a.installerUserId) patch.installer_user_id = a.installerUserId;
      let reinstalled = false;
      if (existing) {
        reinstalled = String(existing.state) === 'uninstalled';
        await trx('bitrix24_portals')
          .where({ member_id: a.memberId })
          .update({
            ...patch,
            ...(a.tokens ? { token_version: trx.raw('token_version + 1') } : {}),
            state: existing.tokens || a.tokens ? 'active' : String(existing.state),
            state_reason: null,
            disabled_at: null,
            delete_after: null,
            ...(reinstalled ? { installed_at: a.now } : {}),
          });
      } else {
        await trx('bitrix24_portals').insert({
          ...patch,
          portal_id: portalId,
          member_id: a.memberId,
          token_version: 1,
          state: a.tokens ? 'active' : 'revoked',
          state_reason: a.tokens ? null : 'no OAuth tokens yet',
          installed_at: a.now,
        });
      }
      await trx('portals').where({ id: portalId }).update({ name: a.domain });
      return { portalId, created, reinstalled };
    });
  }

  /**
   * Compare-and-swap on the token version: an older pair never overwrites a newer one. One
   * revocation gives way: another server process read the same pair, tried its refresh token
   * after we had spent it, was refused and marked the portal revoked (markRevoked, one version
   * up). Our answer for that very token proves the refusal meant "already used", not "access
   * withdrawn" (a withdrawn access refuses every refresh), so the new pair replaces it.
   */
  async saveRefreshed(portalId: number, expectVersion: number, tokens: B24Tokens): Promise<boolean> {
    const n = await this.knex('bitrix24_portals')
      .where({ portal_id: portalId })
      .andWhere((q) => q.where({ token_version: expectVersion }).orWhere((r) => r.where({ token_version: expectVersion + 1, state: 'revoked' }).whereNull('tokens')))
      .update({ tokens: this.box.sealJson(tokens), token_version: this.knex.raw('token_version + 1'), state: 'active', state_reason: null });
    return Number(n) === 1;
  }

  /** The refresh token was refused: nothing works until an admin opens the app again (or reinstalls). */
  async markRevoked(portalId: number, expectVersion: number, reason: string): Promise<void> {
    await this.knex('bitrix24_portals')
      .where({ portal_id: portalId, token_version: expectVersion })
      .update({ tokens: null, token_version: expectVersion + 1, state: 'revoked', state_reason: reason });
  }

  async uninstall(memberId: string, now: number, deleteAfter: number): Promise<B24Portal | null> {
    await this.knex('bitrix24_portals')
      .where({ member_id: memberId })
      .update({
        tokens: null,
        token_version: this.knex.raw('token_version + 1'),
        state: 'uninstalled',
        state_reason: 'the app was uninstalled from the portal',
        disabled_at: now,
        delete_after: deleteAfter,
      });
    return this.byMember(memberId);
  }

  /**
   * Erases a portal. Deleting its `portals` row takes every table keyed to it along (ON DELETE
   * CASCADE: numbers, contacts, conversations, messages, users, licence, our Bitrix24 rows). Its
   * `jobs` only name it (no foreign key) and would outlive it (the daily Market check, pending
   * mirrors), so they go too, except the job doing the erasing (the runner removes it when it
   * completes). `audit_log` stays: it is append-only by design (migration 005 enforces it).
   */
  async purgePortal(portalId: number, runningJobId?: number): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await trx('portals').where({ id: portalId }).delete();
      await trx('jobs')
        .where({ portal_id: portalId })
        .modify((q) => {
          if (runningJobId !== undefined) q.whereNot({ id: runningJobId });
        })
        .delete();
    });
  }

  /** Users seen through a verified frame token; admins among them get "number dropped" alerts. */
  async seeUser(portalId: number, userId: string, name: string | null, admin: boolean, now: number): Promise<void> {
    await this.knex('crm_users')
      .insert({ portal_id: portalId, external_id: userId, name, is_admin: admin, seen_at: now })
      .onConflict(['portal_id', 'external_id'])
      .merge(['name', 'is_admin', 'seen_at']);
  }

  async adminIds(portalId: number): Promise<string[]> {
    const rows = await this.knex('crm_users').where({ portal_id: portalId, is_admin: true }).select('external_id');
    return rows.map((r: Row) => String(r.external_id));
  }

  // ------------------------------------------------------------------ phone → CRM records

  private toLink(r: Row): B24PhoneLink {
    return {
      contactId: r.contact_id === null || r.contact_id === undefined ? null : String(r.contact_id),
      entityType: (r.entity_type ?? null) as B24PhoneLink['entityType'],
      entityId: r.entity_id === null || r.entity_id === undefined ? null : String(r.entity_id),
      createdByUs: Boolean(r.created_by_us),
      claimedBy: r.claimed_by === null || r.claimed_by === undefined ? null : String(r.claimed_by),
      claimedAt: numOrNull(r.claimed_at),
    };
  }

  async phoneLink(portalId: number, phone: string): Promise<B24PhoneLink | null> {
    const r = await this.knex('bitrix24_phone_links').where({ portal_id: portalId, phone }).first();
    return r ? this.toLink(r) : null;
  }

  async linkOfContact(portalId: number, contactId: string): Promise<B24PhoneLink | null> {
    const r = await this.knex('bitrix24_phone_links').where({ portal_id: portalId, contact_id: contactId }).orderBy('created_at').first();
    return r ? this.toLink(r) : null;
  }

  /**
   * Takes the phone for this worker: the primary key (portal, phone) lets only one row exist, so
   * of several processes only one creates the contact. A claim older than `staleMs` (its holder
   * died) is taken over. Returns the link as it stands after the attempt.
   */
  async claimPhone(portalId: number, phone: string, worker: string, now: number, staleMs: number): Promise<{ mine: boolean; link: B24PhoneLink }> {
    await this.knex('bitrix24_phone_links')
      .insert({ portal_id: portalId, phone, claimed_by: worker, claimed_at: now, created_at: now, created_by_us: false })
      .onConflict(['portal_id', 'phone'])
      .ignore();
    await this.knex('bitrix24_phone_links')
      .where({ portal_id: portalId, phone })
      .whereNull('contact_id')
      .andWhere((q) => q.whereNull('claimed_by').orWhere('claimed_at', '<', now - staleMs))
      .update({ claimed_by: worker, claimed_at: now });
    const link = (await this.phoneLink(portalId, phone))!;
    return { mine: link.claimedBy === worker || link.contactId !== null, link };
  }

  async releasePhone(portalId: number, phone: string, worker: string): Promise<void> {
    await this.knex('bitrix24_phone_links').where({ portal_id: portalId, phone, claimed_by: worker }).whereNull('contact_id').delete();
  }

  /** A create is about to be sent: if its outcome is lost, the contact found later is still ours. */
  async markAttempt(portalId: number, phone: string): Promise<void> {
    await this.knex('bitrix24_phone_links').where({ portal_id: portalId, phone }).update({ created_by_us: true });
  }

  async saveContact(portalId: number, phone: string, contactId: string, createdByUs: boolean): Promise<void> {
    await this.knex('bitrix24_phone_links').where({ portal_id: portalId, phone }).update({ contact_id: contactId, created_by_us: createdByUs, claimed_by: null, claimed_at: null });
  }

  async saveEntity(portalId: number, phone: string, entityType: 'deal' | 'lead', entityId: string): Promise<void> {
    await this.knex('bitrix24_phone_links').where({ portal_id: portalId, phone }).update({ entity_type: entityType, entity_id: entityId });
  }

  // ------------------------------------------------------------------ timeline comments

  async comments(portalId: number, messageKey: string): Promise<Map<string, 'pending' | 'done'>> {
    const rows = await this.knex('bitrix24_comments').where({ portal_id: portalId, message_key: messageKey }).select('entity_type', 'entity_id', 'state');
    return new Map(rows.map((r: Row) => [`${String(r.entity_type)}:${String(r.entity_id)}`, String(r.state) as 'pending' | 'done']));
  }

  async markComment(portalId: number, messageKey: string, entityType: string, entityId: string, state: 'pending' | 'done', commentId: string | null, now: number): Promise<void> {
    await this.knex('bitrix24_comments')
      .insert({ portal_id: portalId, message_key: messageKey, entity_type: entityType, entity_id: entityId, comment_id: commentId, state, created_at: now })
      .onConflict(['portal_id', 'message_key', 'entity_type', 'entity_id'])
      .merge(['state', 'comment_id']);
  }
}
