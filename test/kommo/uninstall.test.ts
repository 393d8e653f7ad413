import { expect } from 'chai';
import { testDatabases } from '../helpers/databases';
import { waitFor } from '../helpers/server';
import { OffsetClock } from './direct';
import { connectNumber, kommoWorld, type KommoWorld } from './world';

const DAY = 24 * 3600_000;

async function portalExists(w: KommoWorld): Promise<boolean> {
  return Boolean(await w.srv.db.knex('portals').where({ id: w.portalId }).first());
}

/** Kommo's uninstall: it revokes the tokens and calls our disable hook. */
async function uninstall(w: KommoWorld) {
  w.fake.uninstall(w.acc.domain);
  const res = await fetch(`${w.srv.url}/kommo/disable?${w.fake.disableQuery(w.acc.id)}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function reinstall(w: KommoWorld) {
  const res = await fetch(`${w.srv.url}/kommo/oauth?code=${w.fake.issueCode(w.acc.domain)}&referer=${w.acc.domain}`);
  expect(res.status).to.equal(200);
}

/** Lets the runner take whatever is due at the (moved) clock, then waits until nothing due is left. */
async function runDueJobs(w: KommoWorld, clock: OffsetClock) {
  w.srv.runner.wake();
  await waitFor(async () => {
    const due = await w.srv.db.knex('jobs').whereIn('state', ['pending', 'running']).andWhere('run_at', '<=', clock.now()).whereNot({ kind: 'kommo.keepalive' }).count({ n: '*' });
    return Number(due[0]!.n) === 0;
  }, 15_000, 'due jobs done');
  await new Promise((r) => setTimeout(r, 200));
}

async function deadJobs(w: KommoWorld): Promise<string[]> {
  return (await w.srv.db.knex('jobs').where({ state: 'dead' }).select('kind', 'last_error')).map((j) => `${j.kind}: ${j.last_error}`);
}

for (const database of testDatabases()) {
  describe(`Kommo on ${database.name}: deleting an uninstalled account 30 days later`, function () {
    this.timeout(60_000);
    let w: KommoWorld;
    let clock: OffsetClock;
    beforeEach(async () => {
      clock = new OffsetClock();
      const url = await database.create();
      w = await kommoWorld({ env: url ? { DATABASE_URL: url } : {}, start: { clock, jobs: { backoffBaseMs: 20, backoffMaxMs: 200 } } });
      const num = await connectNumber(w, '+15550007000');
      await num.anon.post('/simulator/inbound', { to: num.phone, from: '+15557777001', name: 'Kept', text: 'some history' });
      await waitFor(async () => Number((await w.srv.db.knex('messages').where({ portal_id: w.portalId }).count({ n: '*' }))[0]!.n) === 1, 5000, 'a message');
    });
    afterEach(async () => {
      await w?.close();
      await database.dropAll();
    });

    it('erases the account and everything it owns after 30 days, not before', async () => {
      expect((await uninstall(w)).status).to.equal(200);
      clock.advance(29 * DAY);
      await runDueJobs(w, clock);
      expect(await portalExists(w), 'kept for 29 days').to.equal(true);
      clock.advance(DAY + 60_000);
      await runDueJobs(w, clock);
      expect(await portalExists(w), 'erased after 30').to.equal(false);
      expect(await w.srv.db.knex('messages').where({ portal_id: w.portalId }).first()).to.equal(undefined);
      expect(await w.srv.db.knex('kommo_accounts').where({ account_id: String(w.acc.id) }).first()).to.equal(undefined);
      expect(await deadJobs(w)).to.deep.equal([]);
    });

    it('a reinstall within 30 days keeps the data and cancels the deletion', async () => {
      await uninstall(w);
      clock.advance(20 * DAY);
      await reinstall(w);
      expect(await w.srv.db.knex('jobs').where({ kind: 'kommo.purge' }).first(), 'no deletion pending').to.equal(undefined);
      clock.advance(15 * DAY);
      await runDueJobs(w, clock);
      expect(await portalExists(w)).to.equal(true);
      expect(Number((await w.srv.db.knex('messages').where({ portal_id: w.portalId }).count({ n: '*' }))[0]!.n)).to.equal(1);
    });

    it('disable → reinstall → disable: the data goes 30 days after the second uninstall', async () => {
      await uninstall(w);
      clock.advance(10 * DAY);
      await reinstall(w);
      clock.advance(DAY);
      await uninstall(w);
      clock.advance(20 * DAY); // 31 days after the first uninstall, 20 after the second
      await runDueJobs(w, clock);
      expect(await portalExists(w), 'kept: the second uninstall is 20 days old').to.equal(true);
      // What is left waits for the second deadline: not retried, not burning its attempts.
      const row = await w.srv.db.knex('kommo_accounts').where({ portal_id: w.portalId }).first();
      const jobs = await w.srv.db.knex('jobs').where({ kind: 'kommo.purge' }).select('state', 'run_at', 'attempts');
      expect(jobs.map((j) => [j.state, Number(j.run_at), Number(j.attempts)])).to.deep.equal([['pending', Number(row.delete_after), 0]]);
      clock.advance(10 * DAY + 60_000);
      await runDueJobs(w, clock);
      expect(await portalExists(w), 'erased 30 days after the second uninstall').to.equal(false);
      expect(await deadJobs(w)).to.deep.equal([]);
    });

    it('a deletion job that comes due early (left by an older version) waits for the deadline instead of failing', async () => {
      await uninstall(w);
      const row = await w.srv.db.knex('kommo_accounts').where({ portal_id: w.portalId }).first();
      // What the old code left after disable → reinstall → disable: a job due before the deadline.
      await w.srv.db.knex('jobs').where({ kind: 'kommo.purge' }).delete();
      await w.srv.db.repos.jobs.enqueue({ kind: 'kommo.purge', portalId: w.portalId, payload: { accountId: String(w.acc.id) }, runAt: Number(row.delete_after) - 11 * DAY, dedupeKey: `kommo.purge:${w.portalId}` });
      clock.advance(20 * DAY);
      await runDueJobs(w, clock);
      expect(await portalExists(w)).to.equal(true);
      const job = await w.srv.db.knex('jobs').where({ kind: 'kommo.purge' }).first();
      expect(job.state).to.equal('pending');
      expect(Number(job.run_at)).to.equal(Number(row.delete_after));
      clock.advance(10 * DAY + 60_000);
      await runDueJobs(w, clock);
      expect(await portalExists(w)).to.equal(false);
      expect(await deadJobs(w)).to.deep.equal([]);
    });
  });

  // The disable hook's signature is HMAC(client_secret, client_id|account_id): the same for every
  // uninstall of an account, so anyone who saw one hook URL can replay it. What makes a hook true
  // is that Kommo no longer accepts our tokens.
  describe(`Kommo on ${database.name}: the disable hook acts only when Kommo really refuses our tokens`, function () {
    this.timeout(60_000);
    let w: KommoWorld;
    let clock: OffsetClock;
    let num: Awaited<ReturnType<typeof connectNumber>>;
    beforeEach(async () => {
      clock = new OffsetClock();
      const url = await database.create();
      w = await kommoWorld({ env: url ? { DATABASE_URL: url } : {}, start: { clock, jobs: { backoffBaseMs: 20, backoffMaxMs: 200 } } });
      num = await connectNumber(w, '+15550008000');
    });
    afterEach(async () => {
      await w?.close();
      await database.dropAll();
    });

    const hook = async () => {
      const res = await fetch(`${w.srv.url}/kommo/disable?${w.fake.disableQuery(w.acc.id)}`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const account = () => w.srv.db.knex('kommo_accounts').where({ portal_id: w.portalId }).first();
    const numberState = async () => (await w.srv.db.knex('numbers').where({ id: num.numberId }).first()).state as string;

    it('a replay after a reinstall changes nothing: tokens, WhatsApp sessions and data stay, no deletion', async () => {
      await uninstall(w);
      await reinstall(w);
      const before = await account();
      const replay = await hook();
      expect(replay.status).to.be.oneOf([200, 202]);
      const after = await account();
      expect(after.disabled_at).to.equal(null);
      expect(after.tokens).to.equal(before.tokens);
      expect(await w.srv.db.knex('jobs').where({ kind: 'kommo.purge' }).first()).to.equal(undefined);
      // And it stays that way when the later re-checks run.
      clock.advance(2 * 3600_000);
      await runDueJobs(w, clock);
      expect((await account()).disabled_at).to.equal(null);
      expect(await w.srv.db.knex('jobs').where({ kind: 'kommo.purge' }).first()).to.equal(undefined);
    });

    it('a repeated hook does not push the deletion back', async () => {
      await uninstall(w);
      const first = Number((await account()).delete_after);
      clock.advance(5 * DAY);
      expect((await hook()).status).to.equal(200);
      expect(Number((await account()).delete_after)).to.equal(first);
      const jobs = await w.srv.db.knex('jobs').where({ kind: 'kommo.purge' }).select('run_at');
      expect(jobs.map((j) => Number(j.run_at))).to.deep.equal([first]);
      clock.advance(25 * DAY + 60_000);
      await runDueJobs(w, clock);
      expect(await portalExists(w), 'erased 30 days after the first hook').to.equal(false);
    });

    it('a true hook that comes before Kommo revokes the tokens takes effect at the re-check', async () => {
      const first = await hook(); // Kommo still answers our tokens
      expect(first.status).to.equal(202);
      expect((await account()).disabled_at).to.equal(null);
      expect(await numberState(), 'sessions left alone until confirmed').to.equal('ready');
      w.fake.uninstall(w.acc.domain);
      clock.advance(2 * 60_000);
      await runDueJobs(w, clock);
      const row = await account();
      expect(row.disabled_at).to.not.equal(null);
      expect(row.tokens).to.equal(null);
      expect(await numberState()).to.equal('logged_out');
      expect(Number((await w.srv.db.knex('jobs').where({ kind: 'kommo.purge' }).first()).run_at)).to.equal(Number(row.delete_after));
    });

    it('Kommo unreachable when the hook comes: checked again later, then acted on', async () => {
      w.fake.uninstall(w.acc.domain);
      w.fake.outage(0, { hold: true });
      expect((await hook()).status).to.equal(202);
      expect((await account()).disabled_at).to.equal(null);
      w.fake.release();
      clock.advance(2 * 60_000);
      await runDueJobs(w, clock);
      expect((await account()).disabled_at).to.not.equal(null);
      expect(await numberState()).to.equal('logged_out');
    });
  });
}
