import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AckStatus, Inbound, InboundMedia, Outbound, SentRecord } from '../../../domain/ports';
import type { MessageType } from '../../../domain/types';

// An in-process stand-in for WhatsApp's network: our linked numbers ("accounts"), the client
// phones they talk to, and the messages between them. Everything WhatsApp's servers would keep
// (links, messages waiting for us, what each phone received) is appended to a log under
// DATA_DIR/simulator, so a killed server finds the network as it left it.

export interface PhoneSettings {
  online: boolean;
  registered: boolean;
  deliverAfterMs: number;
  /** null: the phone's owner does not read on their own (a test or a person reads). */
  readAfterMs: number | null;
}

export interface DeliveredMessage {
  waMessageId: string;
  from: string;
  to: string;
  type: MessageType;
  text: string | null;
  mimetype: string | null;
  filename: string | null;
  size: number | null;
  sha256: string | null;
  ptt: boolean;
  at: number;
  status: AckStatus;
}

interface StoredInbound extends Omit<Inbound, 'media'> {
  media?: { data: string; mimetype: string; filename?: string | null } | null;
}

interface SentEntry {
  record: SentRecord;
  to: string;
  from: string;
  ptt: boolean;
  mimetype: string | null;
  filename: string | null;
  size: number | null;
  status: AckStatus;
}

type LogEntry =
  | { t: 'link'; numberId: number; phone: string }
  | { t: 'unlink'; numberId: number }
  | { t: 'phone'; phone: string; settings: PhoneSettings }
  | { t: 'in'; numberId: number; msg: StoredInbound }
  | { t: 'sent'; numberId: number; entry: SentEntry }
  | { t: 'ack'; numberId: number; waMessageId: string; status: AckStatus };

export interface AccountEvents {
  inbound(msg: Inbound): void;
  ack(waMessageId: string, status: AckStatus): void;
  state(state: 'ready' | 'offline' | 'logged_out', phone?: string): void;
  identified(hiddenChatId: string, phone: string): void;
}

interface Account {
  numberId: number;
  phone: string;
  online: boolean;
  inbox: StoredInbound[];
  sent: Map<string, SentEntry>;
}

export const DEFAULT_PHONE: PhoneSettings = { online: true, registered: true, deliverAfterMs: 10, readAfterMs: null };

export class NotOnWhatsApp extends Error {}
export class AccountUnavailable extends Error {}

const digits = (phone: string) => phone.replace(/^\+/, '');
export const chatOf = (phone: string) => `${digits(phone)}@c.us`;
export const phoneOfChat = (chatId: string) => (/^\d+@c\.us$/.test(chatId) ? '+' + chatId.split('@')[0] : null);
/** The hidden id WhatsApp would show for a phone that hides its number (stable per phone). */
export const hiddenIdOf = (phone: string) => `${BigInt('0x' + crypto.createHash('sha256').update(phone).digest('hex').slice(0, 12)).toString()}@lid`;

export class SimNetwork {
  private readonly accounts = new Map<number, Account>();
  private readonly phones = new Map<string, PhoneSettings>();
  /** What reached each client phone, in order. */
  private readonly delivered = new Map<string, DeliveredMessage[]>();
  private readonly listeners = new Map<number, AccountEvents>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly logFile: string | null;
  private fd: number | null = null;
  private counter = 0;

  constructor(dir: string | null) {
    this.logFile = dir ? path.join(dir, 'network.jsonl') : null;
    if (dir) {
      fs.mkdirSync(dir, { recursive: true });
      this.replay();
      this.fd = fs.openSync(this.logFile!, 'a');
      this.resumeDeliveries();
    }
  }

  // ------------------------------------------------------------------ persistence

  private append(e: LogEntry): void {
    if (this.fd !== null) fs.writeSync(this.fd, JSON.stringify(e) + '\n');
  }

  private replay(): void {
    if (!this.logFile || !fs.existsSync(this.logFile)) return;
    const text = fs.readFileSync(this.logFile, 'utf8');
    for (const line of text.split('\n')) {
      if (!line) continue;
      let e: LogEntry;
      try {
        e = JSON.parse(line) as LogEntry;
      } catch {
        continue; // a line cut off by a kill
      }
      this.apply(e);
    }
  }

  private apply(e: LogEntry): void {
    switch (e.t) {
      case 'link':
        this.accounts.set(e.numberId, { numberId: e.numberId, phone: e.phone, online: true, inbox: [], sent: new Map() });
        break;
      case 'unlink':
        this.accounts.delete(e.numberId);
        break;
      case 'phone':
        this.phones.set(e.phone, e.settings);
        break;
      case 'in':
        this.accounts.get(e.numberId)?.inbox.push(e.msg);
        break;
      case 'sent': {
        const acc = this.accounts.get(e.numberId);
        if (acc) acc.sent.set(e.entry.record.waMessageId, e.entry);
        break;
      }
      case 'ack': {
        const entry = this.accounts.get(e.numberId)?.sent.get(e.waMessageId);
        if (!entry) break;
        const first = entry.status === 'sent' && e.status === 'delivered';
        entry.status = e.status;
        if (first) this.recordDelivery(entry);
        else this.updateDelivered(entry);
        break;
      }
    }
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  // ------------------------------------------------------------------ accounts (our numbers)

  attach(numberId: number, events: AccountEvents): void {
    this.listeners.set(numberId, events);
  }

  detach(numberId: number): void {
    this.listeners.delete(numberId);
  }

  accountOf(numberId: number): { phone: string; online: boolean } | null {
    const a = this.accounts.get(numberId);
    return a ? { phone: a.phone, online: a.online } : null;
  }

  numberIdOfPhone(phone: string): number | null {
    for (const a of this.accounts.values()) if (a.phone === phone) return a.numberId;
    return null;
  }

  /** The admin scanned the QR of `numberId` with the phone `phone`. */
  link(numberId: number, phone: string): void {
    const other = this.numberIdOfPhone(phone);
    if (other !== null && other !== numberId) throw new Error(`${phone} is already linked to number ${other}`);
    this.append({ t: 'link', numberId, phone });
    this.apply({ t: 'link', numberId, phone });
    this.listeners.get(numberId)?.state('ready', phone);
  }

  /** The phone unlinked the device (or the admin logged out). */
  unlink(numberId: number): void {
    if (!this.accounts.has(numberId)) return;
    this.append({ t: 'unlink', numberId });
    this.apply({ t: 'unlink', numberId });
    this.listeners.get(numberId)?.state('logged_out');
  }

  setAccountOnline(numberId: number, online: boolean): void {
    const a = this.accounts.get(numberId);
    if (!a) throw new Error('number is not linked');
    if (a.online === online) return;
    a.online = online;
    this.listeners.get(numberId)?.state(online ? 'ready' : 'offline', a.phone);
  }

  // ------------------------------------------------------------------ client phones

  phone(phone: string): PhoneSettings {
    return this.phones.get(phone) ?? DEFAULT_PHONE;
  }

  setPhone(phone: string, patch: Partial<PhoneSettings>): PhoneSettings {
    const was = this.phone(phone);
    const settings = { ...was, ...patch };
    this.append({ t: 'phone', phone, settings });
    this.phones.set(phone, settings);
    if (!was.online && settings.online) this.resumeDeliveries(phone);
    return settings;
  }

  deliveredTo(phone: string): DeliveredMessage[] {
    return this.delivered.get(phone) ?? [];
  }

  /** A client phone writes to one of our numbers. Kept by "WhatsApp" until our session takes it. */
  inbound(input: {
    to: string;
    from: string;
    name?: string | null;
    text?: string | null;
    waMessageId?: string;
    type?: MessageType;
    media?: InboundMedia | null;
    ptt?: boolean;
    hidden?: boolean;
    timestamp?: number;
    repeat?: number;
  }): { waMessageId: string; numberId: number } {
    const numberId = this.numberIdOfPhone(input.to);
    if (numberId === null) throw new AccountUnavailable(`${input.to} is not a linked number`);
    const acc = this.accounts.get(numberId)!;
    const chatId = input.hidden ? hiddenIdOf(input.from) : chatOf(input.from);
    const waMessageId = input.waMessageId ?? `false_${chatId}_SIM${this.nextId()}`;
    let msg = acc.inbox.find((m) => m.waMessageId === waMessageId);
    if (!msg) {
      msg = {
        waMessageId,
        chatId,
        phone: input.hidden ? null : input.from,
        name: input.name ?? null,
        type: input.type ?? (input.media ? (input.ptt ? 'voice' : mediaType(input.media.mimetype)) : 'text'),
        text: input.text ?? null,
        media: input.media ? { data: input.media.data.toString('base64'), mimetype: input.media.mimetype, filename: input.media.filename ?? null } : null,
        ptt: input.ptt ?? false,
        timestamp: input.timestamp ?? Date.now(),
      };
      this.append({ t: 'in', numberId, msg });
      acc.inbox.push(msg);
    }
    // Reported once, or several times when a test asks for duplicates.
    const times = Math.max(1, input.repeat ?? 1);
    if (acc.online) for (let i = 0; i < times; i++) this.listeners.get(numberId)?.inbound(toInbound(msg));
    return { waMessageId, numberId };
  }

  /** The phone behind a hidden id becomes visible. */
  reveal(numberId: number, phone: string): void {
    this.listeners.get(numberId)?.identified(hiddenIdOf(phone), phone);
  }

  fetchSince(numberId: number, since: number): Inbound[] {
    const acc = this.accounts.get(numberId);
    return acc ? acc.inbox.filter((m) => m.timestamp >= since).map(toInbound) : [];
  }

  recentSent(numberId: number, chatId: string, since: number): SentRecord[] {
    const acc = this.accounts.get(numberId);
    if (!acc) return [];
    return [...acc.sent.values()].filter((e) => e.record.chatId === chatId && e.record.timestamp >= since).map((e) => e.record);
  }

  // ------------------------------------------------------------------ sending and acks

  /** Armed by the control API: counts down the sends left before the process kills itself. */
  private sendsUntilCrash: number | null = null;

  /** Crash tests: SIGKILL this process right after the next `n` sends are taken. */
  crashAfterSends(n: number): void {
    this.sendsUntilCrash = n;
  }

  send(numberId: number, out: Outbound): string {
    const acc = this.accounts.get(numberId);
    if (!acc) throw new AccountUnavailable('number is not linked');
    if (!acc.online) throw new AccountUnavailable('phone of the number is offline');
    const to = phoneOfChat(out.chatId);
    if (!to || !this.phone(to).registered) throw new NotOnWhatsApp('not on WhatsApp');
    const waMessageId = `true_${out.chatId}_SIM${this.nextId()}`;
    const sha256 = out.media ? crypto.createHash('sha256').update(out.media.data).digest('hex') : null;
    const entry: SentEntry = {
      record: { waMessageId, chatId: out.chatId, type: out.type, text: out.text, mediaSha256: sha256, timestamp: Date.now() },
      to,
      from: acc.phone,
      ptt: out.ptt ?? false,
      mimetype: out.media?.mimetype ?? null,
      filename: out.media?.filename ?? null,
      size: out.media?.data.length ?? null,
      status: 'sent',
    };
    // Written before the caller learns the id: what WhatsApp's servers accepted survives a kill.
    this.append({ t: 'sent', numberId, entry });
    acc.sent.set(waMessageId, entry);
    if (this.sendsUntilCrash !== null && --this.sendsUntilCrash === 0) {
      // The worst moment for the server: WhatsApp has the message, the server has no id for it.
      process.kill(process.pid, 'SIGKILL');
    }
    queueMicrotask(() => this.listeners.get(numberId)?.ack(waMessageId, 'sent'));
    this.scheduleDelivery(numberId, entry);
    return waMessageId;
  }

  /** The client phone's owner reads (and plays, for voice notes) what they received. */
  read(phone: string, opts: { waMessageId?: string; played?: boolean } = {}): number {
    let n = 0;
    for (const acc of this.accounts.values()) {
      for (const e of acc.sent.values()) {
        if (e.to !== phone || (opts.waMessageId && e.record.waMessageId !== opts.waMessageId)) continue;
        if (e.status !== 'delivered' && !(opts.played && e.ptt && e.status === 'read')) continue;
        this.setAck(acc.numberId, e, 'read');
        if (opts.played && e.ptt) this.setAck(acc.numberId, e, 'played');
        n++;
      }
    }
    return n;
  }

  /** Test hook: report an ack as WhatsApp might (late, repeated, out of order). */
  injectAck(numberId: number, waMessageId: string, status: AckStatus): void {
    this.listeners.get(numberId)?.ack(waMessageId, status);
  }

  private scheduleDelivery(numberId: number, e: SentEntry): void {
    const settings = this.phone(e.to);
    if (!settings.online) return; // stays `sent` until the phone comes back
    this.later(settings.deliverAfterMs, () => {
      if (e.status !== 'sent' || !this.phone(e.to).online) return;
      this.setAck(numberId, e, 'delivered');
      const readAfter = this.phone(e.to).readAfterMs;
      if (readAfter !== null) this.later(readAfter, () => e.status === 'delivered' && this.setAck(numberId, e, 'read'));
    });
  }

  private setAck(numberId: number, e: SentEntry, status: AckStatus): void {
    this.append({ t: 'ack', numberId, waMessageId: e.record.waMessageId, status });
    this.apply({ t: 'ack', numberId, waMessageId: e.record.waMessageId, status });
    this.listeners.get(numberId)?.ack(e.record.waMessageId, status);
  }

  /** After a restart or a phone coming online: deliver what was sent and not yet delivered. */
  private resumeDeliveries(phone?: string): void {
    for (const acc of this.accounts.values()) {
      for (const e of acc.sent.values()) if (e.status === 'sent' && (!phone || e.to === phone)) this.scheduleDelivery(acc.numberId, e);
    }
  }

  /** Statuses of recent sends, re-reported when a session (re)connects: acks missed while we were down. */
  recentStatuses(numberId: number, since: number): { waMessageId: string; status: AckStatus }[] {
    const acc = this.accounts.get(numberId);
    if (!acc) return [];
    return [...acc.sent.values()].filter((e) => e.record.timestamp >= since).map((e) => ({ waMessageId: e.record.waMessageId, status: e.status }));
  }

  private recordDelivery(e: SentEntry): void {
    const list = this.delivered.get(e.to) ?? [];
    list.push({
      waMessageId: e.record.waMessageId,
      from: e.from,
      to: e.to,
      type: e.record.type,
      text: e.record.text,
      mimetype: e.mimetype,
      filename: e.filename,
      size: e.size,
      sha256: e.record.mediaSha256 ?? null,
      ptt: e.ptt,
      at: Date.now(),
      status: e.status,
    });
    this.delivered.set(e.to, list);
  }

  private updateDelivered(e: SentEntry): void {
    const d = this.delivered.get(e.to)?.find((x) => x.waMessageId === e.record.waMessageId);
    if (d) d.status = e.status;
  }

  private nextId(): string {
    return `${Date.now().toString(36)}${(++this.counter).toString(36)}${crypto.randomBytes(3).toString('hex')}`.toUpperCase();
  }
}

function mediaType(mimetype: string): MessageType {
  if (mimetype.startsWith('image/')) return 'image';
  if (mimetype.startsWith('video/')) return 'video';
  if (mimetype.startsWith('audio/')) return 'audio';
  return 'document';
}

function toInbound(m: StoredInbound): Inbound {
  return {
    ...m,
    media: m.media ? { data: Buffer.from(m.media.data, 'base64'), mimetype: m.media.mimetype, filename: m.media.filename ?? null } : null,
  };
}
