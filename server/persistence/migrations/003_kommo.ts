import type { Knex } from 'knex';

// Kommo: one row per installed account (tokens sealed with SECRET_KEY), the CRM records made for
// each WhatsApp phone, the notes already written (so a retried job never writes one twice), and
// the per-user alert queue the widget's `everywhere` script reads.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('kommo_accounts', (t) => {
    t.increments('id').primary();
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.string('account_id', 32).notNullable().unique();
    t.string('domain', 200).notNullable();
    t.text('tokens').nullable(); // SecretBox JSON {access_token, refresh_token, expires_at}
    t.integer('token_version').notNullable().defaultTo(0);
    t.bigInteger('installed_at').notNullable();
    t.bigInteger('disabled_at').nullable();
    t.bigInteger('delete_after').nullable();
    t.unique(['portal_id']);
  });

  await knex.schema.createTable('kommo_phone_links', (t) => {
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.string('phone', 20).notNullable();
    t.string('contact_id', 32).notNullable();
    t.string('lead_id', 32).nullable();
    t.bigInteger('created_at').notNullable();
    t.primary(['portal_id', 'phone']);
  });

  await knex.schema.createTable('kommo_notes', (t) => {
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.string('message_key', 80).notNullable();
    t.string('entity_type', 16).notNullable();
    t.string('entity_id', 32).notNullable();
    t.string('note_id', 32).nullable();
    t.bigInteger('created_at').notNullable();
    t.primary(['portal_id', 'message_key', 'entity_type', 'entity_id']);
  });

  await knex.schema.createTable('kommo_alerts', (t) => {
    t.increments('id').primary();
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.string('user_id', 32).notNullable();
    t.text('text').notNullable();
    t.text('link').nullable();
    t.bigInteger('created_at').notNullable();
    t.index(['portal_id', 'user_id', 'id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('kommo_alerts');
  await knex.schema.dropTableIfExists('kommo_notes');
  await knex.schema.dropTableIfExists('kommo_phone_links');
  await knex.schema.dropTableIfExists('kommo_accounts');
}
