// The ports: what the domain needs from the outside world. Adapters implement them;
// the composition root (main.ts) plugs them together.
import type {
  Contact,
  Conversation,
  CrmKind,
  Direction,
  HistoryMessage,
  LiveEvent,
  MediaRef,
  Message,
  MessageStatus,
  MessageType,
  NumberState,
  Portal,
  PortalSettings,
  WaNumber,
} from './types';
import type { LicenceRepo } from './licencePorts';

// ---------------------------------------------------------------- WhatsApp engine

export interface InboundMedia {
  data: Buffer;
  mimetype: string;
  filename?: string | null;
}

/** One message as WhatsApp reports it, inbound or sent from the phone itself (`fromMe`). */
export interface Inbound {
  waMessageId: string;
  /** WhatsApp chat id of the other side: `15550000002@c.us` or `…@lid`. */
  chatId: string;
  /** E.164 phone of the other side when WhatsApp shows it. */
  phone: string | null;
  name: string | null;
  type: MessageType;
  text: string | null;
  media?: InboundMedia | null;
  /** WhatsApp said the message had media but it can no longer be downloaded. */
  mediaUnavailable?: boolean;
  ptt?: boolean;
  /** Milliseconds since the epoch, as WhatsApp stamped it. */
  timestamp: number;
  /** Written on the phone itself (or another linked device): recorded as outbound "sent from phone". */
  fromMe?: boolean;
  quotedWaMessageId?: string | null;
}

export interface Outbound {
  /** WhatsApp chat id to send to. */
  chatId: string;
  type: MessageType;
  text: string | null;
  media?: InboundMedia | null;
  ptt?: boolean;
  quotedWaMessageId?: string | null;
}

/** What an engine remembers it sent recently; used to reconcile a send cut off by a crash. */
export interface SentRecord {
  waMessageId: string;
  chatId: string;
  type: MessageType;
  text: string | null;
  mediaSha256?: string | null;
  timestamp: number;
}

export type AckStatus = Exclude<MessageStatus, 'queued'>;

export interface SessionListener {
  onState(state: NumberState, detail?: { reason?: string; qr?: string; phone?: string }): void;
  onInbound(msg: Inbound): Promise<void>;
  onAck(waMessageId: string, status: AckStatus, error?: string): Promise<void>;
  onRevoked?(waMessageId: string): Promise<void>;
  /** WhatsApp revealed the phone behind a hidden (`@lid`) chat id. */
  onChatIdentified?(hiddenChatId: string, phone: string): Promise<void>;
}

export interface WhatsAppSession {
  send(msg: Outbound): Promise<{ waMessageId: string }>;
  /** Messages (inbound and sent from the phone) that arrived since `since`: catch-up after a gap. */
  fetchSince(since: Date): AsyncIterable<Inbound>;
  /** Outbound messages this login sent to `chatId` since `since` (for reconciling an interrupted send). */
  recentSent(chatId: string, since: Date): Promise<SentRecord[]>;
  /** Tell the client's phone its messages were seen. Optional for engines that cannot. */
  markSeen?(chatId: string): Promise<void>;
  close(): Promise<void>;
  logout(): Promise<void>;
}

/** What an engine reports for /metrics (engines that run browsers). */
export interface EngineStats {
  /** One entry per running browser; rssBytes sums RSS over its process tree, pssBytes PSS. */
  browsers: { numberId: number; pid: number | null; rssBytes: number; pssBytes?: number }[];
  /** Sessions lost and reconnected since start. */
  reconnects: number;
}

export interface WhatsAppEngine {
  readonly name: string;
  open(numberId: number, listener: SessionListener): Promise<WhatsAppSession>;
  /** Why the engine cannot run at all (e.g. no browser), for /healthz; null when fine. */
  problem?(): string | null;
  stats?(): EngineStats;
  shutdown?(): Promise<void>;
}

/** A send failure the engine knows to be final (no retry): the message goes to `failed` with the reason. */
export class PermanentSendError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'PermanentSendError';
  }
}

// ---------------------------------------------------------------- CRM

export interface EntityRef {
  type: string;
  id: string;
}

export interface CrmMessageRecord {
  /** Our message id: lets an adapter write each message once even when a job is retried. */
  messageId?: number;
  direction: Direction;
  type: MessageType;
  text: string | null;
  phone: string | null;
  contactName: string | null;
  numberPhone: string | null;
  mediaUrl: string | null;
  at: number;
  status: MessageStatus;
  fromPhone: boolean;
}

export interface CrmAdapter {
  phonesOf(portal: Portal, entity: EntityRef): Promise<string[]>;
  findOrCreateByPhone(portal: Portal, phone: string, name: string | null): Promise<EntityRef | null>;
  record(portal: Portal, entity: EntityRef | null, message: CrmMessageRecord): Promise<void>;
  /**
   * Notifies CRM users. `userIds` non-empty: those users. Empty: with `entity` the record's
   * responsible user (then the settings' responsible user, then the admins); with no `entity`
   * argument at all the portal's admins (a number that dropped, the licence). `entity`: the record
   * the alert is about, when known (lets the CRM link to the card).
   */
  alert(portal: Portal, userIds: string[], text: string, link: string | null, entity?: EntityRef | null): Promise<void>;
}

export type CrmRegistry = (kind: CrmKind) => CrmAdapter;

// ---------------------------------------------------------------- Persistence

export interface NewMessage {
  portalId: number;
  conversationId: number;
  numberId: number;
  direction: Direction;
  type: MessageType;
  text: string | null;
  status: MessageStatus;
  waMessageId?: string | null;
  idempotencyKey?: string | null;
  mediaId?: number | null;
  mediaFilename?: string | null;
  ptt?: boolean;
  quotedMessageId?: number | null;
  fromPhone?: boolean;
  error?: string | null;
  createdAt: number;
}

export interface PortalRepo {
  create(p: { crm: CrmKind; name: string; externalId?: string | null; settings?: PortalSettings }): Promise<Portal>;
  get(id: number): Promise<Portal | null>;
  list(): Promise<Portal[]>;
  setSettings(id: number, settings: PortalSettings): Promise<Portal | null>;
}

export interface NumberRepo {
  create(portalId: number): Promise<WaNumber>;
  get(portalId: number, id: number): Promise<WaNumber | null>;
  getAny(id: number): Promise<WaNumber | null>;
  list(portalId: number): Promise<WaNumber[]>;
  /** Numbers whose login should be restored at start (everything not logged out). */
  listRestorable(): Promise<WaNumber[]>;
  setState(id: number, state: NumberState, detail: string | null, qr: string | null): Promise<void>;
  setPhone(id: number, phone: string): Promise<void>;
  markReady(id: number, at: number): Promise<void>;
  countByState(): Promise<Record<string, number>>;
}

export interface ContactRepo {
  upsert(portalId: number, c: { waId: string; phone: string | null; name: string | null }): Promise<Contact>;
  get(portalId: number, id: number): Promise<Contact | null>;
  findByPhone(portalId: number, phone: string): Promise<Contact | null>;
  setCrmEntity(id: number, ref: { type: string; id: string }): Promise<void>;
  /** Hidden id revealed: attach the phone, merging into an existing contact with that phone if there is one. */
  identify(portalId: number, hiddenWaId: string, phone: string): Promise<Contact | null>;
}

export interface ConversationView extends Conversation {
  phone: string | null;
  waId: string;
  name: string | null;
  numberPhone: string | null;
  lastMessage: Message | null;
}

export interface ConversationRepo {
  upsert(portalId: number, numberId: number, contactId: number): Promise<Conversation>;
  get(portalId: number, id: number): Promise<Conversation | null>;
  view(portalId: number, id: number): Promise<ConversationView | null>;
  listByPhones(portalId: number, phones: string[]): Promise<ConversationView[]>;
  touch(id: number, at: number, unreadDelta: number): Promise<Conversation>;
  markRead(portalId: number, id: number): Promise<Conversation | null>;
}

export interface MessageRepo {
  /** Inserts unless (numberId, waMessageId) is already stored; null when it was. */
  insertInboundOnce(m: NewMessage): Promise<Message | null>;
  /** Inserts unless (portalId, idempotencyKey) exists; returns the stored one and whether it was new. */
  insertOutbound(m: NewMessage): Promise<{ message: Message; created: boolean }>;
  findByIdempotencyKey(portalId: number, key: string): Promise<Message | null>;
  get(portalId: number, id: number): Promise<Message | null>;
  getAny(id: number): Promise<Message | null>;
  /** A message with its contact and the phone of the number it went through, in one query. */
  withParties(id: number): Promise<{ message: Message; contact: Contact; numberPhone: string | null } | null>;
  findByWaId(numberId: number, waMessageId: string): Promise<Message | null>;
  /** Newest first, only what a history page shows (see HistoryMessage). */
  page(portalId: number, conversationId: number, beforeId: number | null, limit: number): Promise<HistoryMessage[]>;
  markSendStarted(id: number, at: number): Promise<void>;
  /** Forgets a send that WhatsApp answered with a failure (its id and start), so a retry sends anew. */
  forgetFailedSend(id: number): Promise<void>;
  /** Links the engine's id; false if another message already owns it (then nothing changes). */
  setWaMessageId(id: number, waMessageId: string): Promise<boolean>;
  /** Moves the status if `allowedFrom` contains the current one; returns the updated message or null. */
  setStatus(id: number, status: MessageStatus, error: string | null, allowedFrom: MessageStatus[]): Promise<Message | null>;
  /** The ack path in one statement: `known` says whether the message exists at all. */
  setStatusByWaId(
    numberId: number,
    waMessageId: string,
    status: MessageStatus,
    error: string | null,
    allowedFrom: MessageStatus[],
  ): Promise<{ known: boolean; message: Message | null }>;
  markRevoked(numberId: number, waMessageId: string): Promise<Message | null>;
  /**
   * A message WhatsApp reports as sent by us that matches an outbound message whose send started
   * but never learned its id (a crash cut it off): link it there instead of storing a copy.
   * Returns the adopted message's id, or null.
   */
  adoptPendingSend(conversationId: number, type: MessageType, text: string | null, waMessageId: string): Promise<number | null>;
  /** Outbound messages of a conversation linked to these engine ids (reconcile needs to skip them). */
  waIdsTaken(numberId: number, waMessageIds: string[]): Promise<Set<string>>;
  countByDirection(): Promise<Record<string, number>>;
}

export interface MediaRepo {
  upsert(m: { sha256: string; mimetype: string; size: number }): Promise<MediaRef>;
  getBySha(sha256: string): Promise<MediaRef | null>;
  get(id: number): Promise<MediaRef | null>;
}

export interface JobSpec {
  kind: string;
  portalId: number | null;
  payload: Record<string, unknown>;
  runAt?: number;
  maxAttempts?: number;
  /** At most one live job with this key (e.g. one send job per message). */
  dedupeKey?: string | null;
  /** Lower runs first among due jobs; default 10. Sends use 0. */
  priority?: number;
}

/** Which kinds a runner takes: a lane of its own keeps sends from waiting behind slow CRM calls. */
export interface JobLane {
  only?: string[];
  except?: string[];
}

export interface Job {
  id: number;
  kind: string;
  portalId: number | null;
  payload: Record<string, unknown>;
  attempts: number;
  maxAttempts: number;
  lockedBy: string | null;
}

export interface JobRepo {
  /** Enqueues one job or several in one statement. */
  enqueue(spec: JobSpec | JobSpec[]): Promise<void>;
  /** Leases up to `limit` due jobs (pending, or running with an expired lease) for `leaseMs`. */
  claim(worker: string, limit: number, now: number, leaseMs: number, lane?: JobLane): Promise<Job[]>;
  complete(id: number, worker: string): Promise<void>;
  /** Renews the lease of jobs still in hand, so a long job is not taken over while it runs. */
  extendLease(ids: number[], worker: string, until: number): Promise<void>;
  retryLater(id: number, worker: string, runAt: number, error: string): Promise<void>;
  bury(id: number, worker: string, error: string): Promise<void>;
  /** Back to pending until `runAt`, giving back the attempt the claim counted. */
  defer(id: number, worker: string, runAt: number, note: string): Promise<void>;
  /**
   * Enqueues the send job of queued outbound messages that have none (all of them, or one): the
   * repair for a message stored while its job's insert failed or was cut off by a crash.
   */
  enqueueMissingSends(kind: string, messageId?: number): Promise<number>;
  /** Makes a portal's pending jobs of these kinds due now (deferred work whose reason is gone). */
  release(portalId: number, kinds: string[], now: number): Promise<number>;
  nextRunAt(lane?: JobLane): Promise<number | null>;
  countByState(): Promise<Record<string, number>>;
}

export interface AuditEntry {
  id: number;
  portalId: number | null;
  actor: string;
  action: string;
  details: Record<string, unknown>;
  at: number;
}

/** Append-only: there is deliberately no update or delete. */
export interface AuditRepo {
  append(e: { portalId: number | null; actor: string; action: string; details?: Record<string, unknown> }): Promise<void>;
  /** Entries in order, after `afterId`, optionally of one portal. */
  list(q?: { portalId?: number | null; afterId?: number; limit?: number }): Promise<AuditEntry[]>;
}

export interface Repositories {
  portals: PortalRepo;
  numbers: NumberRepo;
  contacts: ContactRepo;
  conversations: ConversationRepo;
  messages: MessageRepo;
  media: MediaRepo;
  jobs: JobRepo;
  audit: AuditRepo;
  licences: LicenceRepo;
}

export interface Database {
  repos: Repositories;
  transaction<T>(fn: (repos: Repositories) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- Media, live events, clock

export interface MediaStore {
  /** Stores bytes once by content hash; enforces the size cap. */
  put(data: Buffer, mimetype: string): Promise<MediaRef>;
  read(sha256: string): Promise<Buffer>;
  /** Signed, expiring URL path (absolute when PUBLIC_URL is known). */
  url(media: MediaRef, filename?: string | null): string;
}

export interface LivePublisher {
  publish(portalId: number, event: LiveEvent): void;
}

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
