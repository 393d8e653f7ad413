import path from 'node:path';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { migrationSource } from '../../server/persistence/migrations';
import { testDatabases } from '../helpers/databases';
import { tempDir } from '../helpers/server';

/** 007_licence_suspensions rebuilds past suspensions from the audit log of a database that has them. */
for (const target of testDatabases()) {
  describe(`licence migrations on ${target.name}`, () => {
    let knex: Knex;
    before(async () => {
      const url = await target.create();
      knex = url
        ? knexFactory({ client: 'pg', connection: url })
        : knexFactory({ client: 'sqlite3', connection: { filename: path.join(tempDir(), 'm.sqlite') }, useNullAsDefault: true });
    });
    after(async () => {
      await knex?.destroy();
      await target.dropAll();
    });

    it('007 keeps past suspensions as intervals, from the audit log, and the current one from suspended_at', async () => {
      // Up to 006, the schema before suspension intervals existed.
      for (let i = 0; i < 6; i++) await knex.migrate.up({ migrationSource });
      const ids: number[] = [];
      for (const name of ['lifted', 'still suspended', 'twice', 'never']) {
        const [row] = await knex('portals').insert({ crm: 'none', name, external_id: name, created_at: 1 }).returning('id');
        ids.push(Number((row as { id: number }).id ?? row));
      }
      const [lifted, still, twice, never] = ids as [number, number, number, number];
      for (const id of ids) await knex('licences').insert({ portal_id: id, trial_started_at: 0, trial_ends_at: 10, expiry_changed_at: 0, updated_at: 900 });
      await knex('licences').where({ portal_id: still }).update({ suspended_reason: 'abuse', suspended_at: 450 });
      const log = (portalId: number, action: string, at: number, reason?: string) =>
        knex('audit_log').insert({ portal_id: portalId, actor: 'operator:cli:test', action, details: JSON.stringify(reason ? { reason } : {}), at });
      await log(lifted, 'licence.suspend', 100, 'chargeback');
      await log(lifted, 'licence.suspend', 150, 'chargeback, still'); // a second suspend keeps the first start
      await log(lifted, 'licence.unsuspend', 300);
      await log(still, 'licence.suspend', 451, 'abuse');
      await log(twice, 'licence.suspend', 100, 'one');
      await log(twice, 'licence.unsuspend', 200);
      await log(twice, 'licence.suspend', 500, 'two');
      await log(twice, 'licence.unsuspend', 600);
      await log(never, 'licence.payment', 100);
      await knex.migrate.up({ migrationSource });
      const rows = (await knex('licence_suspensions').orderBy(['portal_id', 'from_at'])).map((r) => ({
        portal: Number(r.portal_id),
        from: Number(r.from_at),
        until: r.until_at === null ? null : Number(r.until_at),
        reason: r.reason as string,
      }));
      expect(rows).to.deep.equal([
        { portal: lifted, from: 100, until: 300, reason: 'chargeback' },
        { portal: still, from: 450, until: null, reason: 'abuse' },
        { portal: twice, from: 100, until: 200, reason: 'one' },
        { portal: twice, from: 500, until: 600, reason: 'two' },
      ]);
      await knex.migrate.down({ migrationSource });
      expect(await knex.schema.hasTable('licence_suspensions')).to.equal(false);
    });
  });
}
