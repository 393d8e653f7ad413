import type { Knex } from 'knex';
import type { CrmAdapter } from '../../../domain/ports';

/**
 * The CRM of a portal that has none (simulator portals, the demo before a CRM is linked): every
 * call is recorded in `crm_log`, so the pipeline's CRM jobs can be seen and tested end to end.
 */
export function noneCrm(knex: Knex): CrmAdapter {
  const log = async (portalId: number, kind: string, payload: unknown) => {
    await knex('crm_log').insert({ portal_id: portalId, kind, payload: JSON.stringify(payload), at: Date.now() });
  };
  return {
    async phonesOf(_portal, entity) {
      // Without a CRM the "card" is the phone itself.
      return entity.type === 'phone' ? [entity.id] : [];
    },
    async findOrCreateByPhone(portal, phone, name) {
      await log(portal.id, 'contact', { phone, name });
      return { type: 'phone', id: phone };
    },
    async record(portal, entity, message) {
      await log(portal.id, 'record', { entity, ...message });
    },
    async alert(portal, userIds, text, link) {
      await log(portal.id, 'alert', { userIds, text, link });
    },
  };
}
