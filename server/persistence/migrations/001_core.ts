import type { Knex } from 'knex';

// Times are integer milliseconds since the epoch (bigint): portable between SQLite and PostgreSQL
// and cheap to compare. JSON columns are text for the same reason.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('portals', (t) => {
    t.increments('id').primary();
    t.string('crm', 16).notNullable();
    t.string('name', 200).notNullable();
    t.string('external_id', 200).nullable();
    t.text('settings').notNullable().defaultTo('{}');
    t.bigInteger('created_at').notNullable();
    t.unique(['crm', 'external_id']);
  });

  await knex.schema.createTable('crm_users', (t) => {
    t.increments('id').primary();
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.string('external_id', 100).notNullable();
    t.string('name', 200).nullable();
    t.boolean('is_admin').notNullable().defaultTo(false);
    t.bigInteger('seen_at').notNullable();
    t.unique(['portal_id', 'external_id']);
  });

  await knex.schema.createTable('numbers', (t) => {
    t.increments('id').primary();
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.string('phone', 20).nullable();
    t.string('state', 16).notNullable();
    t.text('state_detail').nullable();
    t.text('qr').nullable();
    t.bigInteger('last_ready_at').nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.index(['portal_id']);
  });

  await knex.schema.createTable('contacts', (t) => {
    t.increments('id').primary();
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.string('phone', 20).nullable();
    t.string('wa_id', 100).notNullable();
    t.string('name', 200).nullable();
    t.string('crm_entity_type', 32).nullable();
    t.string('crm_entity_id', 64).nullable();
    t.bigInteger('created_at').notNullable();
    t.unique(['portal_id', 'wa_id']);
    t.index(['portal_id', 'phone']);
  });

  await knex.schema.createTable('conversations', (t) => {
    t.increments('id').primary();
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.integer('number_id').notNullable().references('numbers.id').onDelete('CASCADE');
    t.integer('contact_id').notNullable().references('contacts.id').onDelete('CASCADE');
    t.bigInteger('last_message_at').nullable();
    t.integer('unread_count').notNullable().defaultTo(0);
    t.bigInteger('created_at').notNullable();
    t.unique(['number_id', 'contact_id']);
    t.index(['portal_id', 'contact_id']);
  });

  await knex.schema.createTable('media', (t) => {
    t.increments('id').primary();
    t.string('sha256', 64).notNullable().unique();
    t.string('mimetype', 120).notNullable();
    t.bigInteger('size').notNullable();
    t.bigInteger('created_at').notNullable();
  });

  await knex.schema.createTable('messages', (t) => {
    t.bigIncrements('id').primary();
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.integer('conversation_id').notNullable().references('conversations.id').onDelete('CASCADE');
    t.integer('number_id').notNullable().references('numbers.id').onDelete('CASCADE');
    t.string('direction', 3).notNullable();
    t.string('type', 16).notNullable();
    t.text('text').nullable();
    t.string('status', 16).notNullable();
    t.text('error').nullable();
    t.string('wa_message_id', 200).nullable();
    t.string('idempotency_key', 200).nullable();
    t.integer('media_id').nullable().references('media.id');
    t.string('media_filename', 255).nullable();
    t.boolean('ptt').notNullable().defaultTo(false);
    t.bigInteger('quoted_message_id').nullable();
    t.boolean('from_phone').notNullable().defaultTo(false);
    t.boolean('revoked').notNullable().defaultTo(false);
    t.bigInteger('created_at').notNullable();
    t.bigInteger('send_started_at').nullable();
    t.bigInteger('updated_at').notNullable();
    // The two guarantees of DESIGN §4 are enforced by the database itself.
    t.unique(['number_id', 'wa_message_id']);
    t.unique(['portal_id', 'idempotency_key']);
    t.index(['conversation_id', 'id']);
  });

  await knex.schema.createTable('jobs', (t) => {
    t.bigIncrements('id').primary();
    t.string('kind', 40).notNullable();
    t.integer('portal_id').nullable();
    t.text('payload').notNullable();
    t.string('state', 10).notNullable(); // pending | running | done | dead
    t.integer('attempts').notNullable().defaultTo(0);
    t.integer('max_attempts').notNullable();
    t.bigInteger('run_at').notNullable();
    t.bigInteger('locked_until').nullable();
    t.string('locked_by', 64).nullable();
    t.text('last_error').nullable();
    t.string('dedupe_key', 200).nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.index(['state', 'run_at']);
    t.unique(['dedupe_key']);
  });

  await knex.schema.createTable('audit_log', (t) => {
    t.bigIncrements('id').primary();
    t.integer('portal_id').nullable();
    t.string('actor', 100).notNullable();
    t.string('action', 100).notNullable();
    t.text('details').notNullable().defaultTo('{}');
    t.bigInteger('at').notNullable();
    t.index(['portal_id', 'at']);
  });

  // What the `none` CRM adapter "mirrors": lets tests and the demo see the CRM jobs' effect.
  await knex.schema.createTable('crm_log', (t) => {
    t.bigIncrements('id').primary();
    t.integer('portal_id').notNullable();
    t.string('kind', 16).notNullable(); // record | alert
    t.text('payload').notNullable();
    t.bigInteger('at').notNullable();
    t.index(['portal_id', 'id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const t of ['crm_log', 'audit_log', 'jobs', 'messages', 'media', 'conversations', 'contacts', 'numbers', 'crm_users', 'portals']) {
    await knex.schema.dropTableIfExists(t);
  }
}
