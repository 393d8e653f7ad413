// Pure logic of the chat panel: no DOM, no Preact, so the unit tests run it in Node.
import type { MessageStatus, Msg, PortalSettings } from './types';

// ------------------------------------------------------------------ status ticks

export type TickGlyph = 'clock' | 'single' | 'double' | 'error' | 'none';
export interface Tick {
  glyph: TickGlyph;
  /** WhatsApp's blue: read (and played). */
  blue: boolean;
  /** The i18n key of the tick's tooltip / accessible label. */
  label: string;
}

/** What an outgoing message shows for its status, as WhatsApp does; incoming ones show nothing. */
export function tickFor(direction: 'in' | 'out', status: MessageStatus): Tick {
  if (direction === 'in') return { glyph: 'none', blue: false, label: '' };
  switch (status) {
    case 'queued':
      return { glyph: 'clock', blue: false, label: 'status.queued' };
    case 'sent':
      return { glyph: 'single', blue: false, label: 'status.sent' };
    case 'delivered':
      return { glyph: 'double', blue: false, label: 'status.delivered' };
    case 'read':
      return { glyph: 'double', blue: true, label: 'status.read' };
    case 'played':
      return { glyph: 'double', blue: true, label: 'status.played' };
    case 'failed':
      return { glyph: 'error', blue: false, label: 'status.failed' };
  }
}

const RANK: Record<MessageStatus, number> = { queued: 0, sent: 1, delivered: 2, read: 3, played: 4, failed: -1 };

/**
 * The status to show after an update arrives, by the server's rule (server/domain/status.ts):
 * forward only (a late `delivered` after `read` is ignored); `failed` only from queued or sent;
 * a retry puts a failed message back to `queued`.
 */
export function mergeStatus(current: MessageStatus, incoming: MessageStatus): MessageStatus {
  if (incoming === 'failed') return current === 'queued' || current === 'sent' || current === 'failed' ? 'failed' : current;
  if (current === 'failed') return incoming;
  return RANK[incoming] > RANK[current] ? incoming : current;
}

// ------------------------------------------------------------------ day separators

export type Row = { kind: 'day'; key: string; label: string } | { kind: 'msg'; key: string; msg: Msg };

/** The local calendar day of a timestamp, `YYYY-MM-DD`. */
export function dayKey(iso: string): string {
  const d = new Date(iso);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/**
 * Messages (oldest first) interleaved with a separator before each new local day. `dayLabel`
 * renders the separator ("Today", "Yesterday", a date) and is given `now` for that comparison.
 */
export function withDaySeparators(msgs: Msg[], dayLabel: (iso: string, now: Date) => string, now = new Date()): Row[] {
  const rows: Row[] = [];
  let last = '';
  for (const m of msgs) {
    const k = dayKey(m.createdAt);
    if (k !== last) {
      rows.push({ kind: 'day', key: `day-${k}`, label: dayLabel(m.createdAt, now) });
      last = k;
    }
    rows.push({ kind: 'msg', key: m.key ?? `m${m.id}`, msg: m });
  }
  return rows;
}

/** 'today' | 'yesterday' | null (an older day): which words a separator uses. */
export function relativeDay(iso: string, now: Date): 'today' | 'yesterday' | null {
  const k = dayKey(iso);
  if (k === dayKey(now.toISOString())) return 'today';
  const y = new Date(now);
  y.setDate(y.getDate() - 1);
  return k === dayKey(y.toISOString()) ? 'yesterday' : null;
}

// ------------------------------------------------------------------ merging message lists

/**
 * Inserts or updates messages by id and keeps the list ordered (oldest first). A message we
 * already hold keeps the most advanced status. A snapshot (a POST's answer, a stream `message`
 * event, a page) can be older than a status event already applied: its `queued` never undoes a
 * `failed` — only a retry's own answer (`retried`) moves a failed message back to queued.
 */
export function upsertMessages(list: Msg[], incoming: Msg[], retried = false): Msg[] {
  const byId = new Map<number, Msg>();
  for (const m of list) byId.set(m.id, m);
  for (const m of incoming) {
    const old = byId.get(m.id);
    if (!old) {
      byId.set(m.id, m);
      continue;
    }
    const stale = old.status === 'failed' && m.status === 'queued' && !retried;
    const status = stale ? 'failed' : mergeStatus(old.status, m.status);
    byId.set(m.id, { ...old, ...m, status, error: status === 'failed' ? (m.status === 'failed' ? m.error : old.error) : undefined, localUrl: old.localUrl ?? m.localUrl, key: old.key ?? m.key });
  }
  return [...byId.values()].sort((a, b) => order(a) - order(b));
}

/** Stored messages by id; optimistic ones (negative ids, not stored yet) after them in sending order. */
const order = (m: Msg) => (m.id > 0 ? m.id : 1e15 - m.id);

// ------------------------------------------------------------------ idempotent sending

export interface Draft {
  conversationId: number;
  text: string | null;
  file?: Blob & { name?: string };
  voice?: boolean;
}

export type SendResult = { ok: true; message: Msg } | { ok: false; status: number; code: string; message: string };

/**
 * The pending outgoing messages of the panel. Each gets its Idempotency-Key once, when the user
 * sends it; every attempt of that message (a network retry, the Retry button, a double click)
 * reuses the key, so the server stores and sends it once.
 */
export class Outbox {
  private readonly pending = new Map<string, { draft: Draft; inflight: Promise<SendResult> | null }>();
  private seq = 0;

  constructor(
    private readonly transport: (draft: Draft, key: string) => Promise<SendResult>,
    private readonly newKey: () => string = randomKey,
  ) {}

  /** Registers a new message and sends it; returns its key (at once) and the outcome. */
  send(draft: Draft): { key: string; done: Promise<SendResult> } {
    const key = this.newKey() || `k${++this.seq}`;
    this.pending.set(key, { draft, inflight: null });
    return { key, done: this.attempt(key) };
  }

  /** Sends a pending message again with the same key; a second call while one runs joins it. */
  attempt(key: string): Promise<SendResult> {
    const p = this.pending.get(key);
    if (!p) return Promise.resolve({ ok: false, status: 0, code: 'unknown', message: 'not pending' });
    if (p.inflight) return p.inflight;
    const run = this.transport(p.draft, key).then(
      (r) => {
        p.inflight = null;
        if (r.ok) this.pending.delete(key);
        return r;
      },
      (err: unknown): SendResult => {
        p.inflight = null;
        return { ok: false, status: 0, code: 'network', message: err instanceof Error ? err.message : String(err) };
      },
    );
    p.inflight = run;
    return run;
  }

  has(key: string): boolean {
    return this.pending.has(key);
  }

  drop(key: string): void {
    this.pending.delete(key);
  }
}

export function randomKey(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

// ------------------------------------------------------------------ formatting

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10240 ? 1 : 0)} KB`;
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** The message type a file is sent as (the server decides too; this is for the preview). */
export function kindOfFile(mime: string): 'image' | 'video' | 'audio' | 'document' {
  if (mime.startsWith('image/')) return 'image';
  if (mime.startsWith('video/')) return 'video';
  if (mime.startsWith('audio/')) return 'audio';
  return 'document';
}

/**
 * The recording format: Ogg/Opus when the browser records it (Firefox) — WhatsApp's own voice
 * format — else WebM/Opus (Chromium), which the server converts to Ogg/Opus.
 */
export function recorderMime(isSupported: (m: string) => boolean): string {
  for (const m of ['audio/ogg;codecs=opus', 'audio/webm;codecs=opus', 'audio/webm']) if (isSupported(m)) return m;
  return '';
}

/** A typed phone as E.164-ish (`+` and digits) or null when it cannot be one. */
export function normalisePhone(raw: string): string | null {
  const digits = raw.replace(/[^\d]/g, '');
  if (digits.length < 7 || digits.length > 15) return null;
  return `+${digits}`;
}

/** The token's expiry in epoch ms (hosts give ISO strings or numbers). */
export function expiryMs(v: string | number | null | undefined): number {
  if (typeof v === 'number') return v < 1e12 ? v * 1000 : v;
  if (typeof v === 'string') {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  return Date.now() + 5 * 60_000;
}

// ------------------------------------------------------------------ settings

export type SettingsPut = { [K in keyof PortalSettings]?: PortalSettings[K] | null };

/**
 * What Save sends: every option the form shows, an emptied one as `null` (the server unsets it:
 * any pipeline, the default stage and responsible user). No alert recipient ticked means the
 * default (the responsible user), not "nobody": the list goes as `null`, never `[]`. Options the
 * form does not show (no CRM; no user list to tick) are left out, so they keep their value.
 */
export function settingsBody(v: PortalSettings, crm: string, alertsShown: boolean): SettingsPut {
  const body: SettingsPut = { unknownNumber: v.unknownNumber, mirror: v.mirror };
  if (crm !== 'none') {
    body.pipelineId = v.pipelineId || null;
    body.stageId = v.stageId || null;
    body.responsibleUserId = v.responsibleUserId || null;
  }
  if (alertsShown) body.alertUserIds = v.alertUserIds?.length ? v.alertUserIds : null;
  for (const k of Object.keys(body) as (keyof SettingsPut)[]) if (body[k] === undefined) delete body[k];
  return body;
}
