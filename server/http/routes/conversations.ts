import { z } from 'zod';
import type { ConversationService } from '../../domain/conversations';
import { badRequest } from '../../domain/errors';
import type { MediaStore } from '../../domain/ports';
import type { OutboundService } from '../../domain/outbound';
import type { SessionManager } from '../../domain/sessions';
import { route, type RouteDef } from '../api';
import { NotWebmOpus, looksLikeWebm, webmToOgg } from '../../media/webmToOgg';
import { readMultipart, type Multipart } from '../multipart';
import { presentConversation, presentMessage } from '../present';

const idParams = z.object({ id: z.coerce.number().int().positive() });
const phoneList = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]));

const sendJson = z.object({
  text: z.string().min(1, 'must not be empty').max(65536),
  quotedMessageId: z.number().int().positive().optional(),
});

const idempotencyKey = (raw: string | undefined): string => {
  if (!raw) throw badRequest('Idempotency-Key: header is required (a unique string per message, reused on retries)', { field: 'Idempotency-Key' });
  if (raw.length > 200) throw badRequest('Idempotency-Key: at most 200 characters', { field: 'Idempotency-Key' });
  return raw;
};

/**
 * Browsers record voice as WebM/Opus (Chromium offers nothing else); WhatsApp plays a voice note
 * only from Ogg/Opus. The packets are the same, so a WebM voice note is remuxed here, before the
 * domain (which accepts Ogg only) sees it. Anything else passes through for the domain to judge.
 */
function voiceAsOgg(file: NonNullable<Multipart['file']>): NonNullable<Multipart['file']> {
  const declared = file.mimetype.split(';')[0]!.trim().toLowerCase();
  if (!(declared === 'audio/webm' || declared === 'video/webm' || looksLikeWebm(file.data))) return file;
  try {
    const data = webmToOgg(file.data);
    const filename = file.filename ? file.filename.replace(/\.(webm|weba|mka)$/i, '') + '.ogg' : 'voice.ogg';
    return { data, mimetype: 'audio/ogg; codecs=opus', filename };
  } catch (err) {
    if (err instanceof NotWebmOpus) throw badRequest(`file: a voice note must be Ogg/Opus or WebM/Opus (${err.message})`, { field: 'file' });
    throw err;
  }
}

export function conversationRoutes(deps: {
  conversations: ConversationService;
  outbound: OutboundService;
  sessions: SessionManager;
  media: MediaStore;
  maxUploadBytes: number;
}): RouteDef[] {
  const { conversations, outbound, sessions, media } = deps;
  return [
    route({
      method: 'get',
      path: '/conversations',
      tag: 'conversations',
      summary:
        "Conversations with the given phones (repeat `phone`) and/or a CRM card's phones (`entityType` + `entityId`), latest activity first; `phones` lists the card's phones",
      access: 'user',
      query: z
        .object({ phone: phoneList, entityType: z.enum(['lead', 'deal', 'contact', 'company', 'phone']).optional(), entityId: z.string().min(1).max(64).optional() })
        .refine((q) => !q.entityType === !q.entityId, { message: 'entityType and entityId go together', path: ['entityId'] }),
      responses: { '200': '{ items: Conversation[], phones: string[] }', '400': 'a phone is not a phone number' },
      handler: async ({ principal, query }) => {
        const entity = query.entityType && query.entityId ? { type: query.entityType, id: query.entityId } : null;
        const phones = entity ? await conversations.phonesOf(principal, entity) : [];
        const items = await conversations.list(principal, [...query.phone, ...phones]);
        return { items: items.map((c) => presentConversation(c, media)), phones };
      },
    }),
    route({
      method: 'post',
      path: '/conversations',
      tag: 'conversations',
      summary: 'Find or start the conversation with a phone (it need not have written first)',
      access: 'user',
      okStatus: 201,
      body: z.object({ phone: z.string().min(1).max(40), numberId: z.number().int().positive().optional() }),
      responses: { '201': 'Conversation', '400': 'bad phone or number' },
      handler: async ({ principal, body }) => presentConversation(await conversations.start(principal, body.phone, body.numberId), media),
    }),
    route({
      method: 'get',
      path: '/conversations/:id',
      tag: 'conversations',
      summary: 'One conversation',
      access: 'user',
      params: idParams,
      responses: { '200': 'Conversation', '404': 'no such conversation in this portal' },
      handler: async ({ principal, params }) => presentConversation(await conversations.get(principal, params.id), media),
    }),
    route({
      method: 'get',
      path: '/conversations/:id/messages',
      tag: 'messages',
      summary: 'A page of history, oldest first within the page; `nextCursor` fetches the older page',
      access: 'user',
      params: idParams,
      query: z.object({
        before: z.coerce.number().int().positive().optional(),
        limit: z.coerce.number().int().min(1).max(200).default(50),
      }),
      responses: { '200': '{ items: Message[], nextCursor }', '404': 'no such conversation' },
      handler: async ({ principal, params, query }) => {
        const page = await conversations.messages(principal, params.id, query.before ?? null, query.limit);
        return { items: page.items.map((m) => presentMessage(m, media)), nextCursor: page.nextCursor === null ? null : String(page.nextCursor) };
      },
    }),
    route({
      method: 'post',
      path: '/conversations/:id/messages',
      tag: 'messages',
      summary: 'Send a message: JSON { text } or multipart (file, text, voice=true); needs Idempotency-Key',
      access: 'user',
      params: idParams,
      okStatus: 201,
      requestContent: {
        'multipart/form-data': {
          schema: {
            type: 'object',
            properties: { file: { type: 'string', format: 'binary' }, text: { type: 'string' }, voice: { type: 'string', enum: ['true', 'false'] }, quotedMessageId: { type: 'string' } },
            required: ['file'],
          },
        },
      },
      responses: {
        '201': 'Message, stored as queued',
        '200': 'the same Idempotency-Key was seen: the stored message',
        '400': 'bad body',
        '402': 'licence expired',
        '413': 'file too large',
        '422': 'Idempotency-Key reused for a different message',
      },
      handler: async ({ req, res, principal, params }) => {
        const key = idempotencyKey(req.header('idempotency-key'));
        let request;
        if (req.is('multipart/form-data')) {
          const mp = await readMultipart(req, deps.maxUploadBytes);
          if (!mp.file) throw badRequest('file: a multipart message needs a file', { field: 'file' });
          const quoted = mp.fields.quotedMessageId ? Number(mp.fields.quotedMessageId) : null;
          if (quoted !== null && !(Number.isInteger(quoted) && quoted > 0)) throw badRequest('quotedMessageId: must be a message id', { field: 'quotedMessageId' });
          if (mp.fields.voice !== undefined && !['true', 'false'].includes(mp.fields.voice)) throw badRequest('voice: must be true or false', { field: 'voice' });
          const voice = mp.fields.voice === 'true';
          request = { text: mp.fields.text || null, file: voice ? voiceAsOgg(mp.file) : mp.file, voice, quotedMessageId: quoted };
        } else {
          const r = sendJson.safeParse(req.body ?? {});
          if (!r.success) {
            const i = r.error.issues[0]!;
            throw badRequest(`${i.path.join('.') || 'body'}: ${i.message}`, { field: i.path.join('.') });
          }
          request = { text: r.data.text, quotedMessageId: r.data.quotedMessageId ?? null };
        }
        const { message, created } = await outbound.accept(principal, params.id, request, key);
        if (!created) res.status(200).setHeader('Idempotent-Replayed', 'true');
        res.status(created ? 201 : 200).json(presentMessage(message, media));
        return undefined;
      },
    }),
    route({
      method: 'post',
      path: '/conversations/:id/read',
      tag: 'conversations',
      summary: "Mark the conversation read (unread count to 0; the client's phone sees blue ticks)",
      access: 'user',
      params: idParams,
      responses: { '204': 'done', '404': 'no such conversation' },
      handler: async ({ principal, params }) => {
        await conversations.markRead(principal, params.id, async (numberId, chatId) => {
          await sessions.readySession(numberId)?.markSeen?.(chatId);
        });
        return undefined;
      },
    }),
    route({
      method: 'post',
      path: '/messages/:id/retry',
      tag: 'messages',
      summary: 'Send a failed message again',
      access: 'user',
      params: idParams,
      responses: { '200': 'Message, queued again', '404': 'no such message', '409': 'the message is not failed' },
      handler: async ({ principal, params }) => presentMessage(await outbound.retry(principal, params.id), media),
    }),
  ];
}
