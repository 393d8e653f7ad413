import { z } from 'zod';
import { notFound } from '../../domain/errors';
import type { Database } from '../../domain/ports';
import type { SessionManager } from '../../domain/sessions';
import { route, type RouteDef } from '../api';
import { presentNumber } from '../present';

const idParams = z.object({ id: z.coerce.number().int().positive() });

export function numberRoutes(db: Database, sessions: SessionManager): RouteDef[] {
  return [
    route({
      method: 'get',
      path: '/numbers',
      tag: 'numbers',
      summary: "The portal's WhatsApp numbers with their state (and QR while one is shown)",
      access: 'user',
      responses: { '200': '{ items: Number[] }', '401': 'no or bad token' },
      handler: async ({ principal }) => ({ items: (await db.repos.numbers.list(principal.portalId)).map(presentNumber) }),
    }),
    route({
      method: 'post',
      path: '/numbers',
      tag: 'numbers',
      summary: 'Connect a new number: starts a session; the QR follows on the stream and in GET',
      access: 'admin',
      okStatus: 201,
      responses: { '201': '{ id, state }', '403': 'admins only', '402': 'licence does not allow more numbers' },
      handler: async ({ principal }) => {
        const n = await sessions.connect(principal);
        return { id: n.id, state: n.state, qr: n.qr };
      },
    }),
    route({
      method: 'get',
      path: '/numbers/:id',
      tag: 'numbers',
      summary: 'One number',
      access: 'user',
      params: idParams,
      responses: { '200': 'Number', '404': 'no such number in this portal' },
      handler: async ({ principal, params }) => {
        const n = await db.repos.numbers.get(principal.portalId, params.id);
        if (!n) throw notFound('number');
        return presentNumber(n);
      },
    }),
    route({
      method: 'post',
      path: '/numbers/:id/restart',
      tag: 'numbers',
      summary: 'Start the session of a stopped number again (QR expired, failed)',
      access: 'admin',
      params: idParams,
      responses: { '200': 'Number', '404': 'no such number' },
      handler: async ({ principal, params }) => presentNumber(await sessions.restart(principal, params.id)),
    }),
    route({
      method: 'post',
      path: '/numbers/:id/logout',
      tag: 'numbers',
      summary: 'Disconnect a number: unlinks it from the phone and drops the login',
      access: 'admin',
      params: idParams,
      responses: { '204': 'logged out', '404': 'no such number' },
      handler: async ({ principal, params }) => {
        await sessions.logout(principal, params.id);
        return undefined;
      },
    }),
  ];
}
