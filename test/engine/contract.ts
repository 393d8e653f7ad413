// The engine port's contract, written once and run against every engine (simulator, and the
// whatsapp-web.js adapter driving the stand-in Client). Each engine runs inside the real server
// (SessionManager, outbound jobs, SQLite), so "dedupe" and "catch-up" are checked where they matter:
// in what the widget API shows.
import { expect } from 'chai';
import type { AckStatus, WhatsAppEngine } from '../../server/domain/ports';
import type { RunningServer } from '../../server/main';
import { client, startTestServer, waitFor } from '../helpers/server';

export interface EngineHarness {
  engine: WhatsAppEngine;
  /** The admin scans the number's QR with `phone`. */
  scan(numberId: number, phone: string): void;
  /** A client phone writes to the number; `repeat` makes WhatsApp report it several times. */
  inbound(numberId: number, m: { from: string; text: string; repeat?: number }): string;
  /** WhatsApp reports an ack (possibly late or out of order). */
  ack(numberId: number, waMessageId: string, status: AckStatus): void;
  /** What reached a client phone. */
  delivered(phone: string): { waMessageId: string; text: string | null }[];
  setRegistered(phone: string, registered: boolean): void;
  /** The number's connection drops; messages meanwhile wait on WhatsApp's side. */
  goOffline(numberId: number): void;
  goOnline(numberId: number): void;
  /** The phone unlinks the device. */
  unlinkFromPhone(numberId: number): void;
  /** Whether WhatsApp still holds a login for the number (on both sides). */
  isLinked(numberId: number): boolean;
  close(): Promise<void>;
}

type Api = ReturnType<typeof client>;

export function engineContract(name: string, makeHarness: () => EngineHarness | Promise<EngineHarness>): void {
  describe(`engine contract: ${name}`, function () {
    this.timeout(20_000);
    let h: EngineHarness;
    let srv: RunningServer;
    let admin: Api;
    let phoneSeq = 0;

    before(async () => {
      h = await makeHarness();
      srv = await startTestServer({}, { engine: h.engine });
      const portal = await srv.db.repos.portals.create({ crm: 'none', name: `contract ${name}` });
      admin = client(srv.url + '/api/v1', srv.tokens.issue({ portalId: portal.id, userId: '1', admin: true }, 3600_000));
    });
    after(async () => {
      await srv?.close();
      await h?.close();
    });

    const numberState = async (id: number) => (await admin.get(`/numbers/${id}`)).body as { state: string; stateDetail: string | null; qr: string | null; phone: string | null };
    const waitState = (id: number, state: string, ms = 8000) =>
      waitFor(async () => ((await numberState(id)).state === state ? numberState(id) : null), ms, `number ${id} ${state}`);

    async function readyNumber(): Promise<{ id: number; phone: string }> {
      const phone = `+1555010${String(++phoneSeq).padStart(4, '0')}`;
      const id = (await admin.post('/numbers')).body.id as number;
      await waitState(id, 'qr');
      h.scan(id, phone);
      await waitState(id, 'ready');
      return { id, phone };
    }

    async function conversationWith(numberId: number, phone: string): Promise<number> {
      const r = await admin.post('/conversations', { phone, numberId });
      expect(r.status, JSON.stringify(r.body)).to.be.oneOf([200, 201]);
      return r.body.id as number;
    }

    const messages = async (convId: number) => (await admin.get(`/conversations/${convId}/messages`)).body.items as { id: number; direction: string; status: string; text: string | null; error: string | null }[];

    it('starts, shows a QR, becomes ready with the phone that scanned it', async () => {
      const id = (await admin.post('/numbers')).body.id as number;
      const qr = await waitState(id, 'qr');
      expect(qr.qr).to.match(/^data:image\/png;base64,/);
      h.scan(id, '+15550009999');
      const ready = await waitState(id, 'ready');
      expect(ready.phone).to.equal('+15550009999');
      expect(h.isLinked(id)).to.equal(true);
    });

    it('sends a text that reaches the phone; acks only move forward, even out of order', async () => {
      const { id } = await readyNumber();
      const to = '+15550020001';
      const conv = await conversationWith(id, to);
      const sent = await admin.post(`/conversations/${conv}/messages`, { text: 'hello from the CRM' }, { 'Idempotency-Key': `c-${name}-1` });
      expect(sent.status).to.equal(201);
      const got = await waitFor(() => h.delivered(to).find((d) => d.text === 'hello from the CRM'), 5000, 'delivery');
      await waitFor(async () => (await messages(conv)).find((m) => m.id === sent.body.id && m.status === 'delivered'), 5000, 'delivered');
      h.ack(id, got.waMessageId, 'read');
      await waitFor(async () => (await messages(conv)).find((m) => m.id === sent.body.id && m.status === 'read'), 5000, 'read');
      h.ack(id, got.waMessageId, 'delivered'); // late and out of order
      h.ack(id, got.waMessageId, 'sent');
      await new Promise((r) => setTimeout(r, 100));
      const final = (await messages(conv)).find((m) => m.id === sent.body.id)!;
      expect(final.status).to.equal('read');
      expect(h.delivered(to).filter((d) => d.text === 'hello from the CRM')).to.have.length(1);
    });

    it('fails a send to a number that is not on WhatsApp, with that reason', async () => {
      const { id } = await readyNumber();
      const to = '+15550020002';
      h.setRegistered(to, false);
      const conv = await conversationWith(id, to);
      const sent = await admin.post(`/conversations/${conv}/messages`, { text: 'anyone?' }, { 'Idempotency-Key': `c-${name}-2` });
      const failed = await waitFor(async () => (await messages(conv)).find((m) => m.id === sent.body.id && m.status === 'failed'), 5000, 'failed');
      expect(failed.error).to.equal('not on WhatsApp');
      expect(h.delivered(to)).to.have.length(0);
    });

    it('stores an inbound message once when WhatsApp reports it repeatedly', async () => {
      const { id } = await readyNumber();
      const from = '+15550020003';
      h.inbound(id, { from, text: 'said once', repeat: 3 });
      const conv = await waitFor(async () => (await admin.get(`/conversations?phone=${encodeURIComponent(from)}`)).body.items[0], 5000, 'conversation');
      await waitFor(async () => (await messages(conv.id)).length > 0, 5000, 'message');
      await new Promise((r) => setTimeout(r, 150));
      const list = await messages(conv.id);
      expect(list.map((m) => [m.direction, m.text])).to.deep.equal([['in', 'said once']]);
    });

    it('catches up on messages that arrived while the number was offline', async () => {
      const { id } = await readyNumber();
      h.goOffline(id);
      await waitState(id, 'offline');
      const from = '+15550020004';
      h.inbound(id, { from, text: 'while you were away' });
      h.goOnline(id);
      await waitState(id, 'ready', 10_000);
      const conv = await waitFor(async () => (await admin.get(`/conversations?phone=${encodeURIComponent(from)}`)).body.items[0], 8000, 'caught-up conversation');
      const list = await messages(conv.id);
      expect(list.map((m) => m.text)).to.deep.equal(['while you were away']);
    });

    it('an unlink from the phone ends in logged_out and drops the login', async () => {
      const { id } = await readyNumber();
      h.unlinkFromPhone(id);
      const s = await waitState(id, 'logged_out');
      expect(s.qr).to.equal(null);
      await new Promise((r) => setTimeout(r, 100));
      expect((await numberState(id)).state).to.equal('logged_out'); // no QR sneaks in afterwards
      expect(h.isLinked(id)).to.equal(false);
    });

    it("an admin's logout unlinks the device and drops the login", async () => {
      const { id } = await readyNumber();
      const r = await admin.post(`/numbers/${id}/logout`);
      expect(r.status).to.be.oneOf([200, 204]);
      await waitState(id, 'logged_out');
      await waitFor(() => !h.isLinked(id), 5000, 'login dropped');
    });
  });
}
