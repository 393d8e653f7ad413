import crypto from 'node:crypto';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import type { AccountService } from '../../console/accounts';
import { AppError } from '../../domain/errors';
import type { LicenceService } from '../../domain/licenceService';
import { langFromHeader, langOf } from '../../domain/licenceText';
import type { OperatorCommands } from '../../domain/licenceOperator';
import { route, type RouteDef } from '../api';

/** What the widget reads: GET /licence, and the one-time console link code for admins. */
export function licenceRoutes(licences: LicenceService, accounts: AccountService): RouteDef[] {
  return [
    route({
      method: 'get',
      path: '/licence',
      tag: 'licence',
      summary:
        "The portal's licence: { status, plan: {code, name}|null, paidUntil, daysLeft, reason, canSend, notice: {kind, message}|null }. Also pushed as the `licence` SSE event when it changes.",
      access: 'user',
      query: z.object({ lang: z.string().max(10).optional() }),
      responses: { '200': 'Licence', '401': 'no or bad token' },
      handler: async ({ req, principal, query }) => licences.view(principal.portalId, query.lang ? langOf(query.lang) : langFromHeader(req.header('accept-language'))),
    }),
    route({
      method: 'post',
      path: '/console/link-code',
      tag: 'licence',
      summary: 'A one-time code (valid 10 minutes) that links this portal to an account of the web console',
      access: 'admin',
      okStatus: 201,
      responses: { '201': '{ code, expiresAt }', '403': 'admins only' },
      handler: async ({ principal }) => accounts.createLinkCode(principal.portalId, `user:${principal.userId}`),
    }),
  ];
}

/**
 * The operator API. Mounted only when OPERATOR_TOKEN is set (otherwise every path is a 404);
 * the token is compared in constant time.
 */
function operatorCheck(operatorToken: string): (header: string | undefined) => void {
  const want = crypto.createHash('sha256').update(operatorToken).digest();
  return (header) => {
    const raw = header?.startsWith('Bearer ') ? header.slice(7) : '';
    // Hash both sides first: equal lengths for timingSafeEqual, and no length leak.
    const got = crypto.createHash('sha256').update(raw).digest();
    if (!raw || !crypto.timingSafeEqual(want, got)) throw new AppError(401, 'unauthorized', 'operator token missing or wrong');
  };
}

/** Runs before /api/v1 parses anything: a caller without the token learns nothing about inputs. */
export function operatorGuard(operatorToken: string): RequestHandler {
  const check = operatorCheck(operatorToken);
  return (req, _res, next) => {
    if (req.path.startsWith('/api/v1/operator/') || req.path === '/api/v1/operator') check(req.header('authorization'));
    next();
  };
}

export function operatorRoutes(ops: OperatorCommands, operatorToken: string): RouteDef[] {
  const guard = operatorCheck(operatorToken);
  const id = z.object({ id: z.coerce.number().int().positive() });
  const actor = 'operator:api';
  const op = <B, Q, P>(def: Omit<Parameters<typeof route<B, Q, P>>[0], 'tag' | 'access'>) =>
    route<B, Q, P>({
      ...def,
      tag: 'operator',
      access: 'public',
      handler: async (input) => {
        guard(input.req.header('authorization'));
        return def.handler(input);
      },
    });
  return [
    op({ method: 'get', path: '/operator/portals', summary: 'List portals with their licence', responses: { '200': '{ items }', '401': 'operator token missing or wrong' }, handler: async () => ({ items: await ops.listPortals() }) }),
    op({ method: 'get', path: '/operator/portals/:id', summary: "A portal: licence, numbers, payments", params: id, responses: { '200': 'Portal', '404': 'no such portal' }, handler: async ({ params }) => ops.showPortal(params.id) }),
    op({
      method: 'post',
      path: '/operator/portals/:id/payments',
      summary: 'Record a payment: access at once, paidUntil extended by the plan period from max(now, paidUntil)',
      params: id,
      body: z.unknown(),
      okStatus: 201,
      responses: { '201': '{ payment, licence }', '400': 'bad input or unknown plan' },
      handler: async ({ params, body }) => ops.recordPayment(params.id, body, actor),
    }),
    op({
      method: 'post',
      path: '/operator/portals/:id/plan',
      summary: 'Change the plan: takes effect at the end of the paid period',
      params: id,
      body: z.unknown(),
      responses: { '200': '{ effectiveAt, licence }', '400': 'unknown plan' },
      handler: async ({ params, body }) => ops.changePlan(params.id, body, actor),
    }),
    op({ method: 'post', path: '/operator/portals/:id/suspend', summary: 'Suspend with a reason the admins see', params: id, body: z.unknown(), responses: { '200': '{ licence }' }, handler: async ({ params, body }) => ops.suspend(params.id, body, actor) }),
    op({ method: 'post', path: '/operator/portals/:id/unsuspend', summary: 'Lift a suspension', params: id, responses: { '200': '{ licence }', '400': 'not suspended' }, handler: async ({ params }) => ops.unsuspend(params.id, actor) }),
    op({
      method: 'post',
      path: '/operator/maintenance',
      summary: 'Declare a maintenance window {startAt, endAt, reason}: portals with access during it get its length in whole days, once',
      body: z.unknown(),
      okStatus: 201,
      responses: { '201': '{ window, days, credited }' },
      handler: async ({ body }) => ops.declareMaintenance(body, actor),
    }),
    op({ method: 'get', path: '/operator/maintenance', summary: 'Declared maintenance windows', responses: { '200': '{ items }' }, handler: async () => ({ items: await ops.listMaintenance() }) }),
    op({ method: 'get', path: '/operator/expiring', summary: 'Licences ending within `days` (default 7)', query: z.object({ days: z.string().optional() }), responses: { '200': '{ items }' }, handler: async ({ query }) => ({ items: await ops.expiring(query) }) }),
    op({
      method: 'get',
      path: '/operator/audit',
      summary: 'The audit log as JSON lines (application/x-ndjson), oldest first',
      query: z.object({ afterId: z.coerce.number().int().min(0).optional(), portalId: z.coerce.number().int().positive().optional() }),
      responses: { '200': 'JSON lines' },
      handler: async ({ res, query }) => {
        res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
        res.send(await ops.exportAudit(query));
        return undefined;
      },
    }),
  ];
}
