import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { WalCheckpointer } from './checkpointer';
import { migrationSource } from './migrations';
import { CachedStatementsSqlite3 } from './sqliteClient';

// PostgreSQL returns BIGINT (20) and NUMERIC counts as strings; our values are millisecond
// timestamps and ids, well inside Number.MAX_SAFE_INTEGER.
pg.types.setTypeParser(20, (v) => Number(v));

export type Dialect = 'sqlite' | 'pg';

export interface KnexHandle {
  knex: Knex;
  dialect: Dialect;
  /** Closes the pool (and, on SQLite, the checkpointer). */
  close(): Promise<void>;
}

/** Opens SQLite in `dataDir` (WAL, foreign keys on) or PostgreSQL when a URL is given, and migrates. */
export async function openKnex(opts: { databaseUrl?: string | null; dataDir: string; sqliteFile?: string }): Promise<KnexHandle> {
  let handle: KnexHandle;
  if (opts.databaseUrl) {
    const knex = knexFactory({ client: 'pg', connection: opts.databaseUrl, pool: { min: 0, max: 10 } });
    handle = { dialect: 'pg', knex, close: () => knex.destroy() };
  } else {
    fs.mkdirSync(opts.dataDir, { recursive: true });
    const filename = opts.sqliteFile ?? path.join(opts.dataDir, 'incrm.sqlite');
    const knex = knexFactory({
      client: CachedStatementsSqlite3 as unknown as typeof knexFactory.Client,
      connection: { filename },
      useNullAsDefault: true,
      // One connection: SQLite serialises writers anyway, and one connection keeps
      // transactions from waiting on SQLITE_BUSY.
      pool: {
        min: 1,
        max: 1,
        afterCreate: (conn: { exec(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null, c: unknown) => void) => {
          conn.exec(
            // Checkpoints happen on their own connection (WalCheckpointer), not inside our commits;
            // a 64 MB page cache and mmap keep history pages of long conversations off read syscalls.
            'PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -65536; PRAGMA mmap_size = 268435456;',
            (err) => done(err, conn),
          );
        },
        },
    });
    await knex.raw('select 1'); // creates the file and switches it to WAL before the checkpointer opens it
    const checkpointer = new WalCheckpointer(filename);
    handle = {
      dialect: 'sqlite',
      knex,
      close: async () => {
        await knex.destroy();
        await checkpointer.close();
      },
    };
  }
  await handle.knex.migrate.latest({ migrationSource });
  return handle;
}
