import { expect } from 'chai';
import { JobRunner, backoffDelay, type JobHandler } from '../../server/domain/jobs';
import type { Job } from '../../server/domain/ports';
import { openDatabase, type KnexDatabase } from '../../server/persistence/database';
import { migrationSource } from '../../server/persistence/migrations';
import { testDatabases } from '../helpers/databases';
import { tempDir, waitFor } from '../helpers/server';

for (const target of testDatabases()) {
  describe(`persistence on ${target.name}`, () => {
    let db: KnexDatabase;
    let url: string | undefined;
    let dir: string;

    before(async () => {
      url = await target.create();
      dir = tempDir();
      db = await openDatabase({ databaseUrl: url, dataDir: dir });
    });
    after(async () => {
      await db?.close();
      await target.dropAll();
    });

    async function seed() {
      const portal = await db.repos.portals.create({ crm: 'none', name: 'P' });
      const number = await db.repos.numbers.create(portal.id);
      const contact = await db.repos.contacts.upsert(portal.id, { waId: '15550000002@c.us', phone: '+15550000002', name: 'Ann' });
      const conv = await db.repos.conversations.upsert(portal.id, number.id, contact.id);
      return { portal, number, contact, conv };
    }

    it('migrates idempotently and enforces foreign keys', async () => {
      await db.knex.migrate.latest({ migrationSource });
      const [, pending] = (await db.knex.migrate.list({ migrationSource })) as [unknown[], unknown[]];
      expect(pending).to.have.length(0);
      let refused = false;
      try {
        await db.knex('numbers').insert({ portal_id: 999999, state: 'qr', created_at: 1, updated_at: 1 });
      } catch {
        refused = true;
      }
      expect(refused, 'a number of a missing portal is refused').to.equal(true);
    });

    it('keeps one contact and one conversation per WhatsApp id, never blanking a known name', async () => {
      const { portal, number, contact, conv } = await seed();
      const again = await db.repos.contacts.upsert(portal.id, { waId: '15550000002@c.us', phone: null, name: null });
      expect(again.id).to.equal(contact.id);
      expect(again.name).to.equal('Ann');
      expect(again.phone).to.equal('+15550000002');
      const conv2 = await db.repos.conversations.upsert(portal.id, number.id, contact.id);
      expect(conv2.id).to.equal(conv.id);
      const other = await db.repos.portals.create({ crm: 'none', name: 'Q' });
      expect(await db.repos.conversations.get(other.id, conv.id), 'another portal does not see it').to.equal(null);
    });

    it('stores an inbound message once per (number, WhatsApp id)', async () => {
      const { portal, number, conv } = await seed();
      const m = { portalId: portal.id, conversationId: conv.id, numberId: number.id, direction: 'in' as const, type: 'text' as const, text: 'hi', status: 'delivered' as const, waMessageId: 'W1', createdAt: Date.now() };
      const first = await db.repos.messages.insertInboundOnce(m);
      const results = await Promise.all([1, 2, 3].map(() => db.repos.messages.insertInboundOnce(m)));
      expect(first).to.not.equal(null);
      expect(results.every((r) => r === null)).to.equal(true);
      const n = await db.knex('messages').where({ number_id: number.id, wa_message_id: 'W1' }).count({ n: '*' });
      expect(Number(n[0]!.n)).to.equal(1);
    });

    it('returns the stored outbound message for a repeated idempotency key', async () => {
      const { portal, number, conv } = await seed();
      const m = { portalId: portal.id, conversationId: conv.id, numberId: number.id, direction: 'out' as const, type: 'text' as const, text: 'x', status: 'queued' as const, idempotencyKey: `k-${portal.id}`, createdAt: Date.now() };
      const a = await db.repos.messages.insertOutbound(m);
      const b = await db.repos.messages.insertOutbound(m);
      expect(a.created).to.equal(true);
      expect(b.created).to.equal(false);
      expect(b.message.id).to.equal(a.message.id);
    });

    it('moves a status only from the allowed states', async () => {
      const { portal, number, conv } = await seed();
      const { message } = await db.repos.messages.insertOutbound({ portalId: portal.id, conversationId: conv.id, numberId: number.id, direction: 'out', type: 'text', text: 's', status: 'queued', idempotencyKey: `s-${portal.id}`, createdAt: Date.now() });
      expect((await db.repos.messages.setStatus(message.id, 'read', null, ['queued', 'sent', 'delivered']))?.status).to.equal('read');
      expect(await db.repos.messages.setStatus(message.id, 'delivered', null, ['queued', 'sent'])).to.equal(null);
      expect((await db.repos.messages.getAny(message.id))?.status).to.equal('read');
    });

    it('pages history newest first with an id cursor', async () => {
      const { portal, number, conv } = await seed();
      for (let i = 0; i < 7; i++) {
        await db.repos.messages.insertInboundOnce({ portalId: portal.id, conversationId: conv.id, numberId: number.id, direction: 'in', type: 'text', text: `m${i}`, status: 'delivered', waMessageId: `P${portal.id}-${i}`, createdAt: Date.now() + i });
      }
      const p1 = await db.repos.messages.page(portal.id, conv.id, null, 3);
      expect(p1.map((m) => m.text)).to.deep.equal(['m6', 'm5', 'm4']);
      const p2 = await db.repos.messages.page(portal.id, conv.id, p1[2]!.id, 3);
      expect(p2.map((m) => m.text)).to.deep.equal(['m3', 'm2', 'm1']);
    });

    it('leases jobs: one claim per job, expired leases come back, dedupe keys hold', async () => {
      await db.knex('jobs').delete();
      for (let i = 0; i < 10; i++) await db.repos.jobs.enqueue({ kind: 'k', portalId: null, payload: { i }, dedupeKey: `d-${i % 5}` });
      expect(Number((await db.knex('jobs').count({ n: '*' }))[0]!.n), 'dedupe keys keep one live job each').to.equal(5);
      const now = Date.now();
      const [a, b] = await Promise.all([db.repos.jobs.claim('A', 3, now, 1000), db.repos.jobs.claim('B', 3, now, 1000)]);
      const ids = [...a, ...b].map((j) => j.id);
      expect(new Set(ids).size).to.equal(ids.length);
      expect(ids.length).to.equal(5);
      // Worker A dies: after its lease its jobs are claimable again, with the attempt counted.
      const later = await db.repos.jobs.claim('C', 10, now + 5000, 1000);
      expect(later.map((j) => j.id).sort()).to.deep.equal(ids.sort());
      expect(later.every((j) => j.attempts === 2)).to.equal(true);
      // A's late completion does not remove C's job.
      await db.repos.jobs.complete(a[0]!.id, 'A');
      expect(await db.knex('jobs').where({ id: a[0]!.id }).first()).to.not.equal(undefined);
      for (const j of later) await db.repos.jobs.complete(j.id, 'C');
      expect(Number((await db.knex('jobs').count({ n: '*' }))[0]!.n)).to.equal(0);
    });

    it('claims urgent jobs first and only the kinds of its lane', async () => {
      await db.knex('jobs').delete();
      for (let i = 0; i < 5; i++) await db.repos.jobs.enqueue({ kind: 'crm', portalId: null, payload: { i } });
      await db.repos.jobs.enqueue({ kind: 'send', portalId: null, payload: {}, priority: 0 });
      const now = Date.now() + 10;
      const [first] = await db.repos.jobs.claim('w', 1, now, 1000);
      expect(first!.kind).to.equal('send');
      await db.repos.jobs.complete(first!.id, 'w');
      await db.repos.jobs.enqueue({ kind: 'send', portalId: null, payload: { again: true } });
      const sendLane = await db.repos.jobs.claim('s', 10, now + 10, 1000, { only: ['send'] });
      expect(sendLane.map((j) => j.kind)).to.deep.equal(['send']);
      const rest = await db.repos.jobs.claim('b', 10, now + 10, 1000, { except: ['send'] });
      expect(rest.map((j) => j.kind)).to.deep.equal(['crm', 'crm', 'crm', 'crm', 'crm']);
      expect(await db.repos.jobs.nextRunAt({ only: ['send'] })).to.equal(null);
      await db.knex('jobs').delete();
    });

    it('runs jobs with retries and backoff, buries them after the last attempt, and keeps them visible', async () => {
      await db.knex('jobs').delete();
      const seen: Record<string, number> = {};
      let gaveUp: Job | null = null;
      const handlers: Record<string, JobHandler> = {
        flaky: { run: async (job) => { seen[job.id] = (seen[job.id] ?? 0) + 1; if (seen[job.id]! < 3) throw new Error('not yet'); } },
        broken: { run: async () => { throw new Error('always'); }, giveUp: async (job) => { gaveUp = job; } },
      };
      const runner = new JobRunner(db, handlers, { worker: 'w', concurrency: 4, leaseMs: 2000, pollMs: 20, backoffBaseMs: 5, backoffMaxMs: 20 }, { now: () => Date.now() });
      await db.repos.jobs.enqueue({ kind: 'flaky', portalId: null, payload: {}, maxAttempts: 5 });
      await db.repos.jobs.enqueue({ kind: 'broken', portalId: null, payload: {}, maxAttempts: 3 });
      runner.start();
      try {
        await waitFor(async () => (await db.repos.jobs.countByState()).dead === 1 && !(await db.repos.jobs.countByState()).pending && !(await db.repos.jobs.countByState()).running, 10000, 'jobs to settle');
      } finally {
        await runner.stop();
      }
      expect(Object.values(seen)).to.deep.equal([3]);
      expect(gaveUp).to.not.equal(null);
      const dead = await db.knex('jobs').where({ state: 'dead' }).first();
      expect(dead.kind).to.equal('broken');
      expect(dead.last_error).to.equal('always');
      expect(Number(dead.attempts)).to.equal(3);
    });

    if (target.name === 'postgresql') {
      it('claims past rows another process holds locked, without waiting for them (SKIP LOCKED)', async () => {
        await db.knex('jobs').delete();
        for (let i = 0; i < 3; i++) await db.repos.jobs.enqueue({ kind: 'k', portalId: null, payload: { i } });
        const first = await db.knex('jobs').orderBy('id').first('id');
        // Another server process in the middle of claiming the first job: its row is locked.
        const other = await openDatabase({ databaseUrl: url, dataDir: dir });
        const trx = await other.knex.transaction();
        try {
          await trx('jobs').where({ id: first.id }).forUpdate().first();
          const started = Date.now();
          const claimed = await Promise.race([
            db.repos.jobs.claim('me', 10, Date.now(), 5000),
            new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the claim waited on the locked row')), 3000)),
          ]);
          expect(Date.now() - started).to.be.below(2000);
          expect(claimed.map((j) => j.id)).to.not.include(first.id);
          expect(claimed).to.have.length(2);
        } finally {
          await trx.rollback();
          await other.close();
        }
      });
    }

    it('shares work between runners without running a job twice', async () => {
      await db.knex('jobs').delete();
      const runs = new Map<number, number>();
      const handler: JobHandler = {
        run: async (job) => {
          runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 2));
        },
      };
      // A second connection pool stands for a second server process.
      const other = await openDatabase({ databaseUrl: url, dataDir: dir });
      const opts = { concurrency: 4, leaseMs: 5000, pollMs: 10, backoffBaseMs: 5, backoffMaxMs: 10 };
      const r1 = new JobRunner(db, { k: handler }, { worker: 'one', ...opts }, { now: () => Date.now() });
      const r2 = new JobRunner(other, { k: handler }, { worker: 'two', ...opts }, { now: () => Date.now() });
      for (let i = 0; i < 200; i++) await db.repos.jobs.enqueue({ kind: 'k', portalId: null, payload: { i } });
      r1.start();
      r2.start();
      try {
        await waitFor(async () => Number((await db.knex('jobs').count({ n: '*' }))[0]!.n) === 0, 20000, 'all jobs done');
      } finally {
        await r1.stop();
        await r2.stop();
        await other.close();
      }
      expect(runs.size).to.equal(200);
      expect([...runs.values()].every((n) => n === 1)).to.equal(true);
    });
  });
}

describe('backoff', () => {
  it('grows exponentially with jitter inside [ceiling/2, ceiling] and stops at the cap', () => {
    expect(backoffDelay(1, 1000, 60000, () => 0)).to.equal(500);
    expect(backoffDelay(1, 1000, 60000, () => 1)).to.equal(1000);
    expect(backoffDelay(4, 1000, 60000, () => 1)).to.equal(8000);
    expect(backoffDelay(30, 1000, 60000, () => 1)).to.equal(60000);
  });
});
