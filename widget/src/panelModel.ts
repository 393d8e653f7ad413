// The chat panel's state and actions, apart from rendering: loading the card's conversations,
// paging history, live events, optimistic sending through the Outbox, alerts. The Panel
// component subscribes and renders `state`.
import { Api, ApiError, optional } from './api';
import type { Host } from './host';
import { pickLang, type Lang, type T } from './i18n';
import { mergeStatus, Outbox, upsertMessages, type Draft, type SendResult } from './logic';
import { beep, browserNotify } from './alerts';
import { Stream } from './stream';
import type { Conv, Licence, MessageStatus, Msg, WaNumber } from './types';

export interface Thread {
  items: Msg[];
  cursor: string | null;
  loading: boolean;
  loaded: boolean;
}

export interface PanelState {
  ready: boolean;
  error: string | null;
  phones: string[];
  convs: Conv[];
  numbers: WaNumber[];
  licence: Licence | null;
  activeId: number | null;
  threads: Record<number, Thread>;
  live: boolean;
  /** Why sending is refused (licence): the composer is disabled with this reason. */
  blocked: string | null;
  notice: string | null;
  /** The number chosen to write from when starting a conversation (null: the default one). */
  writeFrom: number | null;
}

const PAGE = 40;
let tempIds = 0;

export class PanelModel {
  state: PanelState = { ready: false, error: null, phones: [], convs: [], numbers: [], licence: null, activeId: null, threads: {}, live: true, blocked: null, notice: null, writeFrom: null };
  private listeners = new Set<() => void>();
  private stream: Stream | null = null;
  private readonly outbox: Outbox;
  private readonly keyToTemp = new Map<string, number>();
  private readonly localUrls = new Map<string, string>();
  private disposed = false;
  private readTimer: ReturnType<typeof setTimeout> | null = null;
  private everLive = false;
  /** Status updates for messages not shown yet (a status can overtake the POST's answer). */
  private readonly early = new Map<number, { status: MessageStatus; error?: string }>();
  /** The CRM's language: the server's licence texts are asked for in it. */
  readonly lang: Lang;
  private licenceSeq = 0;

  constructor(
    readonly api: Api,
    readonly host: Host,
    private readonly t: T,
  ) {
    this.outbox = new Outbox((draft, key) => this.transport(draft, key));
    this.lang = pickLang(host.lang);
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private set(patch: Partial<PanelState>): void {
    if (this.disposed) return;
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l();
  }

  private withEarly(m: Msg): Msg {
    const e = this.early.get(m.id);
    if (!e) return m;
    this.early.delete(m.id);
    const status = mergeStatus(m.status, e.status);
    return { ...m, status, error: status === 'failed' ? e.error : m.error };
  }

  private setThread(id: number, patch: Partial<Thread>): void {
    if (patch.items && this.early.size) patch = { ...patch, items: patch.items.map((m) => this.withEarly(m)) };
    const old = this.state.threads[id] ?? { items: [], cursor: null, loading: false, loaded: false };
    this.set({ threads: { ...this.state.threads, [id]: { ...old, ...patch } } });
  }

  // ---------------------------------------------------------------- loading

  async start(): Promise<void> {
    this.stream = new Stream(this.api, (n, d) => this.onEvent(n, d), (live) => this.onLive(live));
    this.stream.start();
    await this.load(true);
  }

  /** (Re)loads the card's conversations, numbers and licence; the first time opens the latest. */
  async load(first: boolean): Promise<void> {
    try {
      const e = this.host.entity;
      const q = e ? `?entityType=${e.type}&entityId=${encodeURIComponent(e.id)}` : '';
      const [list, numbers, licence] = await Promise.all([
        this.api.get<{ items: Conv[]; phones: string[] }>(`/conversations${q}`),
        this.api.get<{ items: WaNumber[] }>('/numbers'),
        this.fetchLicence(),
      ]);
      const convs = sortConvs(list.items);
      let activeId = this.state.activeId;
      if (activeId === null || !convs.some((c) => c.id === activeId)) activeId = convs[0]?.id ?? null;
      this.set({ phones: list.phones, convs, numbers: numbers.items, licence, activeId, error: null, threads: first ? {} : this.state.threads });
      if (activeId !== null) await this.loadThread(activeId, !first);
      this.set({ ready: true });
      if (activeId !== null) this.markReadSoon();
    } catch (err) {
      this.set({ ready: true, error: messageOf(err, this.t) });
    }
  }

  private async loadThread(id: number, reload: boolean): Promise<void> {
    const th = this.state.threads[id];
    if (th?.loaded && !reload) return;
    this.setThread(id, { loading: true });
    try {
      const page = await this.api.get<{ items: Msg[]; nextCursor: string | null }>(`/conversations/${id}/messages?limit=${PAGE}`);
      const pending = (this.state.threads[id]?.items ?? []).filter((m) => m.id < 0);
      const keep = reload ? (this.state.threads[id]?.items ?? []).filter((m) => m.id > 0 && m.id >= (page.items[0]?.id ?? Infinity)) : [];
      this.setThread(id, { items: upsertMessages([...keep, ...pending], page.items), cursor: page.nextCursor, loading: false, loaded: true });
    } catch (err) {
      this.setThread(id, { loading: false });
      this.set({ notice: messageOf(err, this.t) });
    }
  }

  /** Infinite scroll back: the page before the oldest shown. Returns whether one was added. */
  async loadOlder(): Promise<boolean> {
    const id = this.state.activeId;
    if (id === null) return false;
    const th = this.state.threads[id];
    if (!th || th.loading || !th.cursor) return false;
    this.setThread(id, { loading: true });
    try {
      const page = await this.api.get<{ items: Msg[]; nextCursor: string | null }>(`/conversations/${id}/messages?limit=${PAGE}&before=${th.cursor}`);
      this.setThread(id, { items: upsertMessages(this.state.threads[id]?.items ?? [], page.items), cursor: page.nextCursor, loading: false });
      return page.items.length > 0;
    } catch (err) {
      this.setThread(id, { loading: false });
      this.set({ notice: messageOf(err, this.t) });
      return false;
    }
  }

  // ---------------------------------------------------------------- choosing

  /** GET /licence in the CRM's language; null when the server has none or cannot say now. */
  private fetchLicence(): Promise<Licence | null> {
    return optional(this.api.get<Licence>(`/licence?lang=${this.lang}`)).catch(() => null);
  }

  /**
   * The licence again, in the CRM's language (a live `licence` event carries the server's
   * English texts; `fallback` is shown if the fetch fails). The newest call wins.
   */
  async refreshLicence(fallback: Licence | null = null): Promise<void> {
    const seq = ++this.licenceSeq;
    const lic = (await this.fetchLicence()) ?? fallback;
    if (seq !== this.licenceSeq || !lic) return;
    this.set({ licence: lic, blocked: lic.canSend ? null : this.state.blocked });
  }

  async select(id: number): Promise<void> {
    const c = this.state.convs.find((x) => x.id === id);
    this.set({ activeId: id, writeFrom: c?.numberId ?? this.state.writeFrom });
    await this.loadThread(id, false);
    this.markReadSoon();
  }

  /**
   * The number the panel writes from: the open conversation's, else the one chosen in the
   * header, else the first connected one. Null when the portal has no number.
   */
  writingNumberId(): number | null {
    const a = this.active();
    if (a) return a.numberId;
    const ns = this.state.numbers;
    if (this.state.writeFrom !== null && ns.some((n) => n.id === this.state.writeFrom)) return this.state.writeFrom;
    return (ns.find((n) => n.state === 'ready') ?? ns[0])?.id ?? null;
  }

  /** Chooses the number to write from; with a conversation open, switches to that number's one. */
  async chooseNumber(numberId: number): Promise<void> {
    this.set({ writeFrom: numberId });
    const c = this.active();
    if (!c?.phone || c.numberId === numberId) return;
    const existing = this.state.convs.find((x) => x.phone === c.phone && x.numberId === numberId);
    if (existing) return this.select(existing.id);
    return this.openPhone(c.phone, numberId);
  }

  /**
   * Opens (starting if needed) the conversation with a phone, from `numberId`, else the number
   * chosen in the header when the portal has several, else the server's default.
   */
  async openPhone(phone: string, numberId?: number): Promise<void> {
    if (numberId === undefined && this.state.numbers.length > 1) numberId = this.state.writeFrom ?? this.writingNumberId() ?? undefined;
    try {
      const conv = await this.api.post<Conv>('/conversations', numberId ? { phone, numberId } : { phone });
      const convs = this.state.convs.some((c) => c.id === conv.id) ? this.state.convs.map((c) => (c.id === conv.id ? conv : c)) : [conv, ...this.state.convs];
      const phones = conv.phone && !this.state.phones.includes(conv.phone) ? [...this.state.phones, conv.phone] : this.state.phones;
      this.set({ convs, phones, notice: null });
      await this.select(conv.id);
    } catch (err) {
      this.set({ notice: messageOf(err, this.t) });
    }
  }

  active(): Conv | null {
    return this.state.convs.find((c) => c.id === this.state.activeId) ?? null;
  }

  private markReadSoon(): void {
    if (this.readTimer) clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => {
      const c = this.active();
      if (!c || c.unreadCount === 0 || (typeof document !== 'undefined' && document.visibilityState === 'hidden')) return;
      this.patchConv(c.id, { unreadCount: 0 });
      this.api.post(`/conversations/${c.id}/read`).catch(() => {});
    }, 300);
  }

  private patchConv(id: number, patch: Partial<Conv>): void {
    this.set({ convs: sortConvs(this.state.convs.map((c) => (c.id === id ? { ...c, ...patch } : c))) });
  }

  // ---------------------------------------------------------------- sending

  /**
   * Sends to `conversationId`: the conversation the text was typed in, the file attached in, the
   * voice note recorded in — not whichever is open when it is sent.
   */
  sendText(conversationId: number, text: string): void {
    const body = text.trim();
    if (!body) return;
    this.enqueue({ conversationId, text: body }, 'text');
  }

  sendFile(conversationId: number, file: File, caption: string | null, voice = false): void {
    const id = conversationId;
    const type = voice ? 'voice' : file.type.startsWith('image/') ? 'image' : file.type.startsWith('video/') ? 'video' : file.type.startsWith('audio/') ? 'audio' : 'document';
    this.enqueue({ conversationId: id, text: caption, file, voice }, type);
  }

  private enqueue(draft: Draft, type: string): void {
    // A panel that is gone sends nothing (a recording stopped by the unmount, a late callback).
    if (this.disposed) return;
    const temp = -++tempIds;
    const { key, done } = this.outbox.send(draft);
    this.keyToTemp.set(key, temp);
    let localUrl: string | undefined;
    if (draft.file && typeof URL !== 'undefined' && URL.createObjectURL) {
      localUrl = URL.createObjectURL(draft.file);
      this.localUrls.set(key, localUrl);
    }
    const optimistic: Msg = {
      id: temp,
      key,
      conversationId: draft.conversationId,
      direction: 'out',
      type,
      text: draft.text,
      status: 'queued',
      createdAt: new Date().toISOString(),
      media: draft.file ? { url: '', mimetype: draft.file.type, size: draft.file.size, filename: (draft.file as File).name ?? null } : undefined,
      ptt: draft.voice || undefined,
      localUrl,
    };
    const th = this.state.threads[draft.conversationId];
    this.setThread(draft.conversationId, { items: upsertMessages(th?.items ?? [], [optimistic]) });
    void done.then((r) => this.settle(key, draft.conversationId, r));
  }

  /** Retry: an optimistic message is posted again with its key; a stored one through /retry. */
  async retry(m: Msg): Promise<void> {
    if (m.key && m.id < 0) {
      this.replace(m.conversationId, m.id, { status: 'queued', error: undefined });
      const r = await this.outbox.attempt(m.key);
      this.settle(m.key, m.conversationId, r);
      return;
    }
    try {
      const fresh = await this.api.post<Msg>(`/messages/${m.id}/retry`);
      const th = this.state.threads[fresh.conversationId];
      if (th) this.setThread(fresh.conversationId, { items: upsertMessages(th.items, [fresh], true) });
    } catch (err) {
      this.refused(err);
      this.set({ notice: messageOf(err, this.t) });
    }
  }

  private async transport(d: Draft, key: string): Promise<SendResult> {
    try {
      let msg: Msg;
      if (d.file) {
        const fd = new FormData();
        fd.append('file', d.file, (d.file as File).name || (d.voice ? voiceName(d.file.type) : 'file'));
        if (d.text) fd.append('text', d.text);
        if (d.voice) fd.append('voice', 'true');
        msg = await this.api.request<Msg>('POST', `/conversations/${d.conversationId}/messages`, fd, { 'Idempotency-Key': key });
      } else {
        msg = await this.api.post<Msg>(`/conversations/${d.conversationId}/messages`, { text: d.text }, { 'Idempotency-Key': key });
      }
      return { ok: true, message: msg };
    } catch (err) {
      if (err instanceof ApiError) {
        // A network error or a 5xx: the server may or may not have it; one more try with the same key is safe.
        if (err.status === 0 || err.status >= 500) {
          await new Promise((r) => setTimeout(r, 800));
          return this.transportOnce(d, key, err);
        }
        return { ok: false, status: err.status, code: err.code, message: err.message };
      }
      throw err;
    }
  }

  private async transportOnce(d: Draft, key: string, first: ApiError): Promise<SendResult> {
    try {
      const body = d.file ? formOf(d) : { text: d.text };
      const msg = await this.api.request<Msg>('POST', `/conversations/${d.conversationId}/messages`, body, { 'Idempotency-Key': key });
      return { ok: true, message: msg };
    } catch (err) {
      const e = err instanceof ApiError ? err : first;
      return { ok: false, status: e.status, code: e.code, message: e.message };
    }
  }

  private settle(key: string, convId: number, r: SendResult): void {
    const temp = this.keyToTemp.get(key);
    if (r.ok) {
      this.keyToTemp.delete(key);
      const localUrl = this.localUrls.get(key);
      const items = (this.state.threads[convId]?.items ?? []).filter((m) => m.id !== temp);
      this.setThread(convId, { items: upsertMessages(items, [{ ...r.message, localUrl, key }]) });
      this.patchConv(convId, { lastMessageAt: r.message.createdAt, lastMessage: r.message });
      return;
    }
    if (temp === undefined) return;
    this.refused(new ApiError(r.status, r.code, r.message));
    this.replace(convId, temp, { status: 'failed', error: r.code === 'network' || r.status === 0 ? this.t('error.network') : r.message });
  }

  /**
   * A licence refusal disables the composer with the reason, in the widget's words (the server's
   * refusal is in English), and fetches the licence again for its texts in the CRM's language.
   */
  private refused(err: unknown): void {
    if (!(err instanceof ApiError) || !(err.status === 402 || (err.status === 403 && err.code.startsWith('licence')))) return;
    const own = err.code === 'licence_expired' ? this.t('banner.licenceExpired') : err.code === 'licence_suspended' ? this.t('banner.licenceSuspended') : err.message;
    this.set({ blocked: own });
    void this.refreshLicence();
  }

  private replace(convId: number, id: number, patch: Partial<Msg>): void {
    const th = this.state.threads[convId];
    if (!th) return;
    this.setThread(convId, { items: th.items.map((m) => (m.id === id ? { ...m, ...patch } : m)) });
  }

  private upsert(m: Msg): void {
    const th = this.state.threads[m.conversationId];
    if (!th) return;
    let items = th.items;
    if (m.direction === 'out' && !items.some((x) => x.id === m.id)) {
      // Our own message may come back on the stream before its POST answers: adopt the
      // optimistic copy instead of showing it twice.
      const twin = items.find((x) => x.id < 0 && x.status !== 'failed' && x.type === m.type && (x.text ?? '') === (m.text ?? ''));
      if (twin) {
        items = items.filter((x) => x !== twin);
        m = { ...m, localUrl: twin.localUrl, key: twin.key };
        if (twin.key) this.keyToTemp.delete(twin.key);
      }
    }
    this.setThread(m.conversationId, { items: upsertMessages(items, [m]) });
  }

  // ---------------------------------------------------------------- live events

  private onLive(live: boolean): void {
    if (live && !this.everLive) this.everLive = true;
    else if (live && !this.state.live) void this.load(false); // catch up after a gap the replay could not cover
    this.set({ live });
  }

  onEvent(name: string, data: unknown): void {
    switch (name) {
      case 'message': {
        const m = data as Msg;
        const conv = this.state.convs.find((c) => c.id === m.conversationId);
        if (!conv) {
          void this.adopt(m);
          return;
        }
        this.upsert(m);
        this.patchConv(conv.id, { lastMessageAt: m.createdAt, lastMessage: m });
        if (m.direction === 'in') this.incoming(conv, m);
        return;
      }
      case 'status': {
        const s = data as { messageId: number; conversationId: number; status: MessageStatus; error?: string };
        const th = this.state.threads[s.conversationId];
        if (!th) return;
        if (!th.items.some((m) => m.id === s.messageId)) {
          this.early.set(s.messageId, { status: s.status, error: s.error });
          if (this.early.size > 200) this.early.delete(this.early.keys().next().value!);
          return;
        }
        this.setThread(s.conversationId, {
          items: th.items.map((m) => (m.id === s.messageId ? { ...m, status: mergeStatus(m.status, s.status), error: s.status === 'failed' ? s.error : m.status === 'failed' ? undefined : m.error } : m)),
        });
        return;
      }
      case 'conversation': {
        const c = data as { id: number; unreadCount: number; lastMessageAt: string | null };
        if (this.state.convs.some((x) => x.id === c.id)) {
          this.patchConv(c.id, { unreadCount: c.unreadCount, lastMessageAt: c.lastMessageAt });
          if (c.id === this.state.activeId && c.unreadCount > 0) this.markReadSoon();
        }
        return;
      }
      case 'number': {
        const n = data as WaNumber;
        const has = this.state.numbers.some((x) => x.id === n.id);
        this.set({ numbers: has ? this.state.numbers.map((x) => (x.id === n.id ? n : x)) : [...this.state.numbers, n] });
        return;
      }
      case 'licence':
        // The event's texts are the server's English: ask again in the CRM's language.
        void this.refreshLicence(data as Licence);
        return;
      case 'resync':
        void this.load(false);
        return;
    }
  }

  /** A message in a conversation we do not list: list it if it is one of the card's phones. */
  private async adopt(m: Msg): Promise<void> {
    try {
      const conv = await this.api.get<Conv>(`/conversations/${m.conversationId}`);
      if (!conv.phone || !this.state.phones.includes(conv.phone) || this.state.convs.some((c) => c.id === conv.id)) return;
      this.set({ convs: sortConvs([...this.state.convs, conv]) });
      if (this.state.activeId === null) await this.select(conv.id);
      if (m.direction === 'in') this.incoming(conv, m);
    } catch {
      /* not ours to show */
    }
  }

  private incoming(conv: Conv, m: Msg): void {
    const seen = conv.id === this.state.activeId && typeof document !== 'undefined' && document.visibilityState === 'visible' && document.hasFocus();
    if (conv.id === this.state.activeId) this.markReadSoon();
    if (seen) return;
    const who = conv.name || conv.phone || '';
    const text = m.text || this.t(typeLabel(m.type));
    beep();
    browserNotify(`${this.t('alert.newMessage')} · ${who}`, text);
    this.host.notify?.(this.t('alert.newMessage'), `${this.t('alert.from', { name: who })}: ${text}`, null);
  }

  dismissNotice(): void {
    this.set({ notice: null });
  }

  dispose(): void {
    this.disposed = true;
    this.stream?.close();
    if (this.readTimer) clearTimeout(this.readTimer);
    for (const u of this.localUrls.values()) URL.revokeObjectURL?.(u);
  }
}

function formOf(d: Draft): FormData {
  const fd = new FormData();
  fd.append('file', d.file!, (d.file as File).name || (d.voice ? voiceName(d.file!.type) : 'file'));
  if (d.text) fd.append('text', d.text);
  if (d.voice) fd.append('voice', 'true');
  return fd;
}

const voiceName = (mime: string) => (mime.includes('ogg') ? 'voice.ogg' : 'voice.webm');

export function typeLabel(type: string): 'msg.image' | 'msg.video' | 'msg.audio' | 'msg.voice' | 'msg.document' | 'msg.other' {
  switch (type) {
    case 'image':
    case 'sticker':
      return 'msg.image';
    case 'video':
      return 'msg.video';
    case 'audio':
      return 'msg.audio';
    case 'voice':
      return 'msg.voice';
    case 'document':
      return 'msg.document';
    default:
      return 'msg.other';
  }
}

function sortConvs(list: Conv[]): Conv[] {
  return [...list].sort((a, b) => (b.lastMessageAt ?? '').localeCompare(a.lastMessageAt ?? '') || b.id - a.id);
}

export function messageOf(err: unknown, t: T): string {
  if (err instanceof ApiError && err.status === 0) return t('error.network');
  return t('error.generic', { reason: err instanceof Error ? err.message : String(err) });
}
