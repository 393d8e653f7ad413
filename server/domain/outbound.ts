import type { DomainContext } from './context';
import { AppError, badRequest, conflict, notFound } from './errors';
import { JOB_CRM_MIRROR } from './inbound';
import { PermanentJobError, type JobHandler } from './jobs';
import { KeyedMutex } from './mutex';
import { chatIdOf } from './phone';
import { PermanentSendError, type AckStatus, type Job, type WhatsAppSession } from './ports';
import { allowedFrom, rank } from './status';
import type { Message, MessageStatus, MessageType, Principal } from './types';

export const JOB_SEND = 'wa.send';

export interface OutboundRequest {
  text: string | null;
  file?: { data: Buffer; mimetype: string; filename: string | null } | null;
  voice?: boolean;
  quotedMessageId?: number | null;
}

/** Where the send job finds a live session; the session manager implements it. */
export interface SessionLookup {
  readySession(numberId: number): WhatsAppSession | null;
}

/** Hook for the licence rules: throws (402/403) when the portal may not send now. */
export type SendGuard = (portalId: number) => Promise<void>;

/** Statuses of a message WhatsApp has taken (not queued, not failed). */
function isDelivering(s: MessageStatus): boolean {
  return s === 'sent' || s === 'delivered' || s === 'read' || s === 'played';
}

function typeOf(mimetype: string, voice: boolean): MessageType {
  if (voice) return 'voice';
  if (mimetype.startsWith('image/')) return mimetype === 'image/webp' ? 'sticker' : 'image';
  if (mimetype.startsWith('video/')) return 'video';
  if (mimetype.startsWith('audio/')) return 'audio';
  return 'document';
}

// WhatsApp plays a voice note only from Ogg/Opus; anything else would arrive as a file.
const VOICE_MIMES = ['audio/ogg', 'audio/ogg; codecs=opus', 'audio/opus'];

const ACK_TTL_MS = 120_000;

/** How an engine message id is known in memory (ids are unique per number, not globally). */
const ackKey = (numberId: number, waMessageId: string) => `${numberId}:${waMessageId}`;

type ParkedAck = { status: AckStatus; error?: string; at: number };

/**
 * The parked acks worth applying: statuses only move forward, so of `sent`, `delivered`, `read`
 * the furthest says it all (one update instead of three). A failure is kept, in its place.
 */
function furthestAcks(acks: ParkedAck[]): ParkedAck[] {
  let best: ParkedAck | null = null;
  const out: ParkedAck[] = [];
  for (const a of acks) {
    if (a.status === 'failed') out.push(a);
    else if (!best || rank(a.status) > rank(best.status)) best = a;
  }
  return best ? [best, ...out] : out;
}

/**
 * The outbound path: a message is stored `queued` (with the caller's idempotency key) before the
 * API answers, then a durable job sends it. Acks move the status forward only.
 */
export class OutboundService {
  private readonly chatLock = new KeyedMutex();
  /** Acks that came before the send call returned the message's id. */
  private readonly earlyAcks = new Map<string, ParkedAck[]>();
  /** `numberId:waMessageId` of sends that WhatsApp took but whose id is not committed yet. */
  private readonly linking = new Set<string>();

  constructor(
    private readonly ctx: DomainContext,
    private readonly sessions: SessionLookup,
    private readonly guard: SendGuard = async () => {},
  ) {}

  async accept(p: Principal, conversationId: number, req: OutboundRequest, idempotencyKey: string): Promise<{ message: Message; created: boolean }> {
    const { db, clock } = this.ctx;
    const conversation = await db.repos.conversations.get(p.portalId, conversationId);
    if (!conversation) throw notFound('conversation');
    if (!req.file && !(req.text && req.text.trim())) throw badRequest('text: a message needs text or a file', { field: 'text' });
    if (req.text && req.text.length > 65536) throw badRequest('text: longer than 65536 characters', { field: 'text' });
    if (req.voice) {
      if (!req.file) throw badRequest('file: a voice note needs an audio file', { field: 'file' });
      const base = req.file.mimetype.split(';')[0]!.trim().toLowerCase();
      if (!VOICE_MIMES.includes(base) && !VOICE_MIMES.includes(req.file.mimetype.toLowerCase())) {
        throw badRequest('file: a voice note must be Ogg/Opus (audio/ogg)', { field: 'file' });
      }
    }
    if (req.quotedMessageId) {
      const quoted = await db.repos.messages.get(p.portalId, req.quotedMessageId);
      if (!quoted || quoted.conversationId !== conversationId) throw badRequest('quotedMessageId: no such message in this conversation', { field: 'quotedMessageId' });
    }
    try {
      await this.guard(p.portalId);
    } catch (err) {
      // A client repeating a request that was accepted before access ended gets its message back,
      // not a refusal of something that already happened.
      const earlier = await db.repos.messages.findByIdempotencyKey(p.portalId, idempotencyKey);
      if (earlier && earlier.conversationId === conversationId) return { message: earlier, created: false };
      throw err;
    }
    const mediaRef = req.file ? await this.ctx.media.put(req.file.data, req.file.mimetype) : null;
    // No transaction on this path: on SQLite a transaction has the one connection to itself for
    // as many event-loop turns as it has statements, and at 100 messages/s the two per message
    // (here and in linkSent) were what made sends fall behind (`npm run bench`). Each statement is
    // atomic on its own, and the one gap is repaired: a message stored whose job insert failed or
    // was cut off gets its job from the client's retry (same key, below) or from the start-up
    // sweep (`recoverOrphanedSends`).
    const r = db.repos;
    const result = await r.messages.insertOutbound({
      portalId: p.portalId,
      conversationId,
      numberId: conversation.numberId,
      direction: 'out',
      type: req.file ? typeOf(req.file.mimetype, !!req.voice) : 'text',
      text: req.text && req.text.length ? req.text : null,
      status: 'queued',
      idempotencyKey,
      mediaId: mediaRef?.id ?? null,
      mediaFilename: req.file?.filename ?? null,
      ptt: !!req.voice,
      quotedMessageId: req.quotedMessageId ?? null,
      createdAt: clock.now(),
    });
    if (!result.created) {
      const m = result.message;
      // Same key, different request: the client has a bug; sending either would be a guess.
      if (m.conversationId !== conversationId || (m.text ?? null) !== (req.text && req.text.length ? req.text : null) || (m.media?.sha256 ?? null) !== (mediaRef?.sha256 ?? null)) {
        throw new AppError(422, 'idempotency_key_reused', 'Idempotency-Key was already used for a different message');
      }
      // The first attempt may have stored the message and failed before its job: make sure.
      if (m.status === 'queued' && (await r.jobs.enqueueMissingSends(JOB_SEND, m.id)) > 0) this.ctx.wakeJobs(JOB_SEND);
      return result;
    }
    await r.jobs.enqueue({ kind: JOB_SEND, portalId: p.portalId, payload: { messageId: result.message.id }, dedupeKey: `send:${result.message.id}`, priority: 0 });
    await r.conversations.touch(conversationId, result.message.createdAt, 0);
    this.ctx.metrics.message('out', 'stored');
    this.ctx.live.publish(p.portalId, { type: 'message', conversationId, message: result.message });
    this.ctx.wakeJobs(JOB_SEND);
    return result;
  }

  async retry(p: Principal, messageId: number): Promise<Message> {
    const msg = await this.ctx.db.repos.messages.get(p.portalId, messageId);
    if (!msg || msg.direction !== 'out') throw notFound('message');
    if (msg.status !== 'failed') throw conflict(`message is ${msg.status}, only a failed message can be retried`);
    await this.guard(p.portalId);
    const updated = await this.ctx.db.transaction(async (r) => {
      // WhatsApp took the message and then reported it failed: that copy is dead, so the retry is a
      // new send (with the old id kept, the send job would think catch-up had found it sent).
      if (msg.waMessageId !== null) await r.messages.forgetFailedSend(messageId);
      const m = await r.messages.setStatus(messageId, 'queued', null, allowedFrom('queued'));
      // A key of its own: the failed attempt's job may still be on its way out of the table, and
      // sharing its key would drop this one. The status move above already lets one retry through.
      if (m) await r.jobs.enqueue({ kind: JOB_SEND, portalId: p.portalId, payload: { messageId }, dedupeKey: `send:${messageId}:retry:${this.ctx.clock.now()}`, priority: 0 });
      return m;
    });
    if (!updated) throw conflict('message changed meanwhile');
    this.publishStatus(updated);
    this.ctx.wakeJobs(JOB_SEND);
    return updated;
  }

  /** At start: send jobs for queued messages that lost theirs (see accept). */
  async recoverOrphanedSends(): Promise<number> {
    const n = await this.ctx.db.repos.jobs.enqueueMissingSends(JOB_SEND);
    if (n > 0) {
      this.ctx.log.warn({ messages: n }, 'queued messages without a send job found; their jobs are back');
      this.ctx.wakeJobs(JOB_SEND);
    }
    return n;
  }

  /** The durable send job. */
  sendJob(): JobHandler {
    return {
      run: (job) => this.runSend(job),
      giveUp: async (job, err) => {
        const id = Number(job.payload.messageId);
        const m = await this.ctx.db.repos.messages.setStatus(id, 'failed', err.message, allowedFrom('failed'));
        if (m) this.publishStatus(m);
      },
    };
  }

  private async runSend(job: Job): Promise<void> {
    const { db, clock } = this.ctx;
    const id = Number(job.payload.messageId);
    const found = await db.repos.messages.withParties(id);
    if (!found) return;
    if (found.message.status !== 'queued') {
      // Sent meanwhile, or retried and superseded. If this job is running again because the
      // process died between linking the id and queueing the mirror, queue the mirror now.
      if (found.message.waMessageId !== null && isDelivering(found.message.status)) await this.enqueueMirror(found.message, found.message.waMessageId);
      return;
    }
    const { message: msg, contact } = found;
    // Access may have ended (expired, suspended) since the message was accepted: a backlog does
    // not go out on a portal that may not send. It fails with the licence's reason, retryable.
    const refusal = await this.guard(msg.portalId).then(
      () => null,
      (err: unknown) => (err instanceof AppError && (err.status === 402 || err.status === 403) ? err : Promise.reject(err)),
    );
    if (refusal) {
      const failed = await db.repos.messages.setStatus(id, 'failed', refusal.message, allowedFrom('failed'));
      if (failed) this.publishStatus(failed);
      return;
    }
    const session = this.sessions.readySession(msg.numberId);
    if (!session) throw new Error('WhatsApp number is not connected');
    const chatId = contact.waId || (contact.phone ? chatIdOf(contact.phone) : null);
    if (!chatId) throw new PermanentJobError('the contact has no WhatsApp id');

    // The chat lock keeps sends to one chat in order and makes the look-back below unambiguous.
    // It covers the engine call only: linking the id afterwards happens outside it, so the next
    // message of the chat does not wait for our writes. Ids sent but not yet linked
    // are kept in `linking`, and the look-back treats them as taken.
    const outcome = await this.chatLock.run(`${msg.numberId}:${chatId}`, async (): Promise<{ link: string } | null> => {
      // The id came back through catch-up (adoptPendingSend): WhatsApp has the message.
      if (msg.waMessageId !== null) {
        const sent = await db.repos.messages.setStatus(id, 'sent', null, allowedFrom('sent'));
        if (sent) this.publishStatus(sent);
        return { link: msg.waMessageId };
      }
      // A previous attempt started and was cut off (crash, timeout): WhatsApp may have sent it.
      // Look before sending again, so the client never gets it twice.
      if (msg.sendStartedAt !== null) {
        const sent = await session.recentSent(chatId, new Date(msg.sendStartedAt - 5_000));
        const taken = await db.repos.messages.waIdsTaken(msg.numberId, sent.map((s) => s.waMessageId));
        const match = sent.find(
          (s) =>
            !taken.has(s.waMessageId) &&
            !this.linking.has(ackKey(msg.numberId, s.waMessageId)) &&
            s.type === msg.type &&
            (s.text ?? null) === (msg.text ?? null) &&
            (s.mediaSha256 ?? null) === (msg.media?.sha256 ?? null),
        );
        if (match) {
          this.ctx.log.info({ messageId: id, waMessageId: match.waMessageId }, 'interrupted send found delivered; not resending');
          this.linking.add(ackKey(msg.numberId, match.waMessageId));
          return { link: match.waMessageId };
        }
      }
      await db.repos.messages.markSendStarted(id, clock.now());
      let quotedWaId: string | null = null;
      if (msg.quotedMessageId) quotedWaId = (await db.repos.messages.getAny(msg.quotedMessageId))?.waMessageId ?? null;
      const media = msg.media
        ? { data: await this.ctx.media.read(msg.media.sha256), mimetype: msg.media.mimetype, filename: msg.media.filename }
        : null;
      try {
        const { waMessageId } = await session.send({ chatId, type: msg.type, text: msg.text, media, ptt: msg.ptt, quotedWaMessageId: quotedWaId });
        this.linking.add(ackKey(msg.numberId, waMessageId));
        return { link: waMessageId };
      } catch (err) {
        if (err instanceof PermanentSendError) {
          const failed = await db.repos.messages.setStatus(id, 'failed', err.message, allowedFrom('failed'));
          if (failed) this.publishStatus(failed);
          return null;
        }
        throw err;
      }
    });
    if (outcome) await this.linkSent(msg, outcome.link);
  }

  private async linkSent(msg: Message, waMessageId: string): Promise<void> {
    const { db } = this.ctx;
    const key = ackKey(msg.numberId, waMessageId);
    let linked: boolean;
    try {
      // Two statements, no transaction (see accept): if the process dies between them, this send
      // job is still in the table and its next run queues the mirror (runSend).
      linked = await db.repos.messages.setWaMessageId(msg.id, waMessageId);
      if (linked) await this.enqueueMirror(msg, waMessageId);
    } finally {
      // Linked (the database now says taken) or failed (the job runs again and looks back).
      this.linking.delete(key);
    }
    if (!linked) {
      // Should not happen (ids in flight are kept apart); if it does, say so rather than leave the
      // message queued for ever with no job behind it.
      this.ctx.log.warn({ messageId: msg.id, waMessageId }, 'engine id already belongs to another message');
      const failed = await db.repos.messages.setStatus(msg.id, 'failed', 'WhatsApp reported the id of another message; check the chat, then retry', allowedFrom('failed'));
      if (failed) this.publishStatus(failed);
      return;
    }
    this.ctx.wakeJobs(JOB_CRM_MIRROR);
    const pending = this.earlyAcks.get(key);
    this.earlyAcks.delete(key);
    for (const a of furthestAcks(pending ?? [])) await this.applyAck(msg.numberId, waMessageId, a.status, a.error);
  }

  /** An ack from the engine. Unknown ids are held briefly: the send call may not have returned yet. */
  async ack(numberId: number, waMessageId: string, status: AckStatus, error?: string): Promise<void> {
    const key = ackKey(numberId, waMessageId);
    // Engines report the first ack as soon as WhatsApp takes the message, often before our send
    // call has resumed with its id. Give that continuation one turn of the event loop: if the id
    // then shows up in `linking`, park the ack for linkSent without asking the database.
    if (!this.linking.has(key)) await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.linking.has(key)) {
      this.park(key, status, error);
      return;
    }
    const applied = await this.applyAck(numberId, waMessageId, status, error);
    if (applied) return;
    this.park(key, status, error);
    // The send may have linked the id (and drained this buffer) while we looked: look once more
    // now that the ack is parked, so it cannot be stranded.
    if (await this.applyAck(numberId, waMessageId, status, error)) {
      const parked = this.earlyAcks.get(key) ?? [];
      this.earlyAcks.delete(key);
      for (const a of parked) await this.applyAck(numberId, waMessageId, a.status, a.error);
    }
  }

  private park(key: string, status: AckStatus, error?: string): void {
    const now = this.ctx.clock.now();
    const list = this.earlyAcks.get(key) ?? [];
    list.push({ status, error, at: now });
    this.earlyAcks.set(key, list);
    if (this.earlyAcks.size > 10_000) {
      for (const [k, v] of this.earlyAcks) if (now - v[0]!.at > ACK_TTL_MS) this.earlyAcks.delete(k);
    }
  }

  /** True when the message is known (whether or not the status moved). */
  private async applyAck(numberId: number, waMessageId: string, status: AckStatus, error?: string): Promise<boolean> {
    const attempt = () =>
      this.ctx.db.repos.messages.setStatusByWaId(numberId, waMessageId, status, status === 'failed' ? error ?? 'failed' : null, allowedFrom(status));
    let { known, message } = await attempt();
    // Known but not moved: either the status is already past this ack, or the send linked the id
    // between our update and our look-up. One more try tells them apart.
    if (known && !message) ({ message } = await attempt());
    if (message) this.publishStatus(message);
    return known;
  }

  /** One CRM mirror per WhatsApp copy of a message: a resend after a failure is mirrored again. */
  private async enqueueMirror(msg: Message, waMessageId: string): Promise<void> {
    await this.ctx.db.repos.jobs.enqueue({ kind: JOB_CRM_MIRROR, portalId: msg.portalId, payload: { messageId: msg.id }, dedupeKey: `mirror:${msg.id}:${waMessageId}` });
  }

  private publishStatus(m: Message): void {
    this.ctx.live.publish(m.portalId, { type: 'status', conversationId: m.conversationId, messageId: m.id, status: m.status, error: m.error });
  }
}
