import type { Knex } from 'knex';

// Jobs get a priority (lower runs first): a manager's message must not wait behind a backlog
// of CRM mirroring after a burst of inbound messages or a CRM outage.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('jobs', (t) => {
    t.integer('priority').notNullable().defaultTo(10);
    t.index(['state', 'priority', 'run_at'], 'jobs_state_priority_run_at_index');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('jobs', (t) => {
    t.dropIndex(['state', 'priority', 'run_at'], 'jobs_state_priority_run_at_index');
    t.dropColumn('priority');
  });
}
