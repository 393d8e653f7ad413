// A stand-in for whatsapp-web.js 1.34's `Client` (no browser, no WhatsApp): an EventEmitter with
// the library's events and methods, driven by a small in-memory "WhatsApp" (StandInWorld). It
// reproduces what the real library does that an engine must survive: `message` AND
// `message_create` for every inbound message, repeated `authenticated`/`ready`, acks before
// `sendMessage` returns and out of order, `disconnected('LOGOUT')` followed by a new `qr`, a page
// that crashes mid-send, media that expired. LocalAuth's login is a file in the profile folder.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { WwebjsEngine } from '../../server/adapters/whatsapp/wwebjs/engine';
import { tempDir } from '../helpers/server';
import type { ClientFactory, ClientSpec, WaChat, WaClient, WaMedia, WaMessage, WaSendOptions } from '../../server/adapters/whatsapp/wwebjs/client';

const ACK = { sent: 1, delivered: 2, read: 3, played: 4, failed: -1 } as const;

interface StoredMessage {
  msg: WaMessage;
  numberId: number;
}

let seq = 0;
const nextId = () => `3EB0${Date.now().toString(16).toUpperCase()}${(++seq).toString(16).toUpperCase()}`;
const digits = (phone: string) => phone.replace(/^\+/, '');

export class StandInWorld {
  /** numberId → the phone linked to it (WhatsApp's side of the login). */
  readonly links = new Map<number, string>();
  readonly registered = new Map<string, boolean>();
  /** Messages by number and chat, as WhatsApp Web would load them. */
  readonly chats = new Map<number, Map<string, StoredMessage[]>>();
  readonly delivered = new Map<string, { waMessageId: string; text: string | null; type: string; options: WaSendOptions; media: WaMedia | null }[]>();
  readonly clients: StandInClient[] = [];
  /** numberId → WhatsApp Web unreachable for it: initialize() fails. */
  readonly unreachable = new Set<number>();
  /** numberId → initialize() hangs (a start that never gets anywhere). */
  readonly hang = new Set<number>();
  /** The next sendMessage of a number sends, then the page dies before it returns. */
  readonly crashNextSend = new Set<number>();
  /** Hidden ids: lid → phone, revealed by getContactLidAndPhone. */
  readonly lids = new Map<string, string>();
  /** Media that WhatsApp no longer has (downloadMedia → null). */
  readonly expiredMedia = new Set<string>();
  deliverAfterMs = 5;

  factory: ClientFactory = (spec) => {
    const c = new StandInClient(this, spec);
    this.clients.push(c);
    return c;
  };

  numberIdOf(spec: ClientSpec): number {
    return Number(/number-(\d+)$/.exec(spec.clientId)![1]);
  }

  /** The live (initialised, not destroyed) client of a number. */
  live(numberId: number): StandInClient | null {
    return [...this.clients].reverse().find((c) => c.numberId === numberId && c.alive) ?? null;
  }

  liveClients(): StandInClient[] {
    return this.clients.filter((c) => c.alive);
  }

  chat(numberId: number, chatId: string): StoredMessage[] {
    let byChat = this.chats.get(numberId);
    if (!byChat) this.chats.set(numberId, (byChat = new Map()));
    let list = byChat.get(chatId);
    if (!list) byChat.set(chatId, (list = []));
    return list;
  }

  // ------------------------------------------------------------------ what a test does to "WhatsApp"

  scan(numberId: number, phone: string): void {
    const c = this.live(numberId);
    if (!c || !c.showingQr) throw new Error(`number ${numberId} shows no QR`);
    this.links.set(numberId, phone);
    c.login(phone);
  }

  inbound(
    numberId: number,
    m: { from: string; text?: string; waMessageId?: string; repeat?: number; hidden?: boolean; type?: string; media?: WaMedia | null; name?: string },
  ): string {
    const chatId = m.hidden ? `${BigInt(digits(m.from)) * 7n}@lid` : `${digits(m.from)}@c.us`;
    if (m.hidden) this.lids.set(chatId, `${digits(m.from)}@c.us`);
    const list = this.chat(numberId, chatId);
    const id = m.waMessageId ?? `false_${chatId}_${nextId()}`;
    let stored = list.find((s) => s.msg.id._serialized === id);
    if (!stored) {
      const me = this.links.get(numberId) ?? '+0';
      const media = m.media ?? null;
      const world = this;
      const msg: WaMessage = {
        id: { _serialized: id, fromMe: false, remote: chatId, id: id.split('_').pop()! },
        from: chatId,
        to: `${digits(me)}@c.us`,
        body: m.text ?? '',
        type: m.type ?? (media ? 'image' : 'chat'),
        timestamp: Math.floor(Date.now() / 1000),
        fromMe: false,
        hasMedia: Boolean(media),
        ack: 1,
        _data: { notifyName: m.name ?? 'Stand-in', size: media ? Buffer.from(media.data, 'base64').length : undefined },
        async downloadMedia() {
          return world.expiredMedia.has(id) ? null : media ? { ...media } : undefined;
        },
      };
      stored = { msg, numberId };
      list.push(stored);
    }
    const c = this.live(numberId);
    if (c?.isReady) {
      // whatsapp-web.js fires both for every new inbound message.
      for (let i = 0; i < Math.max(1, m.repeat ?? 1); i++) {
        c.emit('message', stored.msg);
        c.emit('message_create', stored.msg);
      }
    }
    return id;
  }

  /** The owner writes from the phone itself: only `message_create`, with fromMe. */
  fromPhone(numberId: number, toPhone: string, text: string): string {
    const chatId = `${digits(toPhone)}@c.us`;
    const msg = this.makeOwn(numberId, chatId, text, 'chat', null);
    this.live(numberId)?.emit('message_create', msg);
    return msg.id._serialized;
  }

  makeOwn(numberId: number, chatId: string, text: string | null, type: string, media: WaMedia | null): WaMessage {
    const id = `true_${chatId}_${nextId()}`;
    const me = this.links.get(numberId) ?? '+0';
    const msg: WaMessage = {
      id: { _serialized: id, fromMe: true, remote: chatId, id: id.split('_').pop()! },
      from: `${digits(me)}@c.us`,
      to: chatId,
      body: text ?? '',
      type,
      timestamp: Math.floor(Date.now() / 1000),
      fromMe: true,
      hasMedia: Boolean(media),
      ack: 0,
      async downloadMedia() {
        return media;
      },
    };
    this.chat(numberId, chatId).push({ msg, numberId });
    return msg;
  }

  ack(numberId: number, waMessageId: string, status: keyof typeof ACK): void {
    for (const list of this.chats.get(numberId)?.values() ?? []) {
      const s = list.find((x) => x.msg.id._serialized === waMessageId);
      if (!s) continue;
      s.msg.ack = Math.max(s.msg.ack, ACK[status]);
      this.live(numberId)?.emit('message_ack', s.msg, ACK[status]);
    }
  }

  revoke(numberId: number, waMessageId: string): void {
    for (const list of this.chats.get(numberId)?.values() ?? []) {
      const s = list.find((x) => x.msg.id._serialized === waMessageId);
      if (s) this.live(numberId)?.emit('message_revoke_everyone', { ...s.msg, type: 'revoked', body: '' }, s.msg);
    }
  }

  /** The phone unlinks the device: the library emits LOGOUT, deletes the profile, shows a new QR. */
  unlink(numberId: number): void {
    this.links.delete(numberId);
    const c = this.live(numberId);
    if (!c) return;
    c.emit('disconnected', 'LOGOUT');
    fs.rmSync(c.spec.profileDir, { recursive: true, force: true });
    c.isReady = false;
    c.showQr();
  }

  /** WhatsApp Web stops answering for this number: the page dies and relaunches fail. */
  goOffline(numberId: number): void {
    this.unreachable.add(numberId);
    const c = this.live(numberId);
    c?.crashPage();
  }

  goOnline(numberId: number): void {
    this.unreachable.delete(numberId);
  }
}

export class StandInClient extends EventEmitter implements WaClient {
  readonly numberId: number;
  alive = false;
  destroyed = false;
  isReady = false;
  showingQr = false;
  info: { wid?: { _serialized: string; user: string } } | null = null;
  readonly pupPage = new EventEmitter();
  private qrCount = 0;
  private initialised = false;

  constructor(
    private readonly world: StandInWorld,
    readonly spec: ClientSpec,
  ) {
    super();
    this.numberId = world.numberIdOf(spec);
  }

  private get loginFile(): string {
    return path.join(this.spec.profileDir, 'Default', 'stand-in-login.json');
  }

  async initialize(): Promise<void> {
    if (this.initialised) throw new Error('initialize() called twice on one Client');
    this.initialised = true;
    // LocalAuth.beforeBrowserInitialized
    fs.mkdirSync(this.spec.profileDir, { recursive: true });
    if (this.world.hang.has(this.numberId)) return new Promise<void>(() => {});
    await new Promise((r) => setImmediate(r));
    if (this.destroyed) throw new Error('Protocol error: Target closed');
    if (this.world.unreachable.has(this.numberId)) throw new Error('net::ERR_NAME_NOT_RESOLVED at https://web.whatsapp.com/');
    this.alive = true;
    const phone = this.world.links.get(this.numberId);
    if (phone && fs.existsSync(this.loginFile)) {
      this.becomeReady(phone);
    } else {
      this.showQr();
    }
  }

  showQr(): void {
    this.showingQr = true;
    this.emit('qr', `2@stand-in-${this.spec.clientId}-${++this.qrCount},key,identity,adv`);
  }

  login(phone: string): void {
    fs.mkdirSync(path.dirname(this.loginFile), { recursive: true });
    fs.writeFileSync(this.loginFile, JSON.stringify({ phone }));
    this.showingQr = false;
    this.becomeReady(phone);
  }

  private becomeReady(phone: string): void {
    this.info = { wid: { _serialized: `${digits(phone)}@c.us`, user: digits(phone) } };
    this.isReady = true;
    // Both fire again on re-sync in the real library: reproduce the repeat.
    this.emit('authenticated');
    this.emit('ready');
    this.emit('authenticated');
    this.emit('ready');
  }

  crashPage(): void {
    if (!this.alive) return;
    this.isReady = false;
    this.pupPage.emit('error', new Error('Page crashed!'));
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    this.alive = false;
    this.isReady = false;
  }

  async logout(): Promise<void> {
    this.world.links.delete(this.numberId);
    fs.rmSync(this.spec.profileDir, { recursive: true, force: true });
    this.destroyed = true;
    this.alive = false;
  }

  async getState(): Promise<string | null> {
    if (!this.alive) throw new Error('Protocol error: Session closed');
    return 'CONNECTED';
  }

  private requireReady(): void {
    if (!this.isReady) throw new Error('Execution context was destroyed, most likely because of a navigation');
  }

  async getNumberId(number: string): Promise<{ _serialized: string; user: string; server: string } | null> {
    this.requireReady();
    const phone = '+' + number.replace(/@c\.us$/, '');
    if (this.world.registered.get(phone) === false) return null;
    return { _serialized: `${digits(phone)}@c.us`, user: digits(phone), server: 'c.us' };
  }

  async sendMessage(chatId: string, content: string | WaMedia, options: WaSendOptions = {}): Promise<WaMessage | undefined> {
    this.requireReady();
    const media = typeof content === 'string' ? null : content;
    const text = typeof content === 'string' ? content : options.caption ?? null;
    const type = !media ? 'chat' : options.sendAudioAsVoice ? 'ptt' : options.sendMediaAsDocument ? 'document' : media.mimetype.split('/')[0]!;
    const msg = this.world.makeOwn(this.numberId, chatId, text, type, media);
    const phone = '+' + chatId.split('@')[0];
    const list = this.world.delivered.get(phone) ?? [];
    list.push({ waMessageId: msg.id._serialized, text, type, options, media });
    this.world.delivered.set(phone, list);
    // As in the library: the echo and the first ack fire from the page before the call returns.
    this.emit('message_create', msg);
    msg.ack = 1;
    this.emit('message_ack', msg, 1);
    if (this.world.crashNextSend.delete(this.numberId)) {
      this.crashPage();
      throw new Error('Protocol error (Runtime.callFunctionOn): Execution context was destroyed, most likely because of a navigation.');
    }
    setTimeout(() => {
      if (!this.alive || msg.ack >= 2) return;
      msg.ack = 2;
      this.emit('message_ack', msg, 2);
    }, this.world.deliverAfterMs);
    return msg;
  }

  async getChats(): Promise<WaChat[]> {
    this.requireReady();
    const byChat = this.world.chats.get(this.numberId) ?? new Map<string, StoredMessage[]>();
    return [...byChat.keys()].map((id) => this.chatOf(id));
  }

  async getChatById(chatId: string): Promise<WaChat> {
    this.requireReady();
    return this.chatOf(chatId);
  }

  private chatOf(chatId: string): WaChat {
    const list = this.world.chat(this.numberId, chatId);
    return {
      id: { _serialized: chatId },
      isGroup: chatId.endsWith('@g.us'),
      timestamp: list.length ? list[list.length - 1]!.msg.timestamp : 0,
      fetchMessages: async (opts) => {
        this.requireReady();
        const all = list.map((s) => s.msg).filter((m) => opts.fromMe === undefined || m.fromMe === opts.fromMe);
        return opts.limit ? all.slice(-opts.limit) : all;
      },
    };
  }

  async sendSeen(_chatId: string): Promise<boolean> {
    this.requireReady();
    return true;
  }

  async getContactLidAndPhone(userIds: string[]): Promise<{ lid?: string; pn?: string }[]> {
    return userIds.map((lid) => ({ lid, pn: this.world.lids.get(lid) }));
  }
}

/** The adapter with its Client replaced by the stand-in; a real executable stands for Chromium (never run). */
export function standInEngine(world: StandInWorld, over: Partial<ConstructorParameters<typeof WwebjsEngine>[0]> = {}) {
  const dataDir = tempDir('incrm-wwebjs-');
  const engine = new WwebjsEngine({
    config: { DATA_DIR: dataDir, WA_MAX_SESSIONS: 50, CHROMIUM_PATH: process.execPath, mediaMaxBytes: 1024 * 1024 },
    createClient: world.factory,
    browserMode: 'client',
    timing: { backoffBaseMs: 20, backoffMaxMs: 200, ownEchoHoldMs: 30, startingTimeoutMs: 5_000, qrTimeoutMs: 60_000, healthIntervalMs: 60_000, closeTimeoutMs: 1000 },
    ...over,
  });
  const profileOf = (id: number) => path.join(dataDir, 'wwebjs', `session-number-${id}`);
  return { engine, dataDir, profileOf };
}

