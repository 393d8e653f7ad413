import { expect } from 'chai';
import type { RunningServer } from '../../server/main';
import { testDatabases } from '../helpers/databases';
import { client, portalWithNumber, startTestServer, waitFor } from '../helpers/server';

const CLIENT = '+15550000002';
const enc = encodeURIComponent;

type Msg = { id: number; direction: string; status: string; text: string | null; error?: string; type: string; media?: { url: string; mimetype: string; size: number }; ptt?: boolean };

for (const target of testDatabases()) {
  describe(`message pipeline on ${target.name}`, function () {
    let srv: RunningServer;
    let p: Awaited<ReturnType<typeof portalWithNumber>>;

    before(async () => {
      const url = await target.create();
      srv = await startTestServer(url ? { DATABASE_URL: url } : {});
      p = await portalWithNumber(srv);
    });
    after(async () => {
      await srv?.close();
      await target.dropAll();
    });

    const inbound = (body: Record<string, unknown>) => p.anon.post('/simulator/inbound', { to: p.numberPhone, from: CLIENT, name: 'Ann', ...body });
    const messagesOf = async (convId: number): Promise<Msg[]> => (await p.user.get(`/conversations/${convId}/messages?limit=200`)).body.items;
    const conversationWith = async (phone: string) => waitFor(async () => (await p.user.get(`/conversations?phone=${enc(phone)}`)).body.items[0], 3000, `conversation with ${phone}`);
    const delivered = async (phone: string) => (await p.anon.get(`/simulator/delivered?phone=${enc(phone)}`)).body.items as { text: string | null; type: string; mimetype: string | null; ptt: boolean; sha256: string | null }[];
    const crmLog = async (kind: string) => srv.db.knex('crm_log').where({ portal_id: p.portalId, kind });
    const send = (convId: number, body: unknown, key: string) => p.user.post(`/conversations/${convId}/messages`, body, { 'Idempotency-Key': key });

    it('stores an inbound message once however often the engine reports it, and queues one mirror and one alert', async () => {
      await inbound({ text: 'dup', waMessageId: 'DUP-1', repeat: 5 });
      await inbound({ text: 'dup', waMessageId: 'DUP-1' });
      const conv = await conversationWith(CLIENT);
      await waitFor(async () => (await crmLog('alert')).some((r) => String(r.payload).includes('dup')), 3000, 'alert job');
      const msgs = (await messagesOf(conv.id)).filter((m) => m.text === 'dup');
      expect(msgs).to.have.length(1);
      expect(msgs[0]!.direction).to.equal('in');
      expect((await crmLog('record')).filter((r) => String(r.payload).includes('"dup"'))).to.have.length(1);
      expect((await crmLog('alert')).filter((r) => String(r.payload).includes('dup'))).to.have.length(1);
    });

    it('accepts an outbound message once per Idempotency-Key and refuses a reused key for another body', async () => {
      const conv = await conversationWith(CLIENT);
      const [a, b] = await Promise.all([send(conv.id, { text: 'once' }, 'idem-1'), send(conv.id, { text: 'once' }, 'idem-1')]);
      expect([a.status, b.status].sort()).to.deep.equal([200, 201]);
      expect(a.body.id).to.equal(b.body.id);
      const c = await send(conv.id, { text: 'different' }, 'idem-1');
      expect(c.status).to.equal(422);
      await waitFor(async () => (await delivered(CLIENT)).some((d) => d.text === 'once'), 3000, 'delivery');
      expect((await delivered(CLIENT)).filter((d) => d.text === 'once')).to.have.length(1);
      expect((await messagesOf(conv.id)).filter((m) => m.text === 'different')).to.have.length(0);
    });

    it('never moves a status back on late or out-of-order acks', async () => {
      const conv = await conversationWith(CLIENT);
      const r = await send(conv.id, { text: 'acks' }, 'acks-1');
      const waId = await waitFor(async () => (await srv.db.repos.messages.getAny(r.body.id))?.waMessageId, 3000, 'engine id');
      await waitFor(async () => (await srv.db.repos.messages.getAny(r.body.id))?.status === 'delivered', 3000, 'delivered');
      for (const status of ['read', 'delivered', 'sent', 'failed']) await p.anon.post('/simulator/acks', { numberId: p.numberId, waMessageId: waId, status });
      await new Promise((res) => setTimeout(res, 100));
      expect((await srv.db.repos.messages.getAny(r.body.id))?.status).to.equal('read');
    });

    it('keeps a failure and its reason when a late `sent` ack arrives; a later `delivered` still counts', async () => {
      const conv = await conversationWith(CLIENT);
      await p.anon.put(`/simulator/phones/${enc(CLIENT)}`, { deliverAfterMs: 60_000 });
      const r = await send(conv.id, { text: 'stale ack' }, 'stale-1');
      const waId = await waitFor(async () => (await srv.db.repos.messages.getAny(r.body.id))?.waMessageId, 3000, 'engine id');
      await p.anon.post('/simulator/acks', { numberId: p.numberId, waMessageId: waId, status: 'failed' });
      await waitFor(async () => (await srv.db.repos.messages.getAny(r.body.id))?.status === 'failed', 3000, 'failed');
      await p.anon.post('/simulator/acks', { numberId: p.numberId, waMessageId: waId, status: 'sent' });
      await new Promise((res) => setTimeout(res, 100));
      const after = (await srv.db.repos.messages.getAny(r.body.id))!;
      expect(after.status).to.equal('failed');
      expect(after.error).to.be.a('string').and.not.empty;
      await p.anon.post('/simulator/acks', { numberId: p.numberId, waMessageId: waId, status: 'delivered' });
      await waitFor(async () => (await srv.db.repos.messages.getAny(r.body.id))?.status === 'delivered', 3000, 'delivered after all');
      await p.anon.put(`/simulator/phones/${enc(CLIENT)}`, { deliverAfterMs: 0 });
    });

    it('retries a message WhatsApp reported failed as a new send, mirrored once', async () => {
      const other = '+15550000066';
      await p.anon.put(`/simulator/phones/${enc(other)}`, { deliverAfterMs: 60_000 });
      const conv = (await p.user.post('/conversations', { phone: other })).body;
      const r = await send(conv.id, { text: 'bounced' }, 'bounce-1');
      const waId = await waitFor(async () => (await srv.db.repos.messages.getAny(r.body.id))?.waMessageId, 3000, 'engine id');
      const mirrors = async () => (await crmLog('record')).filter((e) => JSON.parse(String(e.payload)).messageId === r.body.id).length;
      await waitFor(async () => (await mirrors()) === 1, 3000, 'first mirror');
      await p.anon.post('/simulator/acks', { numberId: p.numberId, waMessageId: waId, status: 'failed' });
      await waitFor(async () => (await srv.db.repos.messages.getAny(r.body.id))?.status === 'failed', 3000, 'failed');
      await p.anon.put(`/simulator/phones/${enc(other)}`, { deliverAfterMs: 0 });
      expect((await p.user.post(`/messages/${r.body.id}/retry`)).status).to.equal(200);
      // The first copy is still held by the phone (60 s delivery delay); the resend arrives now.
      await waitFor(async () => (await delivered(other)).filter((d) => d.text === 'bounced').length === 1, 3000, 'the resend reaching the phone');
      const resent = await waitFor(async () => {
        const m = (await srv.db.repos.messages.getAny(r.body.id))!;
        return m.waMessageId && m.waMessageId !== waId ? m : null;
      }, 3000, 'a new engine id');
      expect(resent.status).to.not.equal('failed');
      await waitFor(async () => (await mirrors()) === 2, 3000, 'the resend mirrored');
      await new Promise((res) => setTimeout(res, 150));
      expect(await mirrors()).to.equal(2); // the first send and the resend: one record each, no more
    });

    it('reconciles a send cut off by a crash with what the engine sent, instead of sending twice', async () => {
      // The state a kill leaves behind: the send had started and WhatsApp took the message, but the
      // engine's id never reached the database and the job is still due.
      const conv = (await p.user.post('/conversations', { phone: CLIENT })).body;
      const { message } = await srv.db.repos.messages.insertOutbound({
        portalId: p.portalId, conversationId: conv.id, numberId: p.numberId, direction: 'out', type: 'text', text: 'cut off', status: 'queued', idempotencyKey: 'cut-1', createdAt: Date.now(),
      });
      await srv.db.repos.messages.markSendStarted(message.id, Date.now() - 500);
      srv.network!.send(p.numberId, { chatId: '15550000002@c.us', type: 'text', text: 'cut off' });
      await srv.db.repos.jobs.enqueue({ kind: 'wa.send', portalId: p.portalId, payload: { messageId: message.id }, dedupeKey: `send:${message.id}` });
      srv.runner.wake();
      await waitFor(async () => (await srv.db.repos.messages.getAny(message.id))?.waMessageId, 3000, 'reconciled id');
      await new Promise((res) => setTimeout(res, 100));
      expect((await delivered(CLIENT)).filter((d) => d.text === 'cut off')).to.have.length(1);
    });

    it('gives a stored message whose job was lost its job back when the client repeats the request', async () => {
      // What a failure between the message's insert and its job's insert leaves (no transaction
      // on this path): the message is queued and nothing will send it.
      const conv = (await p.user.post('/conversations', { phone: CLIENT })).body;
      await srv.db.repos.messages.insertOutbound({
        portalId: p.portalId, conversationId: conv.id, numberId: p.numberId, direction: 'out', type: 'text', text: 'orphan', status: 'queued', idempotencyKey: 'orphan-1', createdAt: Date.now(),
      });
      const again = await send(conv.id, { text: 'orphan' }, 'orphan-1');
      expect(again.status).to.equal(200);
      await waitFor(async () => (await delivered(CLIENT)).some((d) => d.text === 'orphan'), 3000, 'the orphan delivered');
      const third = await send(conv.id, { text: 'orphan' }, 'orphan-1');
      expect(third.status).to.equal(200);
      await new Promise((res) => setTimeout(res, 100));
      expect((await delivered(CLIENT)).filter((d) => d.text === 'orphan')).to.have.length(1);
    });

    it('adopts our own send reported back by catch-up after a crash, instead of storing a copy and resending', async () => {
      const conv = (await p.user.post('/conversations', { phone: CLIENT })).body;
      const { message } = await srv.db.repos.messages.insertOutbound({
        portalId: p.portalId, conversationId: conv.id, numberId: p.numberId, direction: 'out', type: 'text', text: 'adopt me', status: 'queued', idempotencyKey: 'adopt-1', createdAt: Date.now(),
      });
      await srv.db.repos.messages.markSendStarted(message.id, Date.now() - 500);
      const waMessageId = srv.network!.send(p.numberId, { chatId: '15550000002@c.us', type: 'text', text: 'adopt me' });
      // The restarted session's catch-up reports it as written by us.
      const number = (await srv.db.repos.numbers.getAny(p.numberId))!;
      const stored = await srv.sessions.inbound.receive(number, { waMessageId, chatId: '15550000002@c.us', phone: CLIENT, name: null, type: 'text', text: 'adopt me', fromMe: true, timestamp: Date.now() });
      expect(stored).to.equal(false);
      await srv.db.repos.jobs.enqueue({ kind: 'wa.send', portalId: p.portalId, payload: { messageId: message.id }, dedupeKey: `send:${message.id}` });
      srv.runner.wake();
      await waitFor(async () => ['sent', 'delivered', 'read'].includes((await srv.db.repos.messages.getAny(message.id))!.status), 3000, 'sent');
      await new Promise((res) => setTimeout(res, 100));
      expect((await delivered(CLIENT)).filter((d) => d.text === 'adopt me')).to.have.length(1);
      expect((await messagesOf(conv.id)).filter((m) => m.text === 'adopt me')).to.have.length(1);
    });

    it('fails a message to a number not on WhatsApp with the reason, and a retry really resends', async () => {
      const stranger = '+15550000077';
      await p.anon.put(`/simulator/phones/${enc(stranger)}`, { registered: false });
      const conv = (await p.user.post('/conversations', { phone: stranger })).body;
      const r = await send(conv.id, { text: 'are you there' }, 'nowa-1');
      const failed = await waitFor(async () => (await messagesOf(conv.id)).find((m) => m.id === r.body.id && m.status === 'failed'), 3000, 'failed');
      expect(failed.error).to.equal('not on WhatsApp');
      await p.anon.put(`/simulator/phones/${enc(stranger)}`, { registered: true });
      const retried = await p.user.post(`/messages/${r.body.id}/retry`);
      expect(retried.status).to.equal(200);
      expect(retried.body.status).to.equal('queued');
      await waitFor(async () => (await delivered(stranger)).length === 1, 3000, 'delivery after retry');
      expect((await p.user.post(`/messages/${r.body.id}/retry`)).status).to.equal(409);
    });

    it('keeps messages sent while the client phone is offline at sent, and delivers when it returns', async () => {
      const offline = '+15550000088';
      await p.anon.put(`/simulator/phones/${enc(offline)}`, { online: false });
      const conv = (await p.user.post('/conversations', { phone: offline })).body;
      const r = await send(conv.id, { text: 'later' }, 'off-1');
      await waitFor(async () => (await srv.db.repos.messages.getAny(r.body.id))?.status === 'sent', 3000, 'sent');
      await new Promise((res) => setTimeout(res, 100));
      expect((await srv.db.repos.messages.getAny(r.body.id))?.status).to.equal('sent');
      await p.anon.put(`/simulator/phones/${enc(offline)}`, { online: true });
      await waitFor(async () => (await srv.db.repos.messages.getAny(r.body.id))?.status === 'delivered', 3000, 'delivered');
    });

    it('catches up on what arrived while our number was offline, and sends what waited', async () => {
      const conv = await conversationWith(CLIENT);
      await p.anon.put(`/simulator/numbers/${p.numberId}`, { online: false });
      await waitFor(async () => (await p.admin.get(`/numbers/${p.numberId}`)).body.state === 'offline', 3000, 'offline');
      await inbound({ text: 'while away 1' });
      await inbound({ text: 'while away 2' });
      const r = await send(conv.id, { text: 'waiting to go' }, 'wait-1');
      await new Promise((res) => setTimeout(res, 150));
      expect((await messagesOf(conv.id)).some((m) => m.text === 'while away 1')).to.equal(false);
      await p.anon.put(`/simulator/numbers/${p.numberId}`, { online: true });
      await waitFor(async () => (await messagesOf(conv.id)).filter((m) => m.text?.startsWith('while away')).length === 2, 5000, 'catch-up');
      await waitFor(async () => (await delivered(CLIENT)).some((d) => d.text === 'waiting to go'), 10000, 'queued send after reconnect');
      expect((await messagesOf(conv.id)).find((m) => m.id === r.body.id)?.status).to.not.equal('failed');
      const alerts = await crmLog('alert');
      expect(alerts.some((a) => String(a.payload).includes('offline')), 'admins alerted when the number dropped').to.equal(true);
    });

    it('sends images and Ogg/Opus voice notes, serves media by signed URL, and refuses bad files', async () => {
      const conv = await conversationWith(CLIENT);
      const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da6364f8ffbf1e000502027f3a1b5b0c0000000049454e44ae426082', 'hex');
      const img = new FormData();
      img.append('text', 'a picture');
      img.append('file', new Blob([png], { type: 'image/png' }), 'dot.png');
      const ri = await send(conv.id, img, 'img-1');
      expect(ri.status).to.equal(201);
      expect(ri.body.type).to.equal('image');
      const ogg = Buffer.concat([Buffer.from('OggS'), Buffer.alloc(200, 7)]);
      const voice = new FormData();
      voice.append('voice', 'true');
      voice.append('file', new Blob([ogg], { type: 'audio/ogg; codecs=opus' }), 'voice.ogg');
      const rv = await send(conv.id, voice, 'voice-1');
      expect(rv.status).to.equal(201);
      expect(rv.body.type).to.equal('voice');
      await waitFor(async () => (await delivered(CLIENT)).some((d) => d.ptt), 3000, 'voice delivery');
      const got = await delivered(CLIENT);
      const image = got.find((d) => d.type === 'image')!;
      expect(image.mimetype).to.equal('image/png');
      expect(image.text).to.equal('a picture');
      const vn = got.find((d) => d.ptt)!;
      expect(vn.mimetype).to.match(/^audio\/ogg/);
      expect(vn.type).to.equal('voice');

      const media = ri.body.media as { url: string; size: number };
      expect(media.size).to.equal(png.length);
      const file = await fetch(srv.url + media.url, { headers: { Origin: 'https://acme.kommo.com' } });
      expect(file.status).to.equal(200);
      expect(file.headers.get('access-control-allow-origin'), 'readable by the widget in a CRM page').to.equal('*');
      expect(Buffer.from(await file.arrayBuffer()).equals(png)).to.equal(true);
      expect((await fetch(srv.url + media.url.replace(/sig=[^&]+/, 'sig=forged'))).status).to.equal(403);
      expect((await fetch(srv.url + media.url.replace(/exp=\d+/, 'exp=1000'))).status).to.equal(403);

      const before = (await messagesOf(conv.id)).length;
      const webm = new FormData();
      webm.append('voice', 'true');
      webm.append('file', new Blob([Buffer.alloc(100)], { type: 'audio/webm' }), 'v.webm');
      const bad = await send(conv.id, webm, 'voice-bad');
      expect(bad.status).to.equal(400);
      expect(bad.body.error.message).to.match(/Ogg\/Opus/);
      const big = new FormData();
      big.append('file', new Blob([Buffer.alloc(srv.config.mediaMaxBytes + 1)], { type: 'application/pdf' }), 'big.pdf');
      const tooBig = await send(conv.id, big, 'big-1');
      expect(tooBig.status).to.equal(413);
      expect((await messagesOf(conv.id)).length).to.equal(before);
    });

    it('receives inbound media and stores identical files once', async () => {
      const data = Buffer.from('%PDF-1.4 test document').toString('base64');
      await inbound({ text: 'the contract', media: { mimetype: 'application/pdf', data, filename: 'contract.pdf' } });
      await inbound({ text: 'again', media: { mimetype: 'application/pdf', data, filename: 'copy.pdf' } });
      const conv = await conversationWith(CLIENT);
      const docs = await waitFor(async () => {
        const d = (await messagesOf(conv.id)).filter((m) => m.type === 'document' && m.direction === 'in');
        return d.length === 2 ? d : null;
      }, 3000, 'documents');
      expect(docs[0]!.media!.mimetype).to.equal('application/pdf');
      const rows = await srv.db.knex('media').where({ mimetype: 'application/pdf' });
      expect(rows).to.have.length(1);
    });

    it('keeps a hidden-id contact its conversation and links the phone when WhatsApp reveals it', async () => {
      const hiddenPhone = '+15550000099';
      await p.anon.post('/simulator/inbound', { to: p.numberPhone, from: hiddenPhone, hidden: true, text: 'secret' });
      const contact = await waitFor(async () => srv.db.knex('contacts').where({ portal_id: p.portalId }).andWhere('wa_id', 'like', '%@lid').first(), 3000, 'hidden contact');
      expect(contact.phone).to.equal(null);
      await p.anon.post(`/simulator/numbers/${p.numberId}/reveal`, { from: hiddenPhone });
      const conv = await conversationWith(hiddenPhone);
      expect(conv.waId).to.match(/@lid$/);
      expect((await messagesOf(conv.id)).map((m) => m.text)).to.deep.equal(['secret']);
    });

    it('answers bad input with 400 naming the field, and stores nothing', async () => {
      const conv = await conversationWith(CLIENT);
      const count = async () => Number((await srv.db.knex('messages').count({ n: '*' }))[0]!.n);
      const n = await count();
      const noKey = await p.user.post(`/conversations/${conv.id}/messages`, { text: 'x' });
      expect(noKey.status).to.equal(400);
      expect(noKey.body.error.message).to.match(/Idempotency-Key/);
      const empty = await send(conv.id, { text: '' }, 'e-1');
      expect(empty.status).to.equal(400);
      expect(empty.body.error.message).to.match(/^text:/);
      const wrongType = await send(conv.id, { text: 5 }, 'e-2');
      expect(wrongType.status).to.equal(400);
      const badPhone = await p.user.post('/conversations', { phone: 'call me' });
      expect(badPhone.status).to.equal(400);
      expect(badPhone.body.error.message).to.match(/^phone:/);
      const badJson = await fetch(`${srv.url}/api/v1/conversations/${conv.id}/messages`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${p.userToken}`, 'Idempotency-Key': 'e-3' },
        body: '{"text":',
      });
      expect(badJson.status).to.equal(400);
      const badLimit = await p.user.get(`/conversations/${conv.id}/messages?limit=100000`);
      expect(badLimit.status).to.equal(400);
      expect(badLimit.body.error.message).to.match(/^limit:/);
      // Multipart: a text over the limit is refused whole (busboy would cut it), an empty file too.
      const long = new FormData();
      long.append('text', 'я'.repeat(70_000));
      long.append('file', new Blob([Buffer.from('%PDF-1.4')], { type: 'application/pdf' }), 'a.pdf');
      const tooLong = await send(conv.id, long, 'e-4');
      expect(tooLong.status).to.equal(400);
      expect(tooLong.body.error.message).to.match(/^text:/);
      const blank = new FormData();
      blank.append('file', new Blob([]), 'empty.pdf');
      const emptyFile = await send(conv.id, blank, 'e-5');
      expect(emptyFile.status).to.equal(400);
      expect(emptyFile.body.error.message).to.match(/^file:/);
      expect(await count()).to.equal(n);
    });

    it("refuses other portals' retries, reads and restarts too", async () => {
      const conv = await conversationWith(CLIENT);
      const mine = (await messagesOf(conv.id))[0]!;
      const other = await p.anon.post('/simulator/portals', { crm: 'none', name: 'Other 2' });
      const o = client(srv.url + '/api/v1', other.body.adminToken);
      expect((await o.post(`/messages/${mine.id}/retry`)).status).to.equal(404);
      expect((await o.post(`/conversations/${conv.id}/read`)).status).to.equal(404);
      expect((await o.post(`/numbers/${p.numberId}/restart`)).status).to.equal(404);
    });

    it("never lets one portal reach another portal's objects", async () => {
      const conv = await conversationWith(CLIENT);
      const other = await p.anon.post('/simulator/portals', { crm: 'none', name: 'Other' });
      const o = client(srv.url + '/api/v1', other.body.adminToken);
      expect((await o.get(`/conversations/${conv.id}`)).status).to.equal(404);
      expect((await o.get(`/conversations/${conv.id}/messages`)).status).to.equal(404);
      expect((await o.post(`/conversations/${conv.id}/messages`, { text: 'x' }, { 'Idempotency-Key': 'x-1' })).status).to.equal(404);
      expect((await o.get(`/numbers/${p.numberId}`)).status).to.equal(404);
      expect((await o.post(`/numbers/${p.numberId}/logout`)).status).to.equal(404);
      expect((await o.get(`/conversations?phone=${enc(CLIENT)}`)).body.items).to.have.length(0);
      expect((await p.user.post('/numbers')).status, 'non-admins cannot connect numbers').to.equal(403);
    });

    it('lets admins change the portal options and refuses unknown fields', async () => {
      const before = await p.user.get('/settings');
      expect(before.body.user).to.deep.equal({ id: 'sim-user', admin: false });
      expect((await p.user.put('/settings', { mirror: false })).status).to.equal(403);
      const bad = await p.admin.put('/settings', { mirorr: false });
      expect(bad.status).to.equal(400);
      const ok = await p.admin.put('/settings', { unknownNumber: 'create', pipelineId: '7', alertUserIds: ['sim-admin', '42'] });
      expect(ok.status).to.equal(200);
      expect(ok.body.settings).to.include({ unknownNumber: 'create', pipelineId: '7' });
      expect((await p.user.get('/settings')).body.settings.alertUserIds).to.deep.equal(['sim-admin', '42']);
    });

    it('streams live events and resumes with Last-Event-ID', async () => {
      const conv = await conversationWith(CLIENT);
      const ctrl = new AbortController();
      const res = await fetch(`${srv.url}/api/v1/stream?access_token=${p.userToken}`, { signal: ctrl.signal });
      expect(res.headers.get('content-type')).to.match(/text\/event-stream/);
      const reader = res.body!.getReader();
      let text = '';
      const readUntil = async (pred: (t: string) => boolean) => {
        while (!pred(text)) {
          const { value, done } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
        }
      };
      await readUntil((t) => t.includes('event: hello'));
      await inbound({ text: 'live one' });
      await readUntil((t) => t.includes('live one'));
      const ids = [...text.matchAll(/^id: (.+)$/gm)].map((m) => m[1]!);
      ctrl.abort();
      const lastId = ids[ids.length - 1]!;
      await inbound({ text: 'missed while away' });
      await waitFor(async () => (await messagesOf(conv.id)).some((m) => m.text === 'missed while away'), 3000, 'stored');
      const resumed = await fetch(`${srv.url}/api/v1/stream?access_token=${p.userToken}`, { headers: { 'Last-Event-ID': lastId } });
      const r2 = resumed.body!.getReader();
      let t2 = '';
      while (!t2.includes('missed while away')) t2 += new TextDecoder().decode((await r2.read()).value);
      expect(t2).to.not.include('live one');
      await r2.cancel();
      const stale = await fetch(`${srv.url}/api/v1/stream?access_token=${p.userToken}`, { headers: { 'Last-Event-ID': 'deadbeef-1' } });
      const r3 = stale.body!.getReader();
      let t3 = '';
      while (!t3.includes('event: resync')) t3 += new TextDecoder().decode((await r3.read()).value);
      await r3.cancel();
    });

    it('logs a number out, and reports a phone-side unlink as logged_out with an alert', async () => {
      const created = await p.admin.post('/numbers');
      await waitFor(async () => (await p.admin.get(`/numbers/${created.body.id}`)).body.state === 'qr', 3000, 'qr');
      const qr = (await p.admin.get(`/numbers/${created.body.id}`)).body.qr as string;
      expect(qr).to.match(/^data:image\/png;base64,/);
      await p.anon.post(`/simulator/numbers/${created.body.id}/scan`, { phone: '+15550000031' });
      await waitFor(async () => (await p.admin.get(`/numbers/${created.body.id}`)).body.state === 'ready', 3000, 'ready');
      await p.anon.post(`/simulator/numbers/${created.body.id}/unlink`);
      await waitFor(async () => (await p.admin.get(`/numbers/${created.body.id}`)).body.state === 'logged_out', 3000, 'logged out');
      await waitFor(async () => (await crmLog('alert')).some((a) => String(a.payload).includes('+15550000031 was logged out')), 3000, 'alert');
      const third = await p.admin.post('/numbers');
      await waitFor(async () => (await p.admin.get(`/numbers/${third.body.id}`)).body.state === 'qr', 3000, 'qr');
      expect((await p.admin.post(`/numbers/${third.body.id}/logout`)).status).to.equal(204);
      expect((await p.admin.get('/numbers')).body.items.map((n: { id: number }) => n.id)).to.not.include(third.body.id);
    });
  });
}

describe('operational endpoints', () => {
  let srv: RunningServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv.close();
  });

  it('answers /healthz and exposes messages, jobs and sessions in /metrics', async () => {
    const health = await (await fetch(`${srv.url}/healthz`)).json();
    expect(health.status).to.equal('ok');
    const p = await portalWithNumber(srv);
    await p.anon.post('/simulator/inbound', { to: p.numberPhone, from: CLIENT, text: 'count me' });
    await waitFor(async () => (await fetch(`${srv.url}/metrics`).then((r) => r.text())).includes('incrm_messages_total{direction="in",outcome="stored"} 1'), 3000, 'metric');
    // One message out, and one job that can never run (no handler): buried, and counted as dead.
    const conv = (await p.user.post('/conversations', { phone: CLIENT })).body;
    await p.user.post(`/conversations/${conv.id}/messages`, { text: 'count me out' }, { 'Idempotency-Key': 'metrics-out-1' });
    await srv.db.repos.jobs.enqueue({ kind: 'no.such.kind', portalId: p.portalId, payload: {} });
    srv.runner.wake();
    await waitFor(async () => /incrm_jobs\{state="dead"\} 1\b/.test(await fetch(`${srv.url}/metrics`).then((r) => r.text())), 3000, 'dead job counted');
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    expect(text).to.match(/incrm_messages_total\{direction="out",outcome="stored"\} 1\b/);
    expect(text).to.match(/incrm_sessions\{state="ready"\} 1/);
    expect(text).to.match(/incrm_http_request_duration_seconds_bucket/);
  });

  it('documents every /api/v1 route in the OpenAPI document', async () => {
    const doc = await (await fetch(`${srv.url}/api/v1/openapi.json`)).json();
    expect(doc.openapi).to.match(/^3\./);
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) for (const m of Object.keys(ops)) documented.add(`${m.toUpperCase()} ${path}`);
    // Walk the express router stack for the routes really served under /api/v1.
    const served: string[] = [];
    type Layer = { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: Layer[] }; matchers?: ((p: string) => unknown)[] };
    const stack = (srv.app as unknown as { router: { stack: Layer[] } }).router.stack;
    const underApi = (l: Layer) => !!l.matchers?.[0]?.('/api/v1/anything') && !l.matchers[0]!('/elsewhere');
    for (const layer of stack.filter(underApi)) {
      for (const inner of layer.handle?.stack ?? []) {
        if (!inner.route) continue;
        for (const m of Object.keys(inner.route.methods)) served.push(`${m.toUpperCase()} /api/v1${inner.route.path.replace(/:(\w+)/g, '{$1}')}`);
      }
    }
    expect(served.length).to.be.greaterThan(10);
    for (const s of served) expect(documented.has(s), `${s} is documented`).to.equal(true);
  });
});
