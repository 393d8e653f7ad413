import { createRequire } from 'node:module';
import type { Knex } from 'knex';
import { ConnectionGate, type GateMode } from './connectionGate';

/**
 * knex's sqlite3 client, with each connection keeping its prepared statements.
 *
 * knex runs every query through `Database#all` / `#run`, which prepares the SQL, runs it and
 * finalises it: three trips through libuv's thread pool per query. Our queries are a few hundred
 * fixed texts (knex builds the same SQL for the same shape), so a small LRU of prepared statements
 * per connection turns that into one trip. On the outbound path (~25 queries a message on one
 * connection) that was the difference between keeping up with 100 messages/s and falling behind
 * (`npm run bench`). Semantics are the driver's own: like `Database#all`, a statement runs the first
 * SQL statement of its text; a statement that failed is dropped and prepared again next time.
 *
 * It also hands the one connection out through a `ConnectionGate`: plain statements share it (a
 * few in the driver at once), a transaction has it to itself, foreground work goes first.
 */

// knex ships no types for its dialect classes; these are the parts we touch.
interface Sqlite3Statement {
  all(params: unknown[], cb: (this: RunContext, err: Error | null, rows?: unknown[]) => void): void;
  run(params: unknown[], cb: (this: RunContext, err: Error | null) => void): void;
  finalize(cb?: () => void): void;
}
interface RunContext {
  lastID?: number;
  changes?: number;
}
interface Sqlite3Connection {
  prepare(sql: string): Sqlite3Statement;
}
interface QueryObject {
  sql?: string;
  bindings?: unknown[];
  method?: string;
  returning?: unknown;
  response?: unknown;
  context?: RunContext;
}
type ClientClass = new (config: Knex.Config) => {
  _query(connection: unknown, obj: QueryObject): Promise<QueryObject>;
  destroyRawConnection(connection: unknown): Promise<void>;
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<void>;
  transaction(...args: unknown[]): unknown;
};
interface TransactionInstance {
  client: { acquireConnection(mode?: GateMode): Promise<unknown>; releaseConnection(connection: unknown): Promise<void> };
  txid: string;
}
type TransactionClass = new (...args: unknown[]) => TransactionInstance;

const requireKnex = createRequire(require.resolve('knex'));
const BaseClient = requireKnex('./lib/dialects/sqlite3') as ClientClass;
const BaseTransaction = requireKnex('./lib/dialects/sqlite3/execution/sqlite-transaction') as TransactionClass;

/**
 * knex's SQLite transaction, asking the client for the connection exclusively. The body is knex's
 * own `Transaction#acquireConnection` (knex 3.x) with the mode added.
 */
class ExclusiveTransaction extends BaseTransaction {
  async acquireConnection(config: { connection?: unknown } | undefined, cb: (connection: { __knexTxId?: string }) => Promise<unknown>): Promise<unknown> {
    const configConnection = config?.connection as { __knexTxId?: string } | undefined;
    const connection = (configConnection ?? (await this.client.acquireConnection('exclusive'))) as { __knexTxId?: string };
    try {
      connection.__knexTxId = this.txid;
      return await cb(connection);
    } finally {
      if (!configConnection) {
        delete connection.__knexTxId;
        void this.client.releaseConnection(connection);
      }
    }
  }
}

const MAX_STATEMENTS = 256;

/** Per connection: SQL text → prepared statement, in least-recently-used order. */
const caches = new WeakMap<object, Map<string, Sqlite3Statement>>();

function statementFor(connection: Sqlite3Connection, sql: string): { cache: Map<string, Sqlite3Statement>; statement: Sqlite3Statement } {
  let cache = caches.get(connection);
  if (!cache) {
    cache = new Map();
    caches.set(connection, cache);
  }
  let statement = cache.get(sql);
  if (statement) {
    cache.delete(sql); // re-inserted below: most recently used last
  } else {
    statement = connection.prepare(sql);
    if (cache.size >= MAX_STATEMENTS) {
      const [oldestSql, oldest] = cache.entries().next().value as [string, Sqlite3Statement];
      cache.delete(oldestSql);
      oldest.finalize();
    }
  }
  cache.set(sql, statement);
  return { cache, statement };
}

export class CachedStatementsSqlite3 extends BaseClient {
  // The pool has one connection. The gate decides who may use it and in which order; holders in
  // shared mode use one lease of it from the pool together, the last one out gives it back.
  private readonly gate = new ConnectionGate();
  private lease: Promise<unknown> | null = null;
  private holders = 0;

  override async acquireConnection(mode: GateMode = 'shared'): Promise<unknown> {
    await this.gate.acquire(mode);
    this.holders++;
    try {
      this.lease ??= super.acquireConnection();
      return await this.lease;
    } catch (err) {
      if (--this.holders === 0) this.lease = null;
      this.gate.release();
      throw err;
    }
  }

  override async releaseConnection(connection: unknown): Promise<void> {
    if (--this.holders === 0) {
      this.lease = null;
      await super.releaseConnection(connection);
    }
    this.gate.release();
  }

  override transaction(...args: unknown[]): unknown {
    return new ExclusiveTransaction(this, ...args);
  }

  override _query(connection: unknown, obj: QueryObject): Promise<QueryObject> {
    if (!obj.sql) throw new Error('The query is empty');
    const sql = obj.sql;
    // Same choice of call as knex's own client: `run` gives lastID/changes, `all` gives rows.
    const writes = obj.method === 'insert' || obj.method === 'update';
    const useRun = (writes && !obj.returning) || obj.method === 'counter' || obj.method === 'del';
    const { cache, statement } = statementFor(connection as Sqlite3Connection, sql);
    const drop = () => {
      if (cache.get(sql) === statement) cache.delete(sql);
      statement.finalize();
    };
    return new Promise((resolve, reject) => {
      const done = function (this: RunContext, err: Error | null, rows?: unknown[]) {
        if (err) {
          drop();
          reject(err);
          return;
        }
        obj.response = rows;
        // A copy: the statement is reused, and knex reads lastID/changes after this returns.
        obj.context = { lastID: this.lastID, changes: this.changes };
        resolve(obj);
      };
      if (useRun) statement.run(obj.bindings ?? [], done);
      else statement.all(obj.bindings ?? [], done);
    });
  }

  override async destroyRawConnection(connection: unknown): Promise<void> {
    // SQLite will not close a connection with statements still prepared.
    const cache = caches.get(connection as object);
    if (cache) {
      await Promise.all([...cache.values()].map((s) => new Promise<void>((r) => s.finalize(() => r()))));
      cache.clear();
    }
    return super.destroyRawConnection(connection);
  }
}
