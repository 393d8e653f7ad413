import type { Knex } from 'knex';
import { num, numOrNull, type Row } from './rows';

// The account console's tables: accounts, their server-side sessions, linked portals and the
// one-time codes that link them. Used by server/console only.

export interface AccountRow {
  id: number;
  publicId: string;
  email: string;
  passwordHash: string;
  failedCount: number;
  lockedUntil: number | null;
  createdAt: number;
}

const toAccount = (r: Row): AccountRow => ({
  id: num(r.id),
  publicId: String(r.public_id),
  email: String(r.email),
  passwordHash: String(r.password_hash),
  failedCount: num(r.failed_count),
  lockedUntil: numOrNull(r.locked_until),
  createdAt: num(r.created_at),
});

export type LinkOutcome = { ok: true; portalId: number } | { ok: false; why: 'unknown' | 'expired' | 'used' };

export class AccountStore {
  constructor(private readonly knex: Knex) {}

  /** Inserts unless the e-mail or public id is taken; null then. */
  async create(a: { publicId: string; email: string; passwordHash: string; now: number }): Promise<AccountRow | null> {
    const rows = (await this.knex('console_accounts')
      .insert({ public_id: a.publicId, email: a.email, password_hash: a.passwordHash, created_at: a.now, updated_at: a.now })
      .onConflict()
      .ignore()
      .returning('*')) as Row[];
    return rows[0] ? toAccount(rows[0]) : null;
  }

  async byEmail(email: string): Promise<AccountRow | null> {
    const r = (await this.knex('console_accounts').where({ email }).first()) as Row | undefined;
    return r ? toAccount(r) : null;
  }

  async byId(id: number): Promise<AccountRow | null> {
    const r = (await this.knex('console_accounts').where({ id }).first()) as Row | undefined;
    return r ? toAccount(r) : null;
  }

  async publicIdTaken(publicId: string): Promise<boolean> {
    return !!(await this.knex('console_accounts').where({ public_id: publicId }).first());
  }

  async setFailures(id: number, failedCount: number, lockedUntil: number | null, now: number): Promise<void> {
    await this.knex('console_accounts').where({ id }).update({ failed_count: failedCount, locked_until: lockedUntil, updated_at: now });
  }

  /**
   * Counts a password check before it runs, in one statement (parallel checks each get their own
   * number): returns the failures so far including this attempt, or the lock when the login is
   * locked at `now`.
   */
  async beginAttempt(id: number, now: number): Promise<{ count: number } | { lockedUntil: number }> {
    const rows = (await this.knex('console_accounts')
      .where({ id })
      .andWhere((q) => q.whereNull('locked_until').orWhere('locked_until', '<=', now))
      .update({ failed_count: this.knex.raw('failed_count + 1'), updated_at: now })
      .returning(['failed_count'])) as Row[];
    if (rows[0]) return { count: num(rows[0].failed_count) };
    const r = (await this.knex('console_accounts').where({ id }).first('locked_until')) as Row | undefined;
    return { lockedUntil: numOrNull(r?.locked_until) ?? now };
  }

  /** Locks the login until `until` (and starts the count again) unless it is locked already. */
  async lock(id: number, until: number, now: number): Promise<{ lockedUntil: number; fresh: boolean }> {
    const n = await this.knex('console_accounts')
      .where({ id })
      .andWhere((q) => q.whereNull('locked_until').orWhere('locked_until', '<=', now))
      .update({ failed_count: 0, locked_until: until, updated_at: now });
    if (Number(n) === 1) return { lockedUntil: until, fresh: true };
    const r = (await this.knex('console_accounts').where({ id }).first('locked_until')) as Row | undefined;
    return { lockedUntil: numOrNull(r?.locked_until) ?? until, fresh: false };
  }

  async setPassword(id: number, passwordHash: string, now: number): Promise<void> {
    await this.knex('console_accounts').where({ id }).update({ password_hash: passwordHash, updated_at: now });
  }

  async addSession(idHash: string, accountId: number, now: number, expiresAt: number): Promise<void> {
    await this.knex('console_sessions').insert({ id_hash: idHash, account_id: accountId, created_at: now, expires_at: expiresAt });
  }

  async session(idHash: string, now: number): Promise<AccountRow | null> {
    const r = (await this.knex('console_sessions as s')
      .join('console_accounts as a', 'a.id', 's.account_id')
      .where('s.id_hash', idHash)
      .andWhere('s.expires_at', '>', now)
      .select('a.*')
      .first()) as Row | undefined;
    return r ? toAccount(r) : null;
  }

  async dropSession(idHash: string): Promise<void> {
    await this.knex('console_sessions').where({ id_hash: idHash }).delete();
  }

  /** Signs the account out everywhere except `keep` (after a password change). */
  async dropOtherSessions(accountId: number, keep: string | null): Promise<void> {
    const q = this.knex('console_sessions').where({ account_id: accountId });
    if (keep) q.andWhereNot({ id_hash: keep });
    await q.delete();
  }

  async addLinkCode(c: { codeHash: string; portalId: number; createdBy: string; now: number; expiresAt: number }): Promise<void> {
    await this.knex('console_link_codes').insert({ code_hash: c.codeHash, portal_id: c.portalId, created_by: c.createdBy, created_at: c.now, expires_at: c.expiresAt });
  }

  /** Uses a code once: only an unused, unexpired code links, and only one caller wins it. */
  async useLinkCode(codeHash: string, accountId: number, now: number): Promise<LinkOutcome> {
    return this.knex.transaction(async (trx) => {
      const n = await trx('console_link_codes')
        .where({ code_hash: codeHash })
        .whereNull('used_at')
        .andWhere('expires_at', '>', now)
        .update({ used_at: now, used_by: accountId });
      const row = (await trx('console_link_codes').where({ code_hash: codeHash }).first()) as Row | undefined;
      if (!row) return { ok: false, why: 'unknown' } as const;
      if (Number(n) !== 1) return { ok: false, why: row.used_at !== null ? 'used' : 'expired' } as const;
      await trx('console_links').insert({ account_id: accountId, portal_id: num(row.portal_id), created_at: now }).onConflict(['account_id', 'portal_id']).ignore();
      return { ok: true, portalId: num(row.portal_id) } as const;
    });
  }

  async portalsOf(accountId: number): Promise<number[]> {
    return ((await this.knex('console_links').where({ account_id: accountId }).orderBy('portal_id')) as Row[]).map((r) => num(r.portal_id));
  }

  async emailsOfPortal(portalId: number): Promise<string[]> {
    const rows = (await this.knex('console_links as l').join('console_accounts as a', 'a.id', 'l.account_id').where('l.portal_id', portalId).select('a.email')) as Row[];
    return rows.map((r) => String(r.email));
  }
}
