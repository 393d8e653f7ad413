import type { Request, Response, Router } from 'express';
import { z, type ZodType } from 'zod';
import { badRequest, forbidden, unauthorized } from '../domain/errors';
import type { Principal } from '../domain/types';
import type { TokenService } from './tokens';

export type Access = 'public' | 'user' | 'admin';

export interface HandlerInput<B, Q, P> {
  req: Request;
  res: Response;
  principal: Principal;
  body: B;
  query: Q;
  params: P;
}

/**
 * One `/api/v1` route: its schemas validate the request before the handler runs, and the same
 * definition feeds the OpenAPI document, so the document cannot drift from the routes.
 */
export interface RouteDef<B = unknown, Q = unknown, P = unknown> {
  method: 'get' | 'post' | 'put' | 'delete';
  /** Express-style path below /api/v1, e.g. `/conversations/:id/messages`. */
  path: string;
  summary: string;
  tag: string;
  access: Access;
  body?: ZodType<B>;
  query?: ZodType<Q>;
  params?: ZodType<P>;
  /** Documented request content other than JSON (multipart uploads). */
  requestContent?: Record<string, unknown>;
  responses: Record<string, string>;
  /** Returns the JSON body (status `okStatus`), or undefined when it wrote the response itself. */
  handler(input: HandlerInput<B, Q, P>): Promise<unknown>;
  okStatus?: number;
}

export const route = <B, Q, P>(def: RouteDef<B, Q, P>): RouteDef => def as unknown as RouteDef;

/** Reads `Authorization: Bearer …` (or `access_token` for EventSource, which cannot set headers). */
export function principalOf(req: Request, tokens: TokenService): Principal | null {
  const h = req.headers.authorization;
  const raw = h?.startsWith('Bearer ') ? h.slice(7) : typeof req.query.access_token === 'string' ? req.query.access_token : null;
  return raw ? tokens.verify(raw) : null;
}

function parse<T>(schema: ZodType<T> | undefined, value: unknown, where: string): T {
  if (!schema) return value as T;
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.join('.') || where;
  throw badRequest(`${field}: ${issue.message}`, { field, in: where });
}

const PUBLIC: Principal = { portalId: 0, userId: 'anonymous', admin: false };

export function mount(router: Router, routes: RouteDef[], tokens: TokenService): void {
  for (const def of routes) {
    router[def.method](def.path, async (req: Request, res: Response) => {
      let principal = PUBLIC;
      if (def.access !== 'public') {
        const p = principalOf(req, tokens);
        if (!p) throw unauthorized();
        if (def.access === 'admin' && !p.admin) throw forbidden();
        principal = p;
        req.log = req.log.child({ portalId: p.portalId });
      }
      const params = parse(def.params, req.params, 'path');
      const query = parse(def.query, req.query, 'query');
      const body = parse(def.body, req.body, 'body');
      const out = await def.handler({ req, res, principal, body, query, params });
      if (out === undefined) {
        if (!res.headersSent) res.status(def.okStatus ?? 204).end();
        return;
      }
      res.status(def.okStatus ?? 200).json(out);
    });
  }
}

/** OpenAPI 3.1 document built from the same definitions that serve the routes. */
export function openApiDocument(routes: RouteDef[], info: { title: string; version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const def of routes) {
    const path = '/api/v1' + def.path.replace(/:(\w+)/g, '{$1}');
    const parameters: unknown[] = [];
    for (const [where, schema] of [['path', def.params], ['query', def.query]] as const) {
      if (!schema) continue;
      const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, s] of Object.entries(js.properties ?? {})) {
        parameters.push({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), schema: s });
      }
    }
    const op: Record<string, unknown> = {
      summary: def.summary,
      tags: [def.tag],
      parameters,
      responses: Object.fromEntries(Object.entries(def.responses).map(([code, description]) => [code, { description }])),
    };
    if (def.access !== 'public') op.security = [{ bearer: [] }];
    if (def.body) op.requestBody = { required: true, content: { 'application/json': { schema: z.toJSONSchema(def.body, { io: 'input', unrepresentable: 'any' }) } } };
    if (def.requestContent) op.requestBody = { required: true, content: { ...(op.requestBody as { content?: object } | undefined)?.content, ...def.requestContent } };
    (paths[path] ??= {})[def.method] = op;
  }
  return {
    openapi: '3.1.0',
    info,
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}
