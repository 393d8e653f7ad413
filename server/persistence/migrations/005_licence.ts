import type { Knex } from 'knex';

// Licences (one row per portal), the payments and maintenance credits that make up its access,
// declared maintenance windows, the expiry alerts already handled, and the account console:
// accounts, their server-side sessions, the portals linked to them and one-time link codes.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('licences', (t) => {
    t.integer('portal_id').primary().references('portals.id').onDelete('CASCADE');
    t.string('billing', 10).notNullable().defaultTo('direct');
    t.string('plan_code', 40).nullable();
    t.string('next_plan_code', 40).nullable();
    t.bigInteger('next_plan_from').nullable();
    t.bigInteger('trial_started_at').notNullable();
    t.bigInteger('trial_ends_at').notNullable();
    t.bigInteger('paid_until').nullable();
    t.boolean('perpetual').notNullable().defaultTo(false);
    t.text('suspended_reason').nullable();
    t.bigInteger('suspended_at').nullable();
    t.bigInteger('expiry_changed_at').notNullable();
    t.bigInteger('sessions_closed_at').nullable();
    t.string('market_status', 4).nullable();
    t.integer('version').notNullable().defaultTo(0);
    t.bigInteger('updated_at').notNullable();
  });

  await knex.schema.createTable('licence_payments', (t) => {
    t.increments('id').primary();
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.string('plan_code', 40).notNullable();
    t.decimal('amount_eur', 12, 2).nullable();
    t.bigInteger('from_at').notNullable();
    t.bigInteger('until_at').notNullable();
    t.string('reference', 200).nullable();
    t.string('actor', 100).notNullable();
    t.bigInteger('at').notNullable();
    t.index(['portal_id', 'id']);
  });

  await knex.schema.createTable('maintenance_windows', (t) => {
    t.increments('id').primary();
    t.bigInteger('start_at').notNullable();
    t.bigInteger('end_at').notNullable();
    t.text('reason').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('applied_at').nullable();
  });

  // One credit per (window, portal): the rule may run any number of times.
  await knex.schema.createTable('maintenance_credits', (t) => {
    t.integer('window_id').notNullable().references('maintenance_windows.id').onDelete('CASCADE');
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.integer('days').notNullable();
    t.bigInteger('from_at').notNullable();
    t.bigInteger('until_at').notNullable();
    t.bigInteger('at').notNullable();
    t.primary(['window_id', 'portal_id']);
  });

  await knex.schema.createTable('licence_alerts', (t) => {
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.bigInteger('expires_at').notNullable();
    t.integer('threshold').notNullable();
    t.bigInteger('at').notNullable();
    t.primary(['portal_id', 'expires_at', 'threshold']);
  });

  await knex.schema.createTable('console_accounts', (t) => {
    t.increments('id').primary();
    t.string('public_id', 20).notNullable().unique();
    t.string('email', 254).notNullable().unique();
    t.string('password_hash', 200).notNullable();
    t.integer('failed_count').notNullable().defaultTo(0);
    t.bigInteger('locked_until').nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
  });

  await knex.schema.createTable('console_sessions', (t) => {
    t.string('id_hash', 64).primary();
    t.integer('account_id').notNullable().references('console_accounts.id').onDelete('CASCADE');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.index(['account_id']);
  });

  await knex.schema.createTable('console_links', (t) => {
    t.integer('account_id').notNullable().references('console_accounts.id').onDelete('CASCADE');
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.bigInteger('created_at').notNullable();
    t.primary(['account_id', 'portal_id']);
    t.index(['portal_id']);
  });

  await knex.schema.createTable('console_link_codes', (t) => {
    t.string('code_hash', 64).primary();
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.string('created_by', 100).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.bigInteger('used_at').nullable();
    t.integer('used_by').nullable();
  });

  // The audit log is append-only in the database too, not only in the code: updates and deletes
  // are refused by a trigger on both dialects.
  if (knex.client.config.client === 'pg') {
    await knex.raw(`CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$`);
    await knex.raw(`CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()`);
  } else {
    await knex.raw(`CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`);
    await knex.raw(`CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`);
  }

  // Portals installed before licensing existed get a fresh trial from now (default length),
  // not one counted from their install, which would have ended long ago.
  const now = Date.now();
  const portals = (await knex('portals').select('id')) as { id: number }[];
  for (const p of portals) {
    await knex('licences').insert({
      portal_id: p.id,
      trial_started_at: now,
      trial_ends_at: now + 3 * 24 * 3600_000,
      expiry_changed_at: now,
      updated_at: now,
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  if (knex.client.config.client === 'pg') {
    await knex.raw('DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log');
    await knex.raw('DROP FUNCTION IF EXISTS audit_log_append_only()');
  } else {
    await knex.raw('DROP TRIGGER IF EXISTS audit_log_no_update');
    await knex.raw('DROP TRIGGER IF EXISTS audit_log_no_delete');
  }
  for (const t of [
    'console_link_codes',
    'console_links',
    'console_sessions',
    'console_accounts',
    'licence_alerts',
    'maintenance_credits',
    'maintenance_windows',
    'licence_payments',
    'licences',
  ]) {
    await knex.schema.dropTableIfExists(t);
  }
}
