import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import knexFactory from 'knex';
import { client, tempDir, waitFor } from '../helpers/server';

// The server is killed with SIGKILL in the middle of a burst of 500 inbound and 500 outbound
// messages, then started again on the same data. Afterwards every inbound message is stored
// once, every outbound one reached its phone once, and no job is left behind.

const ROOT = path.resolve(__dirname, '../..');
const PHONES = ['+15550001001', '+15550001002', '+15550001003', '+15550001004', '+15550001005'];
const N = 500;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function startChild(dataDir: string, port: number): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/start.ts'], {
    cwd: ROOT,
    env: { ...process.env, DATA_DIR: dataDir, PORT: String(port), WA_ENGINE: 'simulator', LOG_LEVEL: process.env.CRASH_LOG_LEVEL ?? 'error', SECRET_KEY: 'crash-test-secret-0123456789abcdef0123' },
    stdio: ['ignore', process.env.CRASH_LOG_LEVEL ? 'inherit' : 'ignore', 'inherit'],
  });
  return child;
}

async function healthy(url: string): Promise<void> {
  await waitFor(async () => (await fetch(`${url}/healthz`)).ok, 30000, 'server start');
}

/** Runs `tasks` with at most `width` in flight; `onDone` after each settles. */
async function pool<T>(tasks: (() => Promise<T>)[], width: number, onDone: () => void): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < tasks.length) {
        const t = tasks[next++]!;
        await t().catch(() => undefined);
        onDone();
      }
    }),
  );
}

describe('crash safety (SIGKILL during a burst)', function () {
  this.timeout(180_000);
  let child: ChildProcess | null = null;

  after(() => {
    child?.kill('SIGKILL');
  });

  /** A server child on a fresh DATA_DIR with a ready number and a conversation with `phone`. */
  async function serverWithChat(prefix: string, phone: string) {
    const dataDir = tempDir(prefix);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    child = startChild(dataDir, port);
    await healthy(url);
    const anon = client(`${url}/api/v1`);
    const portal = (await anon.post('/simulator/portals', { crm: 'none', name: prefix })).body as { portalId: number; adminToken: string };
    const user = client(`${url}/api/v1`, portal.adminToken);
    const numberId = (await user.post('/numbers')).body.id as number;
    await waitFor(async () => (await user.get(`/numbers/${numberId}`)).body.state === 'qr', 5000, 'qr');
    await anon.post(`/simulator/numbers/${numberId}/scan`, { phone: '+15550000001' });
    await waitFor(async () => (await user.get(`/numbers/${numberId}`)).body.state === 'ready', 5000, 'ready');
    await anon.put(`/simulator/phones/${encodeURIComponent(phone)}`, { deliverAfterMs: 0 });
    const conv = (await user.post('/conversations', { phone })).body.id as number;
    return { dataDir, port, url, anon, portal, user, numberId, phone, conv };
  }

  it('stores every inbound message once and delivers every outbound message once after a kill and restart', async () => {
    const dataDir = tempDir('incrm-crash-');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    child = startChild(dataDir, port);
    await healthy(url);

    const anon = client(`${url}/api/v1`);
    const portal = (await anon.post('/simulator/portals', { crm: 'none', name: 'Crash' })).body;
    const user = client(`${url}/api/v1`, portal.adminToken);
    const numberId = (await user.post('/numbers')).body.id;
    await waitFor(async () => (await user.get(`/numbers/${numberId}`)).body.state === 'qr', 5000, 'qr');
    await anon.post(`/simulator/numbers/${numberId}/scan`, { phone: '+15550000001' });
    await waitFor(async () => (await user.get(`/numbers/${numberId}`)).body.state === 'ready', 5000, 'ready');
    const convs: number[] = [];
    for (const phone of PHONES) {
      await anon.put(`/simulator/phones/${encodeURIComponent(phone)}`, { deliverAfterMs: 0 });
      convs.push((await user.post('/conversations', { phone })).body.id);
    }

    // Each request remembers whether the server answered it; unanswered ones are retried after
    // the restart exactly as a client would: same waMessageId, same Idempotency-Key.
    const answered = new Set<string>();
    const inboundReq = (i: number) => async () => {
      const r = await anon.post('/simulator/inbound', { to: '+15550000001', from: PHONES[i % PHONES.length], text: `in ${i}`, waMessageId: `CRASH-IN-${i}` });
      if (r.status === 202) answered.add(`in-${i}`);
    };
    const outboundReq = (i: number) => async () => {
      const r = await user.post(`/conversations/${convs[i % convs.length]}/messages`, { text: `out ${i}` }, { 'Idempotency-Key': `CRASH-OUT-${i}` });
      if (r.status === 201 || r.status === 200) answered.add(`out-${i}`);
    };
    const tasks: (() => Promise<void>)[] = [];
    for (let i = 0; i < N; i++) tasks.push(inboundReq(i), outboundReq(i));

    let settled = 0;
    const victim = child;
    const burst = pool(tasks, 16, () => {
      settled++;
      if (settled === Math.floor(tasks.length * 0.4)) victim.kill('SIGKILL');
    });
    await burst;
    await new Promise<void>((resolve) => (victim.exitCode !== null || victim.signalCode !== null ? resolve() : victim.once('exit', () => resolve())));
    expect(victim.signalCode).to.equal('SIGKILL');
    const answeredBeforeKill = answered.size;
    expect(answeredBeforeKill, 'the kill came in the middle of the burst').to.be.within(100, tasks.length - 100);

    child = startChild(dataDir, port);
    await healthy(url);
    const retry: (() => Promise<void>)[] = [];
    for (let i = 0; i < N; i++) {
      if (!answered.has(`in-${i}`)) retry.push(inboundReq(i));
      if (!answered.has(`out-${i}`)) retry.push(outboundReq(i));
    }
    await pool(retry, 16, () => {});
    expect(answered.size).to.equal(2 * N);

    const db = knexFactory({ client: 'sqlite3', connection: { filename: path.join(dataDir, 'incrm.sqlite') }, useNullAsDefault: true });
    try {
      // Sends cut off by the kill wait for their lease (15 s) to run out before they are reconciled.
      await waitFor(async () => {
        const jobs = await db('jobs').count({ n: '*' });
        const out = await db('messages').where({ direction: 'out' }).whereIn('status', ['delivered', 'read', 'played']).count({ n: '*' });
        return Number(jobs[0]!.n) === 0 && Number(out[0]!.n) === N;
      }, 90_000, 'all jobs to finish and all outbound messages to be delivered');

      const inbound = await db('messages').where({ direction: 'in' }).select('text', 'wa_message_id');
      expect(inbound).to.have.length(N);
      expect(new Set(inbound.map((m) => m.text)).size).to.equal(N);
      const outbound = await db('messages').where({ direction: 'out' }).select('text');
      expect(outbound).to.have.length(N);
      expect(await db('jobs').where({ state: 'dead' })).to.have.length(0);
    } finally {
      await db.destroy();
    }

    const texts: string[] = [];
    for (const phone of PHONES) {
      const got = (await anon.get(`/simulator/delivered?phone=${encodeURIComponent(phone)}`)).body.items as { text: string }[];
      texts.push(...got.map((g) => g.text));
    }
    expect(texts, 'each outbound message reached its phone exactly once').to.have.length(N);
    expect(new Set(texts).size).to.equal(N);

    child.kill('SIGTERM');
    await new Promise((resolve) => child!.once('exit', resolve));
    expect(child.exitCode, 'graceful shutdown on SIGTERM').to.equal(0);
    child = null;
  });

  it('a message stored without its send job (a crash between the two inserts) is sent after the restart', async () => {
    const { dataDir, port, url, anon, portal, user, numberId, phone, conv } = await serverWithChat('incrm-crash-orphan-', PHONES[1]!);
    const victim = child!;
    const died = new Promise<void>((resolve) => victim.once('exit', () => resolve()));
    victim.kill('SIGKILL');
    await died;
    const db = knexFactory({ client: 'sqlite3', connection: { filename: path.join(dataDir, 'incrm.sqlite') }, useNullAsDefault: true });
    try {
      const now = Date.now();
      await db('messages').insert({
        portal_id: portal.portalId, conversation_id: conv, number_id: numberId, direction: 'out', type: 'text', text: 'left behind', status: 'queued',
        idempotency_key: 'orphan-crash-1', ptt: false, from_phone: false, revoked: false, created_at: now, updated_at: now,
      });
      child = startChild(dataDir, port);
      await healthy(url);
      await waitFor(async () => {
        const got = (await anon.get(`/simulator/delivered?phone=${encodeURIComponent(phone)}`)).body.items as { text: string }[];
        return got.some((g) => g.text === 'left behind');
      }, 15_000, 'the orphaned message sent after the restart');
      await waitFor(async () => (await db('jobs').where({ kind: 'wa.send' })).length === 0, 5000, 'the send job to finish');
    } finally {
      await db.destroy();
    }
    child.kill('SIGTERM');
    await new Promise((resolve) => child!.once('exit', resolve));
    child = null;
  });

  it('a send cut off after WhatsApp took it, before the server learned its id, is reconciled and not sent again', async () => {
    // The burst above kills at a random moment; this one kills at the exact worst one: the
    // simulator takes the message, then SIGKILLs the server before the send call returns.
    const { dataDir, port, url, anon, user, phone, conv } = await serverWithChat('incrm-crash-send-', PHONES[0]!);
    const deliveredTexts = async () => ((await anon.get(`/simulator/delivered?phone=${encodeURIComponent(phone)}`)).body.items as { text: string }[]).map((d) => d.text);
    expect((await user.post(`/conversations/${conv}/messages`, { text: 'before' }, { 'Idempotency-Key': 'cut-0' })).status).to.equal(201);
    await waitFor(async () => (await deliveredTexts()).includes('before'), 5000, 'first message delivered');

    expect((await anon.post('/simulator/crash', { afterSends: 1 })).status).to.equal(204);
    const victim = child!;
    const died = new Promise<void>((resolve) => victim.once('exit', () => resolve()));
    await user.post(`/conversations/${conv}/messages`, { text: 'cut off' }, { 'Idempotency-Key': 'cut-1' }).catch(() => undefined);
    await died;
    expect(victim.signalCode).to.equal('SIGKILL');

    child = startChild(dataDir, port);
    await healthy(url);
    // The request may or may not have been answered before the kill: a client repeats it.
    expect([200, 201]).to.include((await user.post(`/conversations/${conv}/messages`, { text: 'cut off' }, { 'Idempotency-Key': 'cut-1' })).status);
    const db = knexFactory({ client: 'sqlite3', connection: { filename: path.join(dataDir, 'incrm.sqlite') }, useNullAsDefault: true });
    try {
      // The cut-off job comes back when its lease (15 s) runs out; the look-back finds the message.
      const row = await waitFor(async () => {
        const m = await db('messages').where({ idempotency_key: 'cut-1' }).first();
        return m && m.wa_message_id && ['sent', 'delivered', 'read'].includes(m.status) ? m : null;
      }, 60_000, 'the cut-off message linked to what WhatsApp took');
      expect(row.send_started_at, 'the send had started before the kill').to.not.equal(null);
      await waitFor(async () => (await db('jobs').where({ kind: 'wa.send' })).length === 0, 5000, 'the send job to finish');
    } finally {
      await db.destroy();
    }
    const texts = await deliveredTexts();
    expect(texts.filter((t) => t === 'cut off'), 'reached the phone exactly once').to.have.length(1);
    child.kill('SIGTERM');
    await new Promise((resolve) => child!.once('exit', resolve));
    child = null;
  });
});
