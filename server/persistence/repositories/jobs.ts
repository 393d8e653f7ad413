import type { Knex } from 'knex';
import type { Job, JobLane, JobRepo } from '../../domain/ports';
import type { Dialect } from '../knex';
import { num, strOrNull, type Row } from './rows';

const DEFAULT_MAX_ATTEMPTS = 12;

function toJob(r: Row): Job {
  return {
    id: num(r.id),
    kind: String(r.kind),
    portalId: r.portal_id === null ? null : num(r.portal_id),
    payload: JSON.parse(String(r.payload)) as Record<string, unknown>,
    attempts: num(r.attempts),
    maxAttempts: num(r.max_attempts),
    lockedBy: strOrNull(r.locked_by),
  };
}

// A claim leases due jobs: pending ones whose time has come, and running ones whose lease ran
// out (their worker died). The attempt is counted at claim time, so a job that kills its worker
// still moves towards `dead`. On PostgreSQL, SKIP LOCKED lets several server processes claim
// side by side without waiting on, or double-claiming, each other's rows.
function claimSql(dialect: Dialect, laneSql: string): string {
  const returning = 'RETURNING id, kind, portal_id, payload, attempts, max_attempts, locked_by';
  const set = `UPDATE jobs SET state = 'running', locked_by = ?, locked_until = ?, attempts = attempts + 1, updated_at = ?`;
  if (dialect === 'pg') {
    return `${set} WHERE id IN (
      SELECT id FROM jobs
      WHERE ((state = 'pending' AND run_at <= ?) OR (state = 'running' AND locked_until < ?)) ${laneSql}
      ORDER BY priority, run_at, id LIMIT ? FOR UPDATE SKIP LOCKED) ${returning}`;
  }
  // SQLite does not turn the OR into two index lookups; with a backlog of thousands of jobs a
  // scan per claim dominated the inbound path. Two index-friendly halves instead.
  return `${set} WHERE id IN (
      SELECT id FROM (
        SELECT id, priority, run_at FROM jobs WHERE state = 'pending' AND run_at <= ? ${laneSql}
        UNION ALL
        SELECT id, priority, run_at FROM jobs WHERE state = 'running' AND locked_until < ? ${laneSql})
      ORDER BY priority, run_at, id LIMIT ?) ${returning}`;
}

/** `AND kind IN (…)` / `NOT IN (…)` with its bindings (kind names are ours, but still bound). */
function laneFilter(lane: JobLane | undefined): { sql: string; kinds: string[] } {
  if (lane?.only?.length) return { sql: `AND kind IN (${lane.only.map(() => '?').join(', ')})`, kinds: lane.only };
  if (lane?.except?.length) return { sql: `AND kind NOT IN (${lane.except.map(() => '?').join(', ')})`, kinds: lane.except };
  return { sql: '', kinds: [] };
}

export function jobRepo(db: Knex | Knex.Transaction, dialect: Dialect): JobRepo {
  return {
    async enqueue(spec) {
      const specs = Array.isArray(spec) ? spec : [spec];
      if (specs.length === 0) return;
      const now = Date.now();
      await db('jobs')
        .insert(
          specs.map((s) => ({
            kind: s.kind,
            portal_id: s.portalId,
            payload: JSON.stringify(s.payload),
            state: 'pending',
            attempts: 0,
            max_attempts: s.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
            run_at: s.runAt ?? now,
            dedupe_key: s.dedupeKey ?? null,
            priority: s.priority ?? 10,
            created_at: now,
            updated_at: now,
          })),
        )
        .onConflict('dedupe_key')
        .ignore();
    },
    async claim(worker, limit, now, leaseMs, lane) {
      const f = laneFilter(lane);
      const sql = claimSql(dialect, f.sql);
      const bindings =
        dialect === 'pg'
          ? [worker, now + leaseMs, now, now, now, ...f.kinds, limit]
          : [worker, now + leaseMs, now, now, ...f.kinds, now, ...f.kinds, limit];
      const res = await db.raw(sql, bindings);
      const rows: Row[] = Array.isArray(res) ? res : res.rows;
      return rows.map(toJob).sort((a, b) => a.id - b.id);
    },
    async complete(id, worker) {
      // Finished jobs are removed: the table holds only work to do and the dead to look at.
      await db('jobs').where({ id, locked_by: worker }).delete();
    },
    async extendLease(ids, worker, until) {
      if (ids.length === 0) return;
      await db('jobs').whereIn('id', ids).andWhere({ locked_by: worker, state: 'running' }).update({ locked_until: until });
    },
    async retryLater(id, worker, runAt, error) {
      await db('jobs')
        .where({ id, locked_by: worker })
        .update({ state: 'pending', run_at: runAt, locked_by: null, locked_until: null, last_error: error.slice(0, 2000), updated_at: Date.now() });
    },
    async bury(id, worker, error) {
      await db('jobs')
        .where({ id, locked_by: worker })
        .update({ state: 'dead', dedupe_key: null, locked_by: null, locked_until: null, last_error: error.slice(0, 2000), updated_at: Date.now() });
    },
    async defer(id, worker, runAt, note) {
      await db('jobs')
        .where({ id, locked_by: worker })
        .update({
          state: 'pending',
          run_at: runAt,
          locked_by: null,
          locked_until: null,
          attempts: db.raw('CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END'),
          last_error: note.slice(0, 2000),
          updated_at: Date.now(),
        });
    },
    async enqueueMissingSends(kind, messageId) {
      // Send jobs carry the key `send:<id>` (a retry's `send:<id>:retry:<t>`), so "has a job" is a
      // key look-up; the payload is built the way enqueue() writes it.
      const now = Date.now();
      const orphans = db('messages as m')
        .select(
          db.raw('?', [kind]),
          'm.portal_id',
          db.raw(`'{"messageId":' || m.id || '}'`),
          db.raw("'pending'"),
          db.raw('0'),
          db.raw('?', [DEFAULT_MAX_ATTEMPTS]),
          db.raw('?', [now]),
          db.raw(`'send:' || m.id`),
          db.raw('0'),
          db.raw('?', [now]),
          db.raw('?', [now]),
        )
        .where({ 'm.direction': 'out', 'm.status': 'queued' })
        .whereNull('m.wa_message_id')
        .whereNotExists(
          db('jobs as j')
            .select(db.raw('1'))
            .where((q) => q.whereRaw(`j.dedupe_key = 'send:' || m.id`).orWhereRaw(`j.dedupe_key LIKE 'send:' || m.id || ':retry:%'`)),
        );
      if (messageId !== undefined) orphans.andWhere('m.id', messageId);
      const res = await db.raw(
        `INSERT INTO jobs (kind, portal_id, payload, state, attempts, max_attempts, run_at, dedupe_key, priority, created_at, updated_at) ${orphans.toQuery()} ON CONFLICT DO NOTHING RETURNING id`,
      );
      const rows: Row[] = Array.isArray(res) ? res : res.rows;
      return rows.length;
    },
    async release(portalId, kinds, now) {
      if (kinds.length === 0) return 0;
      const n = await db('jobs').where({ portal_id: portalId, state: 'pending' }).whereIn('kind', kinds).andWhere('run_at', '>', now).update({ run_at: now, updated_at: Date.now() });
      return Number(n);
    },
    async nextRunAt(lane) {
      const q = db('jobs').where({ state: 'pending' });
      if (lane?.only?.length) q.whereIn('kind', lane.only);
      else if (lane?.except?.length) q.whereNotIn('kind', lane.except);
      const row = await q.min({ t: 'run_at' }).first();
      return row && row.t !== null && row.t !== undefined ? Number(row.t) : null;
    },
    async countByState() {
      const rows = (await db('jobs').select('state').count({ n: '*' }).groupBy('state')) as Row[];
      return Object.fromEntries(rows.map((r) => [String(r.state), Number(r.n)]));
    },
  };
}
