import { z } from 'zod';
import { AppError, badRequest, notFound } from '../../../domain/errors';
import { toE164 } from '../../../domain/phone';
import type { Database } from '../../../domain/ports';
import { route, type RouteDef } from '../../../http/api';
import type { TokenService } from '../../../http/tokens';
import { AccountUnavailable, type SimNetwork } from './network';

// The simulator's control API: a test or a person acts as WhatsApp and as the client phones.
// Mounted only when WA_ENGINE=simulator; these shapes are relied on outside the test suite.

const phone = z.string().transform((v, ctx) => {
  const p = toE164(v);
  if (!p) ctx.addIssue({ code: 'custom', message: `"${v}" is not a phone number` });
  return p ?? '';
});
const numberParams = z.object({ numberId: z.coerce.number().int().positive() });
const TOKEN_TTL_MS = 30 * 24 * 3600_000;

export function simulatorRoutes(net: SimNetwork, db: Database, tokens: TokenService): RouteDef[] {
  const needNumber = async (id: number) => {
    const n = await db.repos.numbers.getAny(id);
    if (!n) throw notFound('number');
    return n;
  };
  return [
    route({
      method: 'post',
      path: '/simulator/portals',
      tag: 'simulator',
      summary: 'Create a portal and mint an admin and a user token for it',
      access: 'public',
      okStatus: 201,
      body: z.object({ crm: z.enum(['none', 'kommo', 'bitrix24']).default('none'), name: z.string().min(1).max(200).default('Demo') }),
      responses: { '201': '{ portalId, adminToken, userToken }' },
      handler: async ({ body }) => {
        const portal = await db.repos.portals.create({ crm: body.crm, name: body.name, settings: { alertUserIds: ['sim-admin'] } });
        return {
          portalId: portal.id,
          adminToken: tokens.issue({ portalId: portal.id, userId: 'sim-admin', admin: true }, TOKEN_TTL_MS),
          userToken: tokens.issue({ portalId: portal.id, userId: 'sim-user', admin: false }, TOKEN_TTL_MS),
        };
      },
    }),
    route({
      method: 'post',
      path: '/simulator/numbers/:numberId/scan',
      tag: 'simulator',
      summary: "Scan the number's QR with a phone: the number becomes ready",
      access: 'public',
      params: numberParams,
      body: z.object({ phone }),
      responses: { '200': '{ numberId, phone }', '404': 'no such number', '409': 'phone linked elsewhere' },
      handler: async ({ params, body }) => {
        await needNumber(params.numberId);
        try {
          net.link(params.numberId, body.phone);
        } catch (err) {
          throw new AppError(409, 'conflict', (err as Error).message);
        }
        return { numberId: params.numberId, phone: body.phone };
      },
    }),
    route({
      method: 'put',
      path: '/simulator/numbers/:numberId',
      tag: 'simulator',
      summary: "Take our number's phone offline or bring it back",
      access: 'public',
      params: numberParams,
      body: z.object({ online: z.boolean() }),
      responses: { '200': '{ numberId, online }', '404': 'no such number', '409': 'not linked' },
      handler: async ({ params, body }) => {
        await needNumber(params.numberId);
        if (!net.accountOf(params.numberId)) throw new AppError(409, 'conflict', 'number is not linked');
        net.setAccountOnline(params.numberId, body.online);
        return { numberId: params.numberId, online: body.online };
      },
    }),
    route({
      method: 'post',
      path: '/simulator/numbers/:numberId/unlink',
      tag: 'simulator',
      summary: 'Unlink the device from the phone (the number gets logged_out)',
      access: 'public',
      params: numberParams,
      responses: { '204': 'unlinked' },
      handler: async ({ params }) => {
        await needNumber(params.numberId);
        net.unlink(params.numberId);
        return undefined;
      },
    }),
    route({
      method: 'post',
      path: '/simulator/numbers/:numberId/reveal',
      tag: 'simulator',
      summary: 'WhatsApp reveals the phone behind a hidden (@lid) sender',
      access: 'public',
      params: numberParams,
      body: z.object({ from: phone }),
      responses: { '204': 'revealed' },
      handler: async ({ params, body }) => {
        await needNumber(params.numberId);
        net.reveal(params.numberId, body.from);
        return undefined;
      },
    }),
    route({
      method: 'post',
      path: '/simulator/inbound',
      tag: 'simulator',
      summary: 'A client phone writes to one of our numbers (repeat waMessageId to send a duplicate)',
      access: 'public',
      okStatus: 202,
      body: z.object({
        to: phone,
        from: phone,
        name: z.string().max(200).optional(),
        text: z.string().max(65536).optional(),
        waMessageId: z.string().min(1).max(200).optional(),
        media: z.object({ mimetype: z.string().min(3).max(120), data: z.string().min(1), filename: z.string().max(255).optional() }).optional(),
        ptt: z.boolean().optional(),
        hidden: z.boolean().optional(),
        repeat: z.number().int().min(1).max(20).optional(),
      }),
      responses: { '202': '{ waMessageId, numberId }', '400': 'bad body', '409': '`to` is not a linked number' },
      handler: async ({ body }) => {
        if (!body.text && !body.media) throw badRequest('text: a message needs text or media', { field: 'text' });
        try {
          return net.inbound({
            ...body,
            media: body.media ? { mimetype: body.media.mimetype, data: Buffer.from(body.media.data, 'base64'), filename: body.media.filename } : null,
          });
        } catch (err) {
          if (err instanceof AccountUnavailable) throw new AppError(409, 'conflict', err.message);
          throw err;
        }
      },
    }),
    route({
      method: 'get',
      path: '/simulator/delivered',
      tag: 'simulator',
      summary: 'The messages that reached a client phone, in order',
      access: 'public',
      query: z.object({ phone }),
      responses: { '200': '{ items: [{ waMessageId, from, type, text, mimetype, ptt, status, ... }] }' },
      handler: async ({ query }) => ({ items: net.deliveredTo(query.phone) }),
    }),
    route({
      method: 'put',
      path: '/simulator/phones/:phone',
      tag: 'simulator',
      summary: 'Set how a client phone behaves: online, on WhatsApp at all, delivery and read delays',
      access: 'public',
      params: z.object({ phone }),
      body: z.object({
        online: z.boolean().optional(),
        registered: z.boolean().optional(),
        deliverAfterMs: z.number().int().min(0).max(3_600_000).optional(),
        readAfterMs: z.number().int().min(0).max(3_600_000).nullable().optional(),
      }),
      responses: { '200': 'the phone settings' },
      handler: async ({ params, body }) => ({ phone: params.phone, ...net.setPhone(params.phone, body) }),
    }),
    route({
      method: 'post',
      path: '/simulator/phones/:phone/read',
      tag: 'simulator',
      summary: "The client reads what they received (and plays voice notes with played=true)",
      access: 'public',
      params: z.object({ phone }),
      body: z.object({ waMessageId: z.string().optional(), played: z.boolean().optional() }),
      responses: { '200': '{ read: n }' },
      handler: async ({ params, body }) => ({ read: net.read(params.phone, body) }),
    }),
    route({
      method: 'post',
      path: '/simulator/acks',
      tag: 'simulator',
      summary: 'Inject an ack as WhatsApp may send it: late, repeated or out of order',
      access: 'public',
      body: z.object({
        numberId: z.number().int().positive(),
        waMessageId: z.string().min(1),
        status: z.enum(['sent', 'delivered', 'read', 'played', 'failed']),
      }),
      responses: { '204': 'reported' },
      handler: async ({ body }) => {
        net.injectAck(body.numberId, body.waMessageId, body.status);
        return undefined;
      },
    }),
    route({
      method: 'post',
      path: '/simulator/crash',
      tag: 'simulator',
      summary: 'Kill the server (SIGKILL) right after WhatsApp takes the next N sends, before the server learns their ids',
      access: 'public',
      body: z.object({ afterSends: z.number().int().min(1).max(10_000) }),
      responses: { '204': 'armed' },
      handler: async ({ body }) => {
        net.crashAfterSends(body.afterSends);
        return undefined;
      },
    }),
  ];
}
