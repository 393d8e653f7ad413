// A stand-in for whatsapp-web.js 1.34's `Client` (no browser, no WhatsApp): an EventEmitter with
// the library's events and methods, driven by a small in-memory "WhatsApp" (StandInWorld). It
// reproduces what the real library (node_modules/whatsapp-web.js/src, 1.34.7) does that an engine
// must survive:
// - `message_create` then `message` for every inbound message (Client.js onAddMessageEvent);
// - ciphertext arrives as `message_ciphertext` only, then `message_create`/`message` once decrypted;
// - repeated `authenticated`/`ready`;
// - `sendMessage` resolves with a fresh snapshot of the message (ack usually 0) while its
//   `message_create` and acks may fire before it returns, and acks arrive out of order;
// - `change_state(X)`, `disconnected(X)`, then the library destroys the client itself (for any X
//   not in its accepted states); `disconnected('LOGOUT')` followed by a new `qr`;
// - `downloadMedia()` resolving undefined (expired, 404, error stage) or null (not found,
//   REUPLOADING), or throwing; a page that crashes mid-send. LocalAuth's login is a file in the
//   profile folder.
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
  /** Media that WhatsApp no longer has: downloadMedia → undefined (404 / ERROR stage). */
  readonly expiredMedia = new Set<string>();
  /** Media being re-uploaded by the sender's phone: downloadMedia → null (REUPLOADING). */
  readonly reuploadingMedia = new Set<string>();
  /** The next downloads of a message throw these, one per call (then it downloads fine). */
  readonly mediaErrors = new Map<string, Error[]>();
  /** Downloads of these messages never answer (a page that stopped responding). */
  readonly mediaHang = new Set<string>();
  /** Acks that fire from the page while sendMessage is still running (before it resolves). */
  acksBeforeReturn: (keyof typeof ACK)[] = ['sent'];
  /** Whether `delivered` follows on its own `deliverAfterMs` after a send (false: only acks a test fires). */
  deliverLater = true;
  deliverAfterMs = 5;
  /** How long sendMessage takes to resolve (the page's round trip). */
  sendDelayMs = 0;
  /** numberId → WhatsApp Web does not come up after a navigation: the library's inject() throws 'auth timeout'. */
  readonly injectFails = new Set<number>();
  /** numberIds whose own id WhatsApp Web knows only as a hidden id (info.wid is `…@lid`). */
  readonly hiddenMe = new Set<number>();
  /** Client methods whose page call never answers (a page that stopped responding). */
  readonly hangCalls = new Set<'getChatById' | 'getChats' | 'sendSeen' | 'fetchMessages'>();
  /** getContactLidAndPhone reveals neither side of a lid/phone pair (WhatsApp Web has not synced it). */
  lidLookupFails = false;
  /** Phones whose chat WhatsApp Web addresses by hidden id: own messages carry `to` = the lid. */
  readonly lidChats = new Set<string>();

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
          const err = world.mediaErrors.get(id)?.shift();
          if (err) throw err;
          if (world.mediaHang.has(id)) return new Promise<never>(() => {});
          if (!media) return undefined; // !hasMedia
          if (world.reuploadingMedia.has(id)) return null;
          if (world.expiredMedia.has(id)) return undefined;
          return { ...media };
        },
      };
      stored = { msg, numberId };
      list.push(stored);
    }
    const c = this.live(numberId);
    if (c?.isReady) {
      for (let i = 0; i < Math.max(1, m.repeat ?? 1); i++) {
        if (stored.msg.type === 'ciphertext') {
          // Not decrypted yet: only this event (Msg 'add' with type ciphertext).
          c.emit('message_ciphertext', stored.msg);
        } else {
          // whatsapp-web.js fires both for every new inbound message, message_create first.
          c.emit('message_create', stored.msg);
          if (!stored.msg.fromMe) c.emit('message', stored.msg);
        }
      }
    }
    return id;
  }

  /** A ciphertext message is decrypted: its type changes and the library reports it as new. */
  decrypt(numberId: number, waMessageId: string, text: string): void {
    for (const list of this.chats.get(numberId)?.values() ?? []) {
      const s = list.find((x) => x.msg.id._serialized === waMessageId);
      if (!s) continue;
      s.msg.type = 'chat';
      s.msg.body = text;
      const c = this.live(numberId);
      c?.emit('message_create', s.msg);
      c?.emit('message', s.msg);
    }
  }

  /** Only `message_create` fires (no `message`): must not be reported as inbound on its own. */
  createOnly(numberId: number, from: string, text: string): string {
    const chatId = `${digits(from)}@c.us`;
    const id = `false_${chatId}_${nextId()}`;
    const me = this.links.get(numberId) ?? '+0';
    const msg: WaMessage = {
      id: { _serialized: id, fromMe: false, remote: chatId, id: id.split('_').pop()! },
      from: chatId,
      to: `${digits(me)}@c.us`,
      body: text,
      type: 'chat',
      timestamp: Math.floor(Date.now() / 1000),
      fromMe: false,
      hasMedia: false,
      ack: 1,
      async downloadMedia() {
        return undefined;
      },
    };
    this.live(numberId)?.emit('message_create', msg);
    return id;
  }

  /** The owner writes from the phone itself: only `message_create`, with fromMe. */
  fromPhone(numberId: number, toPhone: string, text: string): string {
    const chatId = `${digits(toPhone)}@c.us`;
    const msg = this.makeOwn(numberId, chatId, text, 'chat', null);
    this.live(numberId)?.emit('message_create', msg);
    return msg.id._serialized;
  }

  /** The hidden id WhatsApp Web uses for a phone's chat when `lidChats` has it. */
  lidOf(phoneChatId: string): string {
    const lid = `${BigInt(phoneChatId.split('@')[0]!) * 7n}@lid`;
    this.lids.set(lid, phoneChatId);
    return lid;
  }

  makeOwn(numberId: number, chatId: string, text: string | null, type: string, media: WaMedia | null): WaMessage {
    // A chat WhatsApp Web keeps under the hidden id: the message is addressed to the lid.
    const addr = chatId.endsWith('@c.us') && this.lidChats.has('+' + chatId.split('@')[0]) ? this.lidOf(chatId) : chatId;
    const id = `true_${addr}_${nextId()}`;
    const me = this.links.get(numberId) ?? '+0';
    const msg: WaMessage = {
      id: { _serialized: id, fromMe: true, remote: addr, id: id.split('_').pop()! },
      from: `${digits(me)}@c.us`,
      to: addr,
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
    this.chat(numberId, addr).push({ msg, numberId });
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

  /**
   * WhatsApp Web's socket state changes. States outside the library's accepted ones (CONNECTED,
   * OPENING, PAIRING, TIMEOUT) end the client as the library does: `change_state(X)`,
   * `disconnected(X)`, then `destroy()` without awaiting it.
   */
  setState(numberId: number, state: string): void {
    const c = this.live(numberId);
    if (!c) return;
    c.waState = state;
    c.emit('change_state', state);
    if (!['CONNECTED', 'OPENING', 'PAIRING', 'TIMEOUT'].includes(state)) {
      c.emit('disconnected', state);
      void c.destroy();
    }
  }

  /**
   * The WhatsApp Web page navigates (WhatsApp reloads itself): the injection is gone, and the
   * library's `framenavigated` listener runs inject() again without anyone awaiting it.
   */
  navigate(numberId: number): void {
    this.live(numberId)?.pupPage.emit('framenavigated', { url: () => 'https://web.whatsapp.com/' });
  }

  /** The non-logout disconnect sequence of the library (CONFLICT, TOS_BLOCK, …). */
  disconnect(numberId: number, reason: string): void {
    this.setState(numberId, reason);
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
  info: { wid?: { _serialized: string; user: string; server: string } } | null = null;
  /** WhatsApp Web's socket state, as getState() reads it. */
  waState: string | null = null;
  /** Whether window.WWebJS is in the page (the library's injection). */
  injected = false;
  readonly pupPage = Object.assign(new EventEmitter(), {
    // The engine's health probe asks whether the injection is there; that is all it evaluates.
    evaluate: async (_expr: unknown): Promise<unknown> => {
      if (!this.alive) throw new Error('Protocol error (Runtime.callFunctionOn): Session closed. Most likely the page has been closed.');
      return this.injected;
    },
  });
  readonly calls = { getNumberId: 0, sendMessage: 0 };
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
    this.injected = true;
    // Client.initialize: `this.pupPage.on('framenavigated', async () => { …; await this.inject(); })`
    this.pupPage.on('framenavigated', async () => {
      this.injected = false;
      await this.inject();
    });
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
    // Client.js: wid = getMaybeMePnUser() || getMaybeMeLidUser()
    const lid = String(BigInt(digits(phone)) * 7n);
    this.info = this.world.hiddenMe.has(this.numberId)
      ? { wid: { _serialized: `${lid}@lid`, user: lid, server: 'lid' } }
      : { wid: { _serialized: `${digits(phone)}@c.us`, user: digits(phone), server: 'c.us' } };
    this.waState = 'CONNECTED';
    this.isReady = true;
    // Both fire again on re-sync in the real library: reproduce the repeat.
    this.emit('authenticated');
    this.emit('ready');
    this.emit('authenticated');
    this.emit('ready');
  }

  /** Client.inject after a navigation: throws the library's 'auth timeout' string when WhatsApp Web does not load. */
  private async inject(): Promise<void> {
    await new Promise((r) => setTimeout(r, 5));
    if (this.world.injectFails.has(this.numberId)) throw 'auth timeout';
    this.injected = true;
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
    return this.waState;
  }

  private requireReady(reading = 'getChat'): void {
    if (!this.isReady) throw new Error('Execution context was destroyed, most likely because of a navigation');
    // What page.evaluate rejects with when window.WWebJS is gone.
    if (!this.injected) throw new Error(`Evaluation failed: TypeError: Cannot read properties of undefined (reading '${reading}')`);
  }

  async getNumberId(number: string): Promise<{ _serialized: string; user: string; server: string } | null> {
    this.calls.getNumberId++;
    // window.require('WAWebQueryExistsJob'): works without the injection.
    if (!this.isReady) throw new Error('Execution context was destroyed, most likely because of a navigation');
    const phone = '+' + number.replace(/@c\.us$/, '');
    if (this.world.registered.get(phone) === false) return null;
    return { _serialized: `${digits(phone)}@c.us`, user: digits(phone), server: 'c.us' };
  }

  async sendMessage(chatId: string, content: string | WaMedia, options: WaSendOptions = {}): Promise<WaMessage | undefined> {
    this.calls.sendMessage++;
    this.requireReady();
    const media = typeof content === 'string' ? null : content;
    const text = typeof content === 'string' ? content : options.caption ?? null;
    const type = !media ? 'chat' : options.sendAudioAsVoice ? 'ptt' : options.sendMediaAsDocument ? 'document' : media.mimetype.split('/')[0]!;
    const msg = this.world.makeOwn(this.numberId, chatId, text, type, media);
    // The page takes the message model as it is when WWebJS.sendMessage returns: not yet on the
    // server (ACK_PENDING). Client.sendMessage wraps that in a new Message.
    const snapshot: WaMessage = { ...msg, id: { ...msg.id }, ack: 0 };
    const phone = '+' + chatId.split('@')[0];
    const list = this.world.delivered.get(phone) ?? [];
    list.push({ waMessageId: msg.id._serialized, text, type, options, media });
    this.world.delivered.set(phone, list);
    // As in the library: the echo and the first acks fire from the page (exposed functions)
    // while the evaluate call is still on its way back.
    this.emit('message_create', msg);
    for (const a of this.world.acksBeforeReturn) {
      msg.ack = Math.max(msg.ack, ACK[a]);
      this.emit('message_ack', msg, ACK[a]);
    }
    if (this.world.crashNextSend.delete(this.numberId)) {
      this.crashPage();
      throw new Error('Protocol error (Runtime.callFunctionOn): Execution context was destroyed, most likely because of a navigation.');
    }
    if (this.world.deliverLater) {
      setTimeout(() => {
        if (!this.alive || msg.ack >= 2) return;
        msg.ack = 2;
        this.emit('message_ack', msg, 2);
      }, this.world.deliverAfterMs);
    }
    if (this.world.sendDelayMs > 0) await new Promise((r) => setTimeout(r, this.world.sendDelayMs));
    return snapshot;
  }

  private async hangIf(name: 'getChatById' | 'getChats' | 'sendSeen' | 'fetchMessages'): Promise<void> {
    if (this.world.hangCalls.has(name)) await new Promise<never>(() => {});
  }

  async getChats(): Promise<WaChat[]> {
    await this.hangIf('getChats');
    this.requireReady();
    const byChat = this.world.chats.get(this.numberId) ?? new Map<string, StoredMessage[]>();
    return [...byChat.keys()].map((id) => this.chatOf(id));
  }

  async getChatById(chatId: string): Promise<WaChat> {
    await this.hangIf('getChatById');
    this.requireReady();
    // WhatsApp Web finds a phone's chat under its hidden id when it keeps it there.
    const phone = '+' + chatId.split('@')[0];
    return this.chatOf(chatId.endsWith('@c.us') && this.world.lidChats.has(phone) ? this.world.lidOf(chatId) : chatId);
  }

  private chatOf(chatId: string): WaChat {
    const list = this.world.chat(this.numberId, chatId);
    return {
      id: { _serialized: chatId },
      isGroup: chatId.endsWith('@g.us'),
      timestamp: list.length ? list[list.length - 1]!.msg.timestamp : 0,
      fetchMessages: async (opts) => {
        await this.hangIf('fetchMessages');
        this.requireReady();
        const all = list.map((s) => s.msg).filter((m) => opts.fromMe === undefined || m.fromMe === opts.fromMe);
        return opts.limit ? all.slice(-opts.limit) : all;
      },
    };
  }

  async sendSeen(_chatId: string): Promise<boolean> {
    await this.hangIf('sendSeen');
    this.requireReady('sendSeen');
    return true;
  }

  /** WWebJS.enforceLidAndPnRetrieval: both ids of a user, from either one. */
  async getContactLidAndPhone(userIds: string[]): Promise<{ lid?: string; pn?: string }[]> {
    return userIds.map((id) => {
      if (id.endsWith('@lid')) return { lid: id, pn: this.world.lidLookupFails ? undefined : this.world.lids.get(id) };
      const lid = !this.world.lidLookupFails && this.world.lidChats.has('+' + id.split('@')[0]) ? this.world.lidOf(id) : undefined;
      return { lid, pn: id };
    });
  }
}

/** The adapter with its Client replaced by the stand-in; a real executable stands for Chromium (never run). */
export function standInEngine(world: StandInWorld, over: Partial<ConstructorParameters<typeof WwebjsEngine>[0]> = {}) {
  const dataDir = over.config?.DATA_DIR ?? tempDir('incrm-wwebjs-');
  const engine = new WwebjsEngine({
    config: { DATA_DIR: dataDir, WA_MAX_SESSIONS: 50, CHROMIUM_PATH: process.execPath, mediaMaxBytes: 1024 * 1024 },
    createClient: world.factory,
    browserMode: 'client',
    ...over,
    // Test timing; what a test passes is merged in, not swapped for the production defaults.
    timing: { backoffBaseMs: 20, backoffMaxMs: 200, ownEchoHoldMs: 30, startingTimeoutMs: 5_000, qrTimeoutMs: 60_000, healthIntervalMs: 60_000, closeTimeoutMs: 1000, ...over.timing },
  });
  const profileOf = (id: number) => path.join(dataDir, 'wwebjs', `session-number-${id}`);
  return { engine, dataDir, profileOf };
}

