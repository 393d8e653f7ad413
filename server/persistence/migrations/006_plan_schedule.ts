import type { Knex } from 'knex';

// Plan changes after the next one (JSON `[{code, from}]`, time order). `next_plan_*` holds only
// one change, so a plan scheduled after a period paid ahead for another plan used to overwrite
// that period's plan; the rest of the schedule lives here.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('licences', (t) => {
    t.text('later_plans').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('licences', (t) => {
    t.dropColumn('later_plans');
  });
}
