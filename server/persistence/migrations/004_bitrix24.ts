import type { Knex } from 'knex';

// Bitrix24: one row per installed portal (keyed by member_id; OAuth pair and application_token
// sealed with SECRET_KEY), the CRM records made or found for each WhatsApp phone (the row is
// also the claim that makes "create once per phone" hold across processes), and the timeline
// comments written per message (pending until Bitrix24 confirmed, so an uncertain write is
// checked before it is written again).
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('bitrix24_portals', (t) => {
    t.increments('id').primary();
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.string('member_id', 64).notNullable().unique();
    t.string('domain', 255).notNullable();
    t.string('client_endpoint', 500).notNullable();
    t.string('server_endpoint', 500).notNullable();
    t.text('tokens').nullable(); // SecretBox JSON {access_token, refresh_token, expires_at, scope}
    t.integer('token_version').notNullable().defaultTo(0);
    t.text('application_token').nullable(); // SecretBox
    t.string('state', 16).notNullable(); // active | revoked | uninstalled
    t.text('state_reason').nullable();
    t.string('installer_user_id', 32).nullable();
    t.bigInteger('installed_at').notNullable();
    t.bigInteger('disabled_at').nullable();
    t.bigInteger('delete_after').nullable();
    t.unique(['portal_id']);
  });

  await knex.schema.createTable('bitrix24_phone_links', (t) => {
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.string('phone', 20).notNullable();
    t.string('contact_id', 32).nullable();
    t.string('entity_type', 8).nullable(); // deal | lead
    t.string('entity_id', 32).nullable();
    t.boolean('created_by_us').notNullable().defaultTo(false);
    t.string('claimed_by', 64).nullable();
    t.bigInteger('claimed_at').nullable();
    t.bigInteger('created_at').notNullable();
    t.primary(['portal_id', 'phone']);
    t.index(['portal_id', 'contact_id']);
  });

  await knex.schema.createTable('bitrix24_comments', (t) => {
    t.integer('portal_id').notNullable().references('portals.id').onDelete('CASCADE');
    t.string('message_key', 80).notNullable();
    t.string('entity_type', 16).notNullable();
    t.string('entity_id', 32).notNullable();
    t.string('comment_id', 32).nullable();
    t.string('state', 8).notNullable(); // pending | done
    t.bigInteger('created_at').notNullable();
    t.primary(['portal_id', 'message_key', 'entity_type', 'entity_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('bitrix24_comments');
  await knex.schema.dropTableIfExists('bitrix24_phone_links');
  await knex.schema.dropTableIfExists('bitrix24_portals');
}
