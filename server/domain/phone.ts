// Phone numbers in E.164 (`+` and 8–15 digits) and WhatsApp chat ids built from them.

/** Normalises what a person typed or a CRM stored; null when it cannot be a phone number. */
export function toE164(raw: string, defaultCountry = ''): string | null {
  const trimmed = raw.trim();
  let digits = trimmed.replace(/[^\d]/g, '');
  if (!digits) return null;
  if (trimmed.startsWith('00')) digits = digits.slice(2);
  else if (!trimmed.startsWith('+') && defaultCountry && digits.length <= 10) digits = defaultCountry + digits.replace(/^0+/, '');
  // Russia/Kazakhstan: a national 8XXXXXXXXXX is written without the +7 as often as with it.
  if (!trimmed.startsWith('+') && digits.length === 11 && digits.startsWith('8')) digits = '7' + digits.slice(1);
  if (digits.length < 8 || digits.length > 15 || digits.startsWith('0')) return null;
  return '+' + digits;
}

export function isE164(s: string): boolean {
  return /^\+[1-9]\d{7,14}$/.test(s);
}

export function chatIdOf(e164: string): string {
  return `${e164.slice(1)}@c.us`;
}

/** The phone behind a `…@c.us` chat id; null for hidden (`@lid`) and group ids. */
export function phoneOfChatId(chatId: string): string | null {
  const m = /^(\d{8,15})@c\.us$/.exec(chatId);
  return m ? '+' + m[1] : null;
}

export function isHiddenId(chatId: string): boolean {
  return chatId.endsWith('@lid');
}
