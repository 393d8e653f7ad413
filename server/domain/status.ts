import type { MessageStatus } from './types';

// queued → sent → delivered → read → played. A status only moves forward; a late or out-of-order
// ack never moves it back. `failed` can be reached from any not-yet-delivered state and left by a
// retry (back to `queued`) or by WhatsApp reporting the message delivered after all.
const ORDER: MessageStatus[] = ['queued', 'sent', 'delivered', 'read', 'played'];

export function rank(s: MessageStatus): number {
  return ORDER.indexOf(s);
}

/** The statuses from which `next` is a legal move. */
export function allowedFrom(next: MessageStatus): MessageStatus[] {
  if (next === 'failed') return ['queued', 'sent'];
  if (next === 'queued') return ['failed'];
  // A failed message that WhatsApp later reports delivered (or read) really reached the phone:
  // honour it. A late `sent` says nothing new, and must not clear the reason of a failure.
  return next === 'sent' ? ORDER.slice(0, rank(next)) : [...ORDER.slice(0, rank(next)), 'failed'];
}

export function isForward(from: MessageStatus, to: MessageStatus): boolean {
  return allowedFrom(to).includes(from);
}
