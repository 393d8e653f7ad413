import type { CrmMessageRecord } from './ports';

/**
 * How a WhatsApp message reads in a CRM (a Kommo note, a Bitrix24 timeline comment): who wrote to
 * whom, the text, and a link to any media. One wording for every CRM adapter.
 */
export function crmMessageText(m: CrmMessageRecord): string {
  const client = [m.phone ?? 'hidden number', m.contactName ? `(${m.contactName})` : ''].filter(Boolean).join(' ');
  const head =
    m.direction === 'in'
      ? `WhatsApp ← ${client}${m.numberPhone ? ` to ${m.numberPhone}` : ''}`
      : `WhatsApp → ${client}${m.numberPhone ? ` from ${m.numberPhone}` : ''}${m.fromPhone ? ' (sent from the phone)' : ''}`;
  const lines = [head];
  if (m.text) lines.push(m.text);
  else if (m.type !== 'text') lines.push(`[${m.type}]`);
  if (m.mediaUrl) lines.push(`${m.type === 'voice' ? 'Voice message' : 'Attachment'}: ${m.mediaUrl}`);
  return lines.join('\n');
}
