import { z } from 'zod';
import { notFound } from '../../domain/errors';
import type { Database } from '../../domain/ports';
import type { PortalSettings } from '../../domain/types';
import { route, type RouteDef } from '../api';

// The portal's own options (settings tab): what happens to a message from an unknown number, in
// which pipeline and stage, who is responsible, whether messages are mirrored, who gets alerts.
// A field left out keeps its value; `null` unsets it (back to the default: any pipeline, its first
// stage, the CRM's default responsible user, alerts to the responsible user).
const id = z.string().min(1).max(64);
const settingsBody = z
  .object({
    unknownNumber: z.enum(['create', 'ignore']).optional(),
    pipelineId: id.nullable().optional(),
    stageId: id.nullable().optional(),
    createAs: z.enum(['deal', 'lead']).optional(),
    responsibleUserId: id.nullable().optional(),
    mirror: z.boolean().optional(),
    alertUserIds: z.array(id).max(200).nullable().optional(),
  })
  .strict();

type SettingsBody = z.infer<typeof settingsBody>;

/**
 * The settings after a PUT: the body's fields over the stored ones, `null` deleting a key. A stage
 * belongs to its pipeline: a new pipeline without a stage of its own drops the old stage.
 */
export function mergeSettings(old: PortalSettings, body: SettingsBody): PortalSettings {
  const next: Record<string, unknown> = { ...old };
  for (const [k, v] of Object.entries(body)) {
    if (v === undefined) continue;
    if (v === null) delete next[k];
    else next[k] = v;
  }
  if (body.pipelineId !== undefined && (body.pipelineId ?? undefined) !== old.pipelineId && body.stageId === undefined) delete next.stageId;
  return next as PortalSettings;
}

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
      summary: "Change the portal's options (admins); fields left out keep their value, null unsets one",
      access: 'admin',
      body: settingsBody,
      responses: { '200': '{ settings }', '400': 'unknown or bad field', '403': 'admins only' },
      handler: async ({ principal, body }) => {
        const portal = await db.repos.portals.get(principal.portalId);
        if (!portal) throw notFound('portal');
        const updated = await db.repos.portals.setSettings(portal.id, mergeSettings(portal.settings, body));
        await db.repos.audit.append({ portalId: portal.id, actor: `user:${principal.userId}`, action: 'settings.update', details: body });
        return { settings: updated!.settings };
      },
    }),
  ];
}
