// Bitrix24 Market billing. Where a portal pays through the Market, Bitrix24's `app.info` answer
// drives the licence instead of our payments. `app.info` → `{ STATUS, PAYMENT_EXPIRED: 'Y'|'N',
// DAYS, … }`; STATUS: F free, D demo, T trial, P paid, L local, S subscription (Market Plus).
// After expiry PAYMENT_EXPIRED is `Y` and DAYS is negative.
import { z } from 'zod';
import { DAY_MS, type LicenceRecord } from './licence';

const yn = z.preprocess((v) => (typeof v === 'boolean' ? (v ? 'Y' : 'N') : typeof v === 'string' ? v.toUpperCase() : v), z.enum(['Y', 'N']));

export const appInfoSchema = z
  .object({
    STATUS: z.preprocess((v) => (typeof v === 'string' ? v.toUpperCase() : v), z.enum(['F', 'D', 'T', 'P', 'L', 'S'])),
    PAYMENT_EXPIRED: yn.optional().default('N'),
    // Bitrix24 sends numbers as strings in places; null/absent when the status has no end.
    DAYS: z
      .union([z.number(), z.string().regex(/^-?\d+$/), z.null()])
      .optional()
      .transform((v) => (v === null || v === undefined ? null : Number(v))),
  })
  .passthrough();

export type AppInfo = z.output<typeof appInfoSchema>;

export type MarketKind = 'perpetual' | 'trial' | 'paid';

export function marketKind(status: AppInfo['STATUS']): MarketKind {
  switch (status) {
    case 'F': // free app
    case 'L': // local (the portal's own) app: no Market billing at all
      return 'perpetual';
    case 'D':
    case 'T':
      return 'trial';
    case 'P':
    case 'S':
      return 'paid';
  }
}

/**
 * Maps an `app.info` answer onto the licence. The end of access is `now + DAYS`; with
 * PAYMENT_EXPIRED=Y it is never later than now, whatever DAYS says. A paid status without DAYS
 * keeps the current end. Suspension is ours and survives the mapping.
 */
export function applyAppInfo(rec: LicenceRecord, raw: unknown, now: number): LicenceRecord {
  const info = appInfoSchema.parse(raw);
  const kind = marketKind(info.STATUS);
  const base: LicenceRecord = { ...rec, billing: 'market', marketStatus: info.STATUS, nextPlanCode: null, nextPlanFrom: null, laterPlans: [] };
  if (kind === 'perpetual') return { ...base, perpetual: true };
  const expired = info.PAYMENT_EXPIRED === 'Y';
  let end: number | null = info.DAYS === null ? null : now + info.DAYS * DAY_MS;
  if (expired) end = Math.min(end ?? now, now);
  // DAYS is whole days: the same answer an hour later must not move the end (and re-fire alerts).
  const keep = (old: number | null) => (end !== null && old !== null && Math.abs(end - old) < DAY_MS && end > now === old > now ? old : end);
  if (kind === 'trial') {
    const trialEndsAt = (rec.billing === 'market' ? keep(rec.trialEndsAt) : end) ?? rec.trialEndsAt;
    return { ...base, perpetual: false, paidUntil: null, trialEndsAt, expiryChangedAt: trialEndsAt !== rec.trialEndsAt || rec.paidUntil !== null ? now : rec.expiryChangedAt };
  }
  const paidUntil = (rec.billing === 'market' ? keep(rec.paidUntil) : end) ?? rec.paidUntil ?? now;
  return { ...base, perpetual: false, paidUntil, expiryChangedAt: paidUntil !== rec.paidUntil ? now : rec.expiryChangedAt };
}
