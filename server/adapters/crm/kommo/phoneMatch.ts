import { toE164 } from '../../../domain/phone';

/**
 * How many trailing digits the contact search asks Kommo for. People store phones in local
 * formats ("8 (912) 123-45-67", "(11) 98765-4321", "0151 2345 6789"), which do not contain the
 * full international digits but do end in the subscriber's last nine.
 */
export const SEARCH_DIGITS = 9;

export function searchQuery(e164: string): string {
  return e164.slice(1).slice(-SEARCH_DIGITS);
}

/**
 * Whether a phone value Kommo stores is this E.164 number. Written internationally ("+…",
 * "00…"), it must be the same number. Written nationally, it is read in the number's own
 * country: the stored digits, without one trunk "0", are the number less a 1–3 digit country
 * code. (Russia's "8…" is handled by toE164.) A search hit sharing only the tail is not a match.
 */
export function isSamePhone(stored: string, e164: string): boolean {
  if (toE164(stored) === e164) return true;
  const t = stored.trim();
  if (t.startsWith('+') || t.startsWith('00')) return false;
  const national = t.replace(/\D/g, '').replace(/^0/, '');
  const digits = e164.slice(1);
  const countryCodeLength = digits.length - national.length;
  return national.length >= 7 && countryCodeLength >= 1 && countryCodeLength <= 3 && digits.endsWith(national);
}
