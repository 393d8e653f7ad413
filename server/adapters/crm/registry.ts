import type { Knex } from 'knex';
import type { CrmAdapter, CrmRegistry } from '../../domain/ports';
import type { CrmKind } from '../../domain/types';
import { noneCrm } from './none/adapter';

/** Adding a CRM: one folder beside this file and one line here. */
export function createCrmRegistry(knex: Knex, extra: Partial<Record<CrmKind, CrmAdapter>> = {}): CrmRegistry {
  const adapters: Partial<Record<CrmKind, CrmAdapter>> = { none: noneCrm(knex), ...extra };
  return (kind) => {
    const a = adapters[kind];
    // Thrown inside a job: the job retries and, if the adapter never comes, ends up dead and visible.
    if (!a) throw new Error(`no CRM adapter for "${kind}" in this build`);
    return a;
  };
}
