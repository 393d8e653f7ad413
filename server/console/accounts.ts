import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { z } from 'zod';
import { AppError, badRequest, conflict } from '../domain/errors';
import type { AuditRepo, Clock } from '../domain/ports';
import type { AccountRow, AccountStore } from '../persistence/repositories/accounts';

const scrypt = promisify(crypto.scrypt) as (pw: string, salt: Buffer, keylen: number, opts: crypto.ScryptOptions) => Promise<Buffer>;

// scrypt with N=2^15, r=8, p=1 (OWASP's recommended minimum), 16-byte salt, 64-byte key. The
// parameters are stored with the hash so they can be raised later without breaking old ones.
const SCRYPT = { N: 32768, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  const key = await scrypt(password.normalize('NFKC'), salt, 64, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, key] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !key) return false;
  const want = Buffer.from(key, 'base64');
  const got = await scrypt(password.normalize('NFKC'), Buffer.from(salt, 'base64'), want.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: 256 * 1024 * 1024 });
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

export const emailSchema = z.string().trim().toLowerCase().pipe(z.email('not a valid e-mail address').max(254));
export const passwordSchema = z.string().min(10, 'at least 10 characters').max(200, 'at most 200 characters');

const ID_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'; // no 0/O, 1/I: read aloud and typed by hand

function randomCode(len: number): string {
  const bytes = crypto.randomBytes(len);
  return Array.from(bytes, (b) => ID_ALPHABET[b % ID_ALPHABET.length]).join('');
}

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

export interface ConsoleLimits {
  /** Wrong passwords in a row before the login locks. */
  lockAfter: number;
  lockMs: number;
  /** From this many failures on, each answer is delayed by `slowdownMs` × (failures − slowAfter + 1). */
  slowAfter: number;
  slowdownMs: number;
  sessionMs: number;
  linkCodeMs: number;
}

export const DEFAULT_LIMITS: ConsoleLimits = {
  lockAfter: 5,
  lockMs: 15 * 60_000,
  slowAfter: 3,
  slowdownMs: 500,
  sessionMs: 14 * 24 * 3600_000,
  linkCodeMs: 10 * 60_000,
};

/** A dummy hash so an unknown e-mail costs the same time as a wrong password. */
let dummyHash: Promise<string> | null = null;

export class AccountService {
  constructor(
    private readonly store: AccountStore,
    private readonly audit: AuditRepo,
    private readonly clock: Clock,
    readonly limits: ConsoleLimits = DEFAULT_LIMITS,
  ) {}

  async register(emailIn: string, password: string, confirm?: string): Promise<AccountRow> {
    const email = emailSchema.safeParse(emailIn);
    if (!email.success) throw badRequest(`e-mail: ${email.error.issues[0]!.message}`, { field: 'email' });
    const pw = passwordSchema.safeParse(password);
    if (!pw.success) throw badRequest(`password: ${pw.error.issues[0]!.message}`, { field: 'password' });
    if (confirm !== undefined && confirm !== password) throw badRequest('password: the two passwords differ', { field: 'confirm' });
    if (await this.store.byEmail(email.data)) throw conflict('an account with this e-mail already exists; sign in instead');
    const passwordHash = await hashPassword(password);
    for (let i = 0; i < 5; i++) {
      const publicId = `ACC-${randomCode(4)}-${randomCode(4)}`;
      if (await this.store.publicIdTaken(publicId)) continue;
      const acc = await this.store.create({ publicId, email: email.data, passwordHash, now: this.clock.now() });
      if (acc) {
        await this.audit.append({ portalId: null, actor: `account:${acc.publicId}`, action: 'account.register', details: { email: acc.email } });
        return acc;
      }
      if (await this.store.byEmail(email.data)) throw conflict('an account with this e-mail already exists; sign in instead');
    }
    throw new AppError(500, 'internal', 'could not allocate an account id');
  }

  /**
   * Checks the password. Repeated failures slow the answer down, then lock the login for a while
   * (even the right password is refused while locked). Returns the account or throws 401/429.
   */
  async signIn(emailIn: string, password: string): Promise<AccountRow> {
    const email = emailSchema.safeParse(emailIn);
    const acc = email.success ? await this.store.byEmail(email.data) : null;
    if (!acc) {
      await verifyPassword(password, await (dummyHash ??= hashPassword('not a real password')));
      throw new AppError(401, 'wrong_credentials', 'wrong e-mail or password');
    }
    await this.checkPassword(acc, password, 'wrong e-mail or password');
    return acc;
  }

  /**
   * The one password check of sign-in and password change. Each attempt is counted in the
   * database before scrypt runs (one atomic increment), so parallel guesses cannot all read the
   * same count: attempts past the limit are refused without a check, the one that reaches it
   * locks the login, and the slow-down follows each attempt's own number. The right password
   * starts the count again.
   */
  private async checkPassword(acc: AccountRow, password: string, wrongMessage: string): Promise<void> {
    const now = this.clock.now();
    if (acc.lockedUntil !== null && acc.lockedUntil > now) throw this.locked(acc.lockedUntil, now);
    const attempt = await this.store.beginAttempt(acc.id, now);
    if ('lockedUntil' in attempt) throw this.locked(attempt.lockedUntil, now);
    const failures = attempt.count;
    if (failures > this.limits.lockAfter) throw await this.lockOut(acc, now);
    if (await verifyPassword(password, acc.passwordHash)) {
      await this.store.setFailures(acc.id, 0, null, now);
      return;
    }
    if (failures >= this.limits.lockAfter) throw await this.lockOut(acc, now);
    if (failures >= this.limits.slowAfter) await new Promise((r) => setTimeout(r, this.limits.slowdownMs * (failures - this.limits.slowAfter + 1)));
    throw new AppError(401, 'wrong_credentials', wrongMessage);
  }

  private async lockOut(acc: AccountRow, now: number): Promise<AppError> {
    const { lockedUntil, fresh } = await this.store.lock(acc.id, now + this.limits.lockMs, now);
    if (fresh) await this.audit.append({ portalId: null, actor: `account:${acc.publicId}`, action: 'account.locked', details: { until: new Date(lockedUntil).toISOString() } });
    return this.locked(lockedUntil, now);
  }

  private locked(until: number, now: number): AppError {
    const minutes = Math.max(1, Math.ceil((until - now) / 60_000));
    return new AppError(429, 'login_locked', `too many wrong passwords: this login is locked for ${minutes} more minute${minutes === 1 ? '' : 's'}`, { until: new Date(until).toISOString() });
  }

  /** A new server-side session; the raw token goes into the cookie, only its hash is stored. */
  async openSession(acc: AccountRow): Promise<{ token: string; expiresAt: number }> {
    const token = crypto.randomBytes(32).toString('base64url');
    const now = this.clock.now();
    const expiresAt = now + this.limits.sessionMs;
    await this.store.addSession(sha256(token), acc.id, now, expiresAt);
    return { token, expiresAt };
  }

  async sessionAccount(token: string | null | undefined): Promise<AccountRow | null> {
    if (!token || token.length > 100) return null;
    return this.store.session(sha256(token), this.clock.now());
  }

  async closeSession(token: string): Promise<void> {
    await this.store.dropSession(sha256(token));
  }

  async changePassword(acc: AccountRow, current: string, next: string, confirm: string | undefined, keepToken: string | null): Promise<void> {
    // Counted like a sign-in: a stolen session cannot guess the password without the lockout.
    await this.checkPassword(acc, current, 'the current password is wrong');
    const pw = passwordSchema.safeParse(next);
    if (!pw.success) throw badRequest(`new password: ${pw.error.issues[0]!.message}`, { field: 'password' });
    if (confirm !== undefined && confirm !== next) throw badRequest('new password: the two passwords differ', { field: 'confirm' });
    await this.store.setPassword(acc.id, await hashPassword(next), this.clock.now());
    await this.store.dropOtherSessions(acc.id, keepToken ? sha256(keepToken) : null);
    await this.audit.append({ portalId: null, actor: `account:${acc.publicId}`, action: 'account.password_changed' });
  }

  // ---------------------------------------------------------- linking portals

  /** A one-time code an admin copies from the CRM settings tab into the console. */
  async createLinkCode(portalId: number, createdBy: string): Promise<{ code: string; expiresAt: string }> {
    const code = `${randomCode(4)}-${randomCode(4)}`;
    const now = this.clock.now();
    const expiresAt = now + this.limits.linkCodeMs;
    await this.store.addLinkCode({ codeHash: sha256(normalizeCode(code)), portalId, createdBy, now, expiresAt });
    await this.audit.append({ portalId, actor: createdBy, action: 'console.link_code', details: { expiresAt: new Date(expiresAt).toISOString() } });
    return { code, expiresAt: new Date(expiresAt).toISOString() };
  }

  async link(acc: AccountRow, codeIn: string): Promise<number> {
    const code = normalizeCode(codeIn);
    if (!/^[A-Z0-9]{8}$/.test(code)) throw badRequest('code: a link code looks like ABCD-EFGH', { field: 'code' });
    const out = await this.store.useLinkCode(sha256(code), acc.id, this.clock.now());
    if (!out.ok) {
      const message = {
        unknown: 'this link code is not valid; get a new one in the CRM settings tab',
        expired: 'this link code has expired (codes last 10 minutes); get a new one in the CRM settings tab',
        used: 'this link code was already used; get a new one in the CRM settings tab',
      }[out.why];
      throw new AppError(400, `link_code_${out.why}`, message);
    }
    await this.audit.append({ portalId: out.portalId, actor: `account:${acc.publicId}`, action: 'console.portal_linked', details: { accountId: acc.publicId } });
    return out.portalId;
  }

  async portalsOf(acc: AccountRow): Promise<number[]> {
    return this.store.portalsOf(acc.id);
  }
}

export function normalizeCode(code: string): string {
  return code.toUpperCase().replace(/[^A-Z0-9]/g, '');
}
