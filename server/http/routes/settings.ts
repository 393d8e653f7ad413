import { z } from 'zod';
import { notFound } from '../../domain/errors';
import type { Database } from '../../domain/ports';
import { route, type RouteDef } from '../api';

// The portal's own options (settings tab): what happens to a message from an unknown number, in
// which pipeline and stage, who is responsible, whether messages are mirrored, who gets alerts.
const settingsBody = z
  .object({
    unknownNumber: z.enum(['create', 'ignore']).optional(),
    pipelineId: z.string().min(1).max(64).optional(),
    stageId: z.string().min(1).max(64).optional(),
    createAs: z.enum(['deal', 'lead']).optional(),
    responsibleUserId: z.string().min(1).max(64).optional(),
    mirror: z.boolean().optional(),
    alertUserIds: z.array(z.string().min(1).max(64)).max(200).optional(),
  })
  .strict();

export function settingsRoutes(db: Database): RouteDef[] {
  return [
    route({
      method: 'get',
      path: '/settings',
      tag: 'settings',
      summary: "The portal's options and who the caller is",
      access: 'user',
      responses: { '200': '{ portal: { id, crm, name }, user: { id, admin }, settings }' },
      handler: async ({ principal }) => {
        const portal = await db.repos.portals.get(principal.portalId);
        if (!portal) throw notFound('portal');
        return { portal: { id: portal.id, crm: portal.crm, name: portal.name }, user: { id: principal.userId, admin: principal.admin }, settings: portal.settings };
      },
    }),
    route({
      method: 'put',
      path: '/settings',
      tag: 'settings',
      summary: "Change the portal's options (admins); fields left out keep their value",
      access: 'admin',
      body: settingsBody,
      responses: { '200': '{ settings }', '400': 'unknown or bad field', '403': 'admins only' },
      handler: async ({ principal, body }) => {
        const portal = await db.repos.portals.get(principal.portalId);
        if (!portal) throw notFound('portal');
        const updated = await db.repos.portals.setSettings(portal.id, { ...portal.settings, ...body });
        await db.repos.audit.append({ portalId: portal.id, actor: `user:${principal.userId}`, action: 'settings.update', details: body });
        return { settings: updated!.settings };
      },
    }),
  ];
}
