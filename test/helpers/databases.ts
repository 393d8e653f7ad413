import crypto from 'node:crypto';
import knexFactory from 'knex';

/**
 * The databases a suite runs on: SQLite always, PostgreSQL when TEST_DATABASE_URL is set (CI sets it;
 * with CI set and no URL the PostgreSQL suite fails instead of silently not running). Each
 * PostgreSQL run gets its own schema, so runs never see each other's tables.
 */
export interface TestDatabase {
  name: 'sqlite' | 'postgresql';
  /** DATABASE_URL for the server (undefined: SQLite in DATA_DIR). */
  create(): Promise<string | undefined>;
  dropAll(): Promise<void>;
}

export function testDatabases(): TestDatabase[] {
  const list: TestDatabase[] = [{ name: 'sqlite', create: async () => undefined, dropAll: async () => {} }];
  const base = process.env.TEST_DATABASE_URL;
  if (!base && process.env.CI) {
    list.push({
      name: 'postgresql',
      create: async () => {
        throw new Error('TEST_DATABASE_URL is not set: the PostgreSQL suite must run in CI');
      },
      dropAll: async () => {},
    });
    return list;
  }
  if (!base) return list;
  const schemas: string[] = [];
  list.push({
    name: 'postgresql',
    create: async () => {
      const schema = `incrm_t_${process.pid}_${crypto.randomBytes(3).toString('hex')}`;
      const k = knexFactory({ client: 'pg', connection: base });
      try {
        await k.raw(`CREATE SCHEMA ${schema}`);
      } finally {
        await k.destroy();
      }
      schemas.push(schema);
      const sep = base.includes('?') ? '&' : '?';
      return `${base}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    },
    dropAll: async () => {
      const k = knexFactory({ client: 'pg', connection: base });
      try {
        for (const s of schemas.splice(0)) await k.raw(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      } finally {
        await k.destroy();
      }
    },
  });
  return list;
}
