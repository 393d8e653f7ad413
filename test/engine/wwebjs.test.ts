// What is specific to the whatsapp-web.js adapter, driven through the stand-in Client: the races
// and failure modes of the real library (see shared/reference/whatsapp.md §5.3, §8).
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM_NOT_FOUND } from '../../server/adapters/whatsapp/wwebjs/chromium';
import { WwebjsEngine } from '../../server/adapters/whatsapp/wwebjs/engine';
import { QR_EXPIRED_REASON } from '../../server/adapters/whatsapp/wwebjs/session';
import type { RunningServer } from '../../server/main';
import type { AckStatus, Inbound, SessionListener, WhatsAppSession } from '../../server/domain/ports';
import type { NumberState } from '../../server/domain/types';
import { client, startTestServer, tempDir, waitFor } from '../helpers/server';
import { standInEngine, StandInWorld } from './standin';

class Recorder implements SessionListener {
  states: { state: NumberState; reason?: string; qr?: string; phone?: string }[] = [];
  inbound: Inbound[] = [];
  acks: { id: string; status: AckStatus }[] = [];
  revoked: string[] = [];
  identified: [string, string][] = [];
  onState(state: NumberState, detail?: { reason?: string; qr?: string; phone?: string }): void {
    this.states.push({ state, ...detail });
  }
  async onInbound(msg: Inbound): Promise<void> {
    this.inbound.push(msg);
  }
  async onAck(id: string, status: AckStatus): Promise<void> {
    this.acks.push({ id, status });
  }
  async onRevoked(id: string): Promise<void> {
    this.revoked.push(id);
  }
  async onChatIdentified(hidden: string, phone: string): Promise<void> {
    this.identified.push([hidden, phone]);
  }
  get last() {
    return this.states[this.states.length - 1];
  }
  seq(): string[] {
    return this.states.map((s) => s.state);
  }
}

const ME = '+15550001000';
const THEM = '+15550002000';

describe('wwebjs adapter (stand-in Client)', function () {
  this.timeout(15_000);
  let world: StandInWorld;
  let engine: WwebjsEngine;
  let profileOf: (id: number) => string;

  beforeEach(() => {
    world = new StandInWorld();
    ({ engine, profileOf } = standInEngine(world));
  });
  afterEach(() => engine.shutdown());

  /** A portal and a number made ready through the widget API of `srv`. */
  async function readyThroughServer(srv: RunningServer, phone = ME) {
    const portal = await srv.db.repos.portals.create({ crm: 'none', name: 'stand-in' });
    const api = client(srv.url + '/api/v1', srv.tokens.issue({ portalId: portal.id, userId: '1', admin: true }, 3600_000));
    const id = (await api.post('/numbers')).body.id as number;
    await waitFor(async () => (await api.get(`/numbers/${id}`)).body.state === 'qr', 3000, 'qr');
    world.scan(id, phone);
    await waitFor(async () => (await api.get(`/numbers/${id}`)).body.state === 'ready', 3000, 'ready');
    return { api, id, portalId: portal.id };
  }

  async function ready(id = 1): Promise<{ rec: Recorder; session: WhatsAppSession }> {
    const rec = new Recorder();
    const session = await engine.open(id, rec);
    await waitFor(() => rec.last?.state === 'qr', 3000, 'qr');
    world.scan(id, ME);
    await waitFor(() => rec.last?.state === 'ready', 3000, 'ready');
    return { rec, session };
  }

  it('reports starting → qr → ready once, with the phone, though the library repeats authenticated/ready', async () => {
    const { rec } = await ready();
    expect(rec.seq()).to.deep.equal(['starting', 'qr', 'ready']);
    expect(rec.last!.phone).to.equal(ME);
    expect(rec.states[1]!.qr).to.match(/^2@stand-in-number-1-1/);
    const stat = fs.statSync(profileOf(1));
    expect(stat.mode & 0o777).to.equal(0o700);
  });

  it("ready with a hidden own id (info.wid @lid) reports no phone rather than the lid's digits", async () => {
    world.hiddenMe.add(1);
    const { rec } = await ready();
    expect(rec.last!.state).to.equal('ready');
    expect(rec.last!.phone).to.equal(undefined);
  });

  it('reports inbound from `message` only, and phone-written messages (message_create fromMe) but not its own sends', async () => {
    const { rec, session } = await ready();
    world.inbound(1, { from: THEM, text: 'hi', name: 'Ann' });
    await waitFor(() => rec.inbound.length === 1, 2000, 'inbound');
    expect(rec.inbound[0]).to.include({ chatId: '15550002000@c.us', phone: THEM, name: 'Ann', type: 'text', text: 'hi' });
    expect(rec.inbound[0]!.fromMe).to.equal(undefined);

    const { waMessageId } = await session.send({ chatId: '15550002000@c.us', type: 'text', text: 'from the CRM', media: null });
    const phoneId = world.fromPhone(1, THEM, 'typed on the phone');
    await waitFor(() => rec.inbound.length === 2, 2000, 'phone message');
    await new Promise((r) => setTimeout(r, 150)); // past the echo hold
    expect(rec.inbound.map((m) => m.waMessageId)).to.deep.equal([rec.inbound[0]!.waMessageId, phoneId]);
    expect(rec.inbound[1]).to.include({ fromMe: true, text: 'typed on the phone', chatId: '15550002000@c.us' });
    expect(rec.inbound.some((m) => m.waMessageId === waMessageId)).to.equal(false);
  });

  for (const lidKnown of [true, false]) {
    it(`a chat WhatsApp Web keeps under a hidden id: the echo of our slow send (to @lid) is not reported as sent from the phone (lid lookup ${lidKnown ? 'answers' : 'fails'})`, async () => {
      const { rec, session } = await ready();
      world.lidChats.add(THEM);
      world.lidLookupFails = !lidKnown;
      world.sendDelayMs = 200; // the echo fires long before the send returns (hold is 30 ms here)
      const { waMessageId } = await session.send({ chatId: '15550002000@c.us', type: 'text', text: 'from the CRM', media: null });
      expect(waMessageId).to.match(/@lid_/);
      const second = await session.send({ chatId: '15550002000@c.us', type: 'image', text: 'a photo', media: { data: Buffer.from('png'), mimetype: 'image/png', filename: 'p.png' } });
      await new Promise((r) => setTimeout(r, 150)); // past the echo hold
      expect(rec.inbound.map((m) => m.waMessageId)).to.not.include.members([waMessageId, second.waMessageId]);
      expect(rec.inbound).to.have.length(0);
      // What the owner types on the phone in that chat is still reported.
      world.sendDelayMs = 0;
      const typed = world.fromPhone(1, THEM, 'typed on the phone');
      await waitFor(() => rec.inbound.length === 1, 2000, 'phone message');
      expect(rec.inbound[0]).to.include({ waMessageId: typed, fromMe: true, text: 'typed on the phone' });
    });
  }

  it('a ciphertext placeholder is skipped and the decrypted message, same id, is reported once', async () => {
    const { rec } = await ready();
    const id = world.inbound(1, { from: THEM, type: 'ciphertext', text: '' });
    await new Promise((r) => setTimeout(r, 50));
    expect(rec.inbound).to.have.length(0);
    // whatsapp-web.js reports it as new (message_create, message) when decryption changes its type;
    // a re-sync may report it again.
    world.decrypt(1, id, 'decrypted');
    world.inbound(1, { from: THEM, waMessageId: id, repeat: 2 });
    await waitFor(() => rec.inbound.length === 1, 2000, 'decrypted message');
    await new Promise((r) => setTimeout(r, 50));
    expect(rec.inbound.map((m) => [m.waMessageId, m.text])).to.deep.equal([[id, 'decrypted']]);
  });

  it('a message that only fires message_create (not fromMe) is not reported: inbound comes from `message`', async () => {
    const { rec } = await ready();
    world.createOnly(1, THEM, 'create only');
    await new Promise((r) => setTimeout(r, 150)); // past the echo hold
    expect(rec.inbound).to.have.length(0);
    world.inbound(1, { from: THEM, text: 'both events' });
    await waitFor(() => rec.inbound.length === 1, 2000, 'inbound');
    await new Promise((r) => setTimeout(r, 150));
    expect(rec.inbound.map((m) => m.text)).to.deep.equal(['both events']);
  });

  it('maps every ack level', async () => {
    const { rec, session } = await ready();
    const { waMessageId } = await session.send({ chatId: '15550002000@c.us', type: 'text', text: 'x', media: null });
    await waitFor(() => rec.acks.some((a) => a.id === waMessageId && a.status === 'delivered'), 2000, 'delivered');
    expect(rec.acks.filter((a) => a.id === waMessageId && a.status === 'sent').length).to.be.greaterThan(0);
    world.ack(1, waMessageId, 'read');
    world.ack(1, waMessageId, 'played');
    world.ack(1, waMessageId, 'failed');
    await waitFor(() => rec.acks.some((a) => a.status === 'failed'), 2000, 'failed ack');
    expect(rec.acks.filter((a) => a.id === waMessageId).map((a) => a.status)).to.include.members(['sent', 'delivered', 'read', 'played', 'failed']);
  });

  it('checks a number is on WhatsApp before the first message to it only; a "not on WhatsApp" answer is asked again next time', async () => {
    const { session } = await ready();
    const c = world.live(1)!;
    await session.send({ chatId: '15550002000@c.us', type: 'text', text: 'one', media: null });
    await session.send({ chatId: '15550002000@c.us', type: 'text', text: 'two', media: null });
    expect(c.calls.getNumberId).to.equal(1);
    world.registered.set('+15550004000', false);
    const err = await session.send({ chatId: '15550004000@c.us', type: 'text', text: 'anyone?', media: null }).catch((e: Error) => e);
    expect((err as Error).message).to.equal('not on WhatsApp');
    world.registered.set('+15550004000', true); // the person installed WhatsApp
    await session.send({ chatId: '15550004000@c.us', type: 'text', text: 'now?', media: null });
    expect(c.calls.getNumberId).to.equal(3);
    expect(world.delivered.get('+15550004000')!.map((d) => d.text)).to.deep.equal(['now?']);
  });

  it('sends a video with its caption as a video (not a document)', async () => {
    const { session } = await ready();
    await session.send({ chatId: '15550002000@c.us', type: 'video', text: 'the demo', media: { data: Buffer.from('mp4-bytes'), mimetype: 'video/mp4', filename: 'demo.mp4' } });
    const [d] = world.delivered.get(THEM)!;
    expect(d!.type).to.equal('video');
    expect(d!.media).to.include({ mimetype: 'video/mp4', filename: 'demo.mp4', data: Buffer.from('mp4-bytes').toString('base64') });
    expect(d!.options).to.include({ caption: 'the demo', sendSeen: false });
    expect(d!.options.sendMediaAsDocument).to.equal(undefined);
    expect(d!.options.sendAudioAsVoice).to.equal(undefined);
  });

  it('sends media with the right options: caption, filename, document, voice as push-to-talk, quote, no sendSeen', async () => {
    const { session } = await ready();
    const chatId = '15550002000@c.us';
    await session.send({ chatId, type: 'image', text: 'a photo', media: { data: Buffer.from('png'), mimetype: 'image/png', filename: 'p.png' } });
    await session.send({ chatId, type: 'document', text: 'the invoice', media: { data: Buffer.from('%PDF'), mimetype: 'application/pdf', filename: 'invoice-7.pdf' } });
    const voice = await session.send({ chatId, type: 'voice', text: null, ptt: true, media: { data: Buffer.from('OggS'), mimetype: 'audio/ogg; codecs=opus', filename: null } });
    await session.send({ chatId, type: 'text', text: 'about that', quotedWaMessageId: voice.waMessageId });
    const d = world.delivered.get(THEM)!;
    expect(d.map((x) => x.type)).to.deep.equal(['image', 'document', 'ptt', 'chat']);
    expect(d[0]!.options).to.include({ caption: 'a photo', sendSeen: false });
    expect(d[1]!.media).to.include({ filename: 'invoice-7.pdf', mimetype: 'application/pdf' });
    expect(d[1]!.options).to.include({ sendMediaAsDocument: true, caption: 'the invoice' });
    expect(d[2]!.options).to.include({ sendAudioAsVoice: true });
    expect(d[3]!.options).to.include({ quotedMessageId: voice.waMessageId, sendSeen: false });
  });

  it('downloads inbound media at once; expired media is marked unavailable; voice, revoke and hidden ids', async () => {
    const { rec } = await ready();
    const img = { mimetype: 'image/jpeg', data: Buffer.from('jpeg-bytes').toString('base64'), filename: null };
    world.inbound(1, { from: THEM, text: 'look', media: img });
    world.expiredMedia.add('false_15550002000@c.us_GONE');
    world.inbound(1, { from: THEM, text: '', media: img, waMessageId: 'false_15550002000@c.us_GONE' });
    world.inbound(1, { from: THEM, type: 'ptt', media: { mimetype: 'audio/ogg; codecs=opus', data: Buffer.from('OggS').toString('base64') } });
    await waitFor(() => rec.inbound.length === 3, 2000, 'three messages');
    const [image, gone, voice] = rec.inbound;
    expect(image!.type).to.equal('image');
    expect(image!.text).to.equal('look');
    expect(image!.media!.data.toString()).to.equal('jpeg-bytes');
    expect(gone!.mediaUnavailable).to.equal(true);
    expect(gone!.media).to.equal(null);
    expect(voice).to.include({ type: 'voice', ptt: true, text: null });

    world.revoke(1, image!.waMessageId);
    await waitFor(() => rec.revoked.length === 1, 2000, 'revoke');
    expect(rec.revoked).to.deep.equal([image!.waMessageId]);

    world.inbound(1, { from: '+15550003000', text: 'hidden', hidden: true });
    await waitFor(() => rec.identified.length === 1, 2000, 'identified');
    const hidden = rec.inbound[3]!;
    expect(hidden.chatId).to.match(/@lid$/);
    expect(hidden.phone).to.equal(null);
    expect(rec.identified[0]).to.deep.equal([hidden.chatId, '+15550003000']);
  });

  it('media: a download that throws is retried, not marked unavailable; undefined and null mean unavailable', async () => {
    const { engine: e } = standInEngine(world, { timing: { downloadRetryMs: 10 } });
    try {
      const rec = new Recorder();
      await e.open(1, rec);
      await waitFor(() => rec.last?.state === 'qr', 2000, 'qr');
      world.scan(1, ME);
      await waitFor(() => rec.last?.state === 'ready', 2000, 'ready');
      const img = { mimetype: 'image/jpeg', data: Buffer.from('jpeg-bytes').toString('base64'), filename: null };
      const flaky = 'false_15550002000@c.us_FLAKY';
      world.mediaErrors.set(flaky, [new Error('Evaluation failed: TypeError: Failed to fetch'), new Error('Evaluation failed: TypeError: Failed to fetch')]);
      world.inbound(1, { from: THEM, text: 'flaky', media: img, waMessageId: flaky });
      const re = 'false_15550002000@c.us_REUP';
      world.reuploadingMedia.add(re);
      world.inbound(1, { from: THEM, text: 'reuploading', media: img, waMessageId: re });
      await waitFor(() => rec.inbound.length === 2, 3000, 'two messages');
      const byText = Object.fromEntries(rec.inbound.map((m) => [m.text, m]));
      expect(byText.flaky!.media!.data.toString()).to.equal('jpeg-bytes');
      expect(byText.flaky!.mediaUnavailable).to.equal(undefined);
      expect(byText.reuploading!.media).to.equal(null);
      expect(byText.reuploading!.mediaUnavailable).to.equal(true);
      expect(e.stats().reconnects).to.equal(0);
    } finally {
      await e.shutdown();
    }
  });

  it('media: a download that hangs times out; the message is not reported and the session reconnects', async () => {
    const { engine: e } = standInEngine(world, { timing: { downloadTimeoutMs: 100 } });
    try {
      const rec = new Recorder();
      await e.open(1, rec);
      await waitFor(() => rec.last?.state === 'qr', 2000, 'qr');
      world.scan(1, ME);
      await waitFor(() => rec.last?.state === 'ready', 2000, 'ready');
      const first = world.live(1)!;
      world.mediaHang.add('false_15550002000@c.us_HANG');
      world.inbound(1, { from: THEM, text: 'stuck', media: { mimetype: 'image/png', data: 'AA==' }, waMessageId: 'false_15550002000@c.us_HANG' });
      await waitFor(() => world.live(1) !== first && rec.last?.state === 'ready', 3000, 'fresh Client');
      expect(rec.states.find((s) => s.state === 'offline')!.reason).to.match(/media download timed out/);
      expect(rec.inbound).to.have.length(0);
    } finally {
      await e.shutdown();
    }
  });

  it('through the server: a download cut off by a page crash is not stored as unavailable; the catch-up after the reconnect stores it with its media', async () => {
    const { engine: e } = standInEngine(world, { timing: { downloadRetryMs: 10 } });
    const srv = await startTestServer({}, { engine: e });
    try {
      const { api, id } = await readyThroughServer(srv);
      const img = { mimetype: 'image/jpeg', data: Buffer.from('jpeg-bytes').toString('base64'), filename: null };
      const crashed = `false_15550002000@c.us_CRASHED`;
      world.mediaErrors.set(crashed, [new Error('Protocol error (Runtime.callFunctionOn): Target closed.')]);
      // This one keeps failing on the fresh page too: the catch-up gives up on its media, once.
      const broken = `false_15550002000@c.us_BROKEN`;
      world.mediaErrors.set(broken, Array.from({ length: 20 }, () => new Error('Evaluation failed: Error: media hash mismatch')));
      world.inbound(id, { from: THEM, text: 'photo', media: img, waMessageId: crashed });
      await waitFor(() => e.stats().reconnects === 1, 3000, 'reconnect');
      world.inbound(id, { from: THEM, text: 'broken photo', media: img, waMessageId: broken });
      const items = await waitFor(async () => {
        const conv = (await api.get(`/conversations?phone=${encodeURIComponent(THEM)}`)).body.items[0];
        if (!conv) return null;
        const list = (await api.get(`/conversations/${conv.id}/messages`)).body.items as { text: string; media?: { mimetype: string } }[];
        return list.length === 2 ? list : null;
      }, 8000, 'both messages stored');
      const photo = items.find((m) => m.text === 'photo')!;
      expect(photo.media?.mimetype).to.equal('image/jpeg');
      expect(items.find((m) => m.text === 'broken photo')!.media).to.equal(undefined);
      await waitFor(async () => (await api.get(`/numbers/${id}`)).body.state === 'ready', 5000, 'ready');
    } finally {
      await srv.close();
    }
  });

  it('a crash mid-send: the send fails, the session reconnects with a fresh Client, recentSent finds what went out', async () => {
    const { rec, session } = await ready();
    world.crashNextSend.add(1);
    const before = world.clients.length;
    let err: Error | null = null;
    await session.send({ chatId: '15550002000@c.us', type: 'text', text: 'cut off', media: null }).catch((e: Error) => (err = e));
    expect(err!.message).to.match(/Execution context was destroyed/);
    await waitFor(() => rec.states.some((s) => s.state === 'offline'), 2000, 'offline');
    await waitFor(() => rec.last?.state === 'ready' && world.clients.length > before, 3000, 'ready again');
    const sent = await session.recentSent('15550002000@c.us', new Date(Date.now() - 60_000));
    expect(sent.map((s) => s.text)).to.deep.equal(['cut off']);
    expect(world.liveClients()).to.have.length(1); // the old Client was destroyed
  });

  it('disconnected(LOGOUT) followed by a new qr ends in logged_out only, and the profile is deleted', async () => {
    const { rec } = await ready();
    world.unlink(1);
    await waitFor(() => rec.last?.state === 'logged_out', 2000, 'logged_out');
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.seq()).to.deep.equal(['starting', 'qr', 'ready', 'logged_out']);
    expect(fs.existsSync(profileOf(1))).to.equal(false);
    expect(world.liveClients()).to.have.length(0);
  });

  it('a closed session reopens from the kept login without a QR; UNPAIRED also ends in logged_out', async () => {
    const first = await ready();
    await first.session.close();
    expect(world.liveClients()).to.have.length(0);
    const rec = new Recorder();
    await engine.open(1, rec);
    await waitFor(() => rec.last?.state === 'ready', 3000, 'restored');
    expect(rec.seq()).to.deep.equal(['starting', 'ready']);
    world.disconnect(1, 'UNPAIRED');
    await waitFor(() => rec.last?.state === 'logged_out', 2000, 'logged_out');
    expect(fs.existsSync(profileOf(1))).to.equal(false);
  });

  it("an admin's logout while the session is not ready still unlinks the device when a login exists", async () => {
    const { engine: e, profileOf: profile } = standInEngine(world, { timing: { backoffBaseMs: 5_000, backoffMaxMs: 5_000, logoutTimeoutMs: 3_000 } });
    try {
      const rec = new Recorder();
      const session = await e.open(1, rec);
      await waitFor(() => rec.last?.state === 'qr', 2000, 'qr');
      world.scan(1, ME);
      await waitFor(() => rec.last?.state === 'ready', 2000, 'ready');
      world.disconnect(1, 'CONFLICT'); // sleeping in a 5 s backoff now, no browser
      await waitFor(() => rec.last?.state === 'offline', 2000, 'offline');
      expect(world.liveClients()).to.have.length(0);
      await session.logout();
      expect(world.links.has(1), 'unlinked on the phone').to.equal(false);
      expect(fs.existsSync(profile(1))).to.equal(false);
      expect(world.liveClients()).to.have.length(0);
    } finally {
      await e.shutdown();
    }
  });

  it("an admin's logout while a QR shows (no login) starts nothing and drops the folder", async () => {
    const rec = new Recorder();
    const session = await engine.open(1, rec);
    await waitFor(() => rec.last?.state === 'qr', 2000, 'qr');
    const clients = world.clients.length;
    await session.logout();
    expect(world.clients.length).to.equal(clients);
    expect(fs.existsSync(profileOf(1))).to.equal(false);
    expect(world.liveClients()).to.have.length(0);
  });

  it('other disconnects reconnect with backoff and a fresh Client, keeping the login (no new QR)', async () => {
    const { rec } = await ready();
    world.disconnect(1, 'CONFLICT');
    await waitFor(() => rec.states.filter((s) => s.state === 'ready').length === 2, 3000, 'ready again');
    const offline = rec.states.find((s) => s.state === 'offline')!;
    expect(offline.reason).to.match(/^disconnected: CONFLICT; reconnecting in \d+ s$/);
    expect(rec.states.filter((s) => s.state === 'qr')).to.have.length(1);
    expect(engine.stats().reconnects).to.equal(1);
  });

  for (const reason of ['TOS_BLOCK', 'SMB_TOS_BLOCK', 'PROXYBLOCK', 'DEPRECATED_VERSION']) {
    it(`disconnected(${reason}) ends in failed with the reason, frees the browser slot and does not reconnect`, async () => {
      const { engine: capped } = standInEngine(world, { config: { DATA_DIR: tempDir(), WA_MAX_SESSIONS: 1, CHROMIUM_PATH: process.execPath } });
      try {
        const a = new Recorder();
        const b = new Recorder();
        await capped.open(1, a);
        await waitFor(() => a.last?.state === 'qr', 2000, 'qr');
        world.scan(1, ME);
        await waitFor(() => a.last?.state === 'ready', 2000, 'ready');
        await capped.open(2, b);
        await waitFor(() => b.last?.reason?.startsWith('queued'), 2000, 'second number queued');
        const clients = world.clients.filter((c) => c.numberId === 1).length;
        world.disconnect(1, reason);
        await waitFor(() => a.last?.state === 'failed', 2000, 'failed');
        expect(a.last!.reason).to.include(reason);
        expect(a.seq()).to.deep.equal(['starting', 'qr', 'ready', 'failed']);
        // The slot went to the waiting number; number 1 is not started again.
        await waitFor(() => b.last?.state === 'qr', 2000, 'second number started');
        await new Promise((r) => setTimeout(r, 300)); // several backoffs of the test timing
        expect(world.clients.filter((c) => c.numberId === 1)).to.have.length(clients);
        expect(a.last!.state).to.equal('failed');
        expect(capped.stats().reconnects).to.equal(0);
      } finally {
        await capped.shutdown();
      }
    });
  }

  it('change_state TIMEOUT while ready: offline at once, back to ready on CONNECTED with the same Client', async () => {
    const { rec } = await ready();
    const clients = world.clients.length;
    world.setState(1, 'TIMEOUT');
    await waitFor(() => rec.last?.state === 'offline', 2000, 'offline');
    expect(rec.last!.reason).to.match(/TIMEOUT/);
    world.setState(1, 'CONNECTED');
    await waitFor(() => rec.last?.state === 'ready', 2000, 'ready again');
    expect(rec.last!.phone).to.equal(ME);
    expect(rec.seq()).to.deep.equal(['starting', 'qr', 'ready', 'offline', 'ready']);
    expect(world.clients.length).to.equal(clients);
    expect(engine.stats().reconnects).to.equal(0);
  });

  it('change_state TIMEOUT or OPENING that does not come back within the grace period: a fresh Client', async () => {
    const { engine: graced } = standInEngine(world, { timing: { stateGraceMs: 100 } });
    try {
      for (const [id, state] of [[1, 'TIMEOUT'], [2, 'OPENING']] as const) {
        const rec = new Recorder();
        await graced.open(id, rec);
        await waitFor(() => rec.last?.state === 'qr', 2000, 'qr');
        world.scan(id, ME);
        await waitFor(() => rec.last?.state === 'ready', 2000, 'ready');
        const first = world.live(id)!;
        world.setState(id, state);
        await waitFor(() => rec.states.filter((s) => s.state === 'ready').length === 2, 3000, 'ready on a fresh Client');
        expect(world.live(id)).to.not.equal(first);
        expect(first.alive).to.equal(false);
        expect(rec.states.filter((s) => s.state === 'qr')).to.have.length(1);
        expect(rec.states.some((s) => s.state === 'offline' && new RegExp(state).test(s.reason ?? ''))).to.equal(true);
      }
      expect(graced.stats().reconnects).to.equal(2);
    } finally {
      await graced.shutdown();
    }
  });

  it('the health probe wants getState() CONNECTED and the injection present', async () => {
    const { engine: probed } = standInEngine(world, { timing: { healthIntervalMs: 40, stateGraceMs: 150 } });
    try {
      const rec = new Recorder();
      await probed.open(1, rec);
      await waitFor(() => rec.last?.state === 'qr', 2000, 'qr');
      world.scan(1, ME);
      await waitFor(() => rec.last?.state === 'ready', 2000, 'ready');
      // The page answers but window.WWebJS is gone: every API call would fail.
      const first = world.live(1)!;
      first.injected = false;
      await waitFor(() => world.live(1) && world.live(1) !== first && rec.last?.state === 'ready', 3000, 'fresh Client');
      expect(rec.states.find((s) => s.state === 'offline')!.reason).to.match(/WWebJS/);
      // getState() answers, but not CONNECTED (no change_state seen): offline, then a fresh Client.
      const second = world.live(1)!;
      second.waState = 'OPENING';
      await waitFor(() => rec.last?.state === 'offline', 2000, 'offline on probe');
      await waitFor(() => world.live(1) !== second && rec.last?.state === 'ready', 3000, 'fresh Client again');
      // Anything else than CONNECTED, TIMEOUT or OPENING: reconnected at once.
      const third = world.live(1)!;
      third.waState = null;
      await waitFor(() => world.live(1) !== third && rec.last?.state === 'ready', 3000, 'third Client');
      expect(probed.stats().reconnects).to.equal(3);
    } finally {
      await probed.shutdown();
    }
  });

  it("the library's unawaited inject() rejects after a navigation: the guard keeps the server up and the session is recovered", async () => {
    const { rec } = await ready();
    const first = world.live(1)!;
    world.injectFails.add(1);
    world.navigate(1); // rejects 'auth timeout' with nobody awaiting it
    await waitFor(() => rec.states.some((s) => s.state === 'offline'), 3000, 'offline');
    world.injectFails.delete(1);
    await waitFor(() => world.live(1) !== first && rec.last?.state === 'ready', 3000, 'fresh Client');
    expect(first.alive).to.equal(false);
  });

  it('a send that fails because window.WWebJS is gone reconnects the session', async () => {
    const { rec, session } = await ready();
    const first = world.live(1)!;
    first.injected = false;
    const err = await session.send({ chatId: '15550002000@c.us', type: 'text', text: 'x', media: null }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/reading 'getChat'/);
    await waitFor(() => world.live(1) !== first && rec.last?.state === 'ready', 3000, 'fresh Client');
    expect(rec.states.some((s) => s.state === 'offline')).to.equal(true);
  });

  it('WhatsApp Web unreachable: offline with the reason, retried with growing delays, never a tight loop', async () => {
    world.unreachable.add(1);
    const rec = new Recorder();
    await engine.open(1, rec);
    await waitFor(() => rec.states.filter((s) => s.state === 'offline').length >= 3, 5000, 'three attempts');
    const offline = rec.states.filter((s) => s.state === 'offline');
    expect(offline[0]!.reason).to.match(/ERR_NAME_NOT_RESOLVED/);
    // 20 ms base, doubling: the third wait is ~80 ms; a loop would have made hundreds of clients.
    expect(world.clients.length).to.be.lessThan(10);
    world.unreachable.delete(1);
    await waitFor(() => rec.last?.state === 'qr', 3000, 'qr after recovery');
  });

  it('a start stuck before any QR is abandoned and retried', async () => {
    const { engine: stuckEngine } = standInEngine(world, { timing: { startingTimeoutMs: 100, backoffBaseMs: 10, backoffMaxMs: 50 } });
    try {
      world.hang.add(7);
      const rec = new Recorder();
      await stuckEngine.open(7, rec);
      await waitFor(() => rec.states.some((s) => s.state === 'offline'), 3000, 'offline');
      expect(rec.states.find((s) => s.state === 'offline')!.reason).to.match(/no QR and no login/);
      world.hang.delete(7);
      await waitFor(() => rec.last?.state === 'qr', 3000, 'qr');
    } finally {
      await stuckEngine.shutdown();
    }
  });

  it('an unscanned QR stops the browser after the timeout and reports why', async () => {
    const { engine: qrEngine } = standInEngine(world, { timing: { qrTimeoutMs: 150 } });
    try {
      const rec = new Recorder();
      await qrEngine.open(3, rec);
      await waitFor(() => rec.last?.state === 'failed', 3000, 'failed');
      expect(rec.last!.reason).to.equal(QR_EXPIRED_REASON);
      expect(world.liveClients()).to.have.length(0);
      expect(qrEngine.stats().browsers).to.have.length(0);
    } finally {
      await qrEngine.shutdown();
    }
  });

  it('numbers beyond WA_MAX_SESSIONS wait their turn and say so', async () => {
    const { engine: capped } = standInEngine(world, { config: { DATA_DIR: tempDir(), WA_MAX_SESSIONS: 1, CHROMIUM_PATH: process.execPath } });
    try {
      const a = new Recorder();
      const b = new Recorder();
      const sa = await capped.open(1, a);
      await capped.open(2, b);
      await waitFor(() => a.last?.state === 'qr', 2000, 'first qr');
      await waitFor(() => b.states.some((s) => s.reason?.startsWith('queued')), 2000, 'queued');
      expect(b.last!.state).to.equal('starting');
      expect(b.last!.reason).to.match(/queued: 1 browsers already running \(WA_MAX_SESSIONS=1\); position 1/);
      await sa.close();
      await waitFor(() => b.last?.state === 'qr', 2000, 'second qr');
    } finally {
      await capped.shutdown();
    }
  });

  it('the queue position in the starting reason follows the queue as it moves', async () => {
    const { engine: capped } = standInEngine(world, { config: { DATA_DIR: tempDir(), WA_MAX_SESSIONS: 1, CHROMIUM_PATH: process.execPath } });
    try {
      const [a, b, c] = [new Recorder(), new Recorder(), new Recorder()];
      const sa = await capped.open(1, a);
      await waitFor(() => a.last?.state === 'qr', 2000, 'first qr');
      const sb = await capped.open(2, b);
      await capped.open(3, c);
      await waitFor(() => c.last?.reason?.endsWith('position 2'), 2000, 'third queued second');
      expect(b.last!.reason).to.match(/position 1$/);
      await sb.close(); // the one ahead leaves the queue
      await waitFor(() => c.last?.reason?.endsWith('position 1'), 2000, 'moved up');
      expect(c.last!.state).to.equal('starting');
      await sa.close();
      await waitFor(() => c.last?.state === 'qr', 2000, 'third qr');
    } finally {
      await capped.shutdown();
    }
  });

  it('a session sleeping in a long reconnect backoff gives its browser slot away and queues again when it wakes', async () => {
    const { engine: capped } = standInEngine(world, {
      config: { DATA_DIR: tempDir(), WA_MAX_SESSIONS: 1, CHROMIUM_PATH: process.execPath },
      timing: { backoffBaseMs: 400, backoffMaxMs: 400, slotReleaseMs: 300 },
    });
    try {
      const [a, b] = [new Recorder(), new Recorder()];
      await capped.open(1, a);
      await waitFor(() => a.last?.state === 'qr', 2000, 'qr');
      world.scan(1, ME);
      await waitFor(() => a.last?.state === 'ready', 2000, 'ready');
      const sb = await capped.open(2, b);
      await waitFor(() => b.last?.reason?.startsWith('queued'), 2000, 'queued');
      world.disconnect(1, 'CONFLICT'); // ~400 ms backoff: longer than slotReleaseMs
      await waitFor(() => b.last?.state === 'qr', 2000, 'the waiting number got the slot');
      await waitFor(() => a.last?.reason?.startsWith('queued'), 3000, 'number 1 queued behind it');
      expect(a.last!.state).to.equal('starting');
      await sb.close();
      await waitFor(() => a.last?.state === 'ready', 3000, 'number 1 back');
    } finally {
      await capped.shutdown();
    }
  });

  it('browsers start a few at a time: the next launch waits until one shows a QR, is ready or gives up', async () => {
    const { engine: gated } = standInEngine(world, { launchConcurrency: 1, timing: { startingTimeoutMs: 60_000 } });
    try {
      world.hang.add(1);
      const a = new Recorder();
      const b = new Recorder();
      const sa = await gated.open(1, a);
      await gated.open(2, b);
      await waitFor(() => world.clients.some((c) => c.numberId === 1), 2000, 'first launch');
      await new Promise((r) => setTimeout(r, 50));
      expect(world.clients.filter((c) => c.numberId === 2)).to.have.length(0);
      await sa.close(); // the stuck start gives its turn away
      await waitFor(() => b.last?.state === 'qr', 2000, 'second qr');
    } finally {
      await gated.shutdown();
    }
  });

  it('without Chromium: problem() says why and each number fails with that reason', async () => {
    const noChrome = new WwebjsEngine({
      config: { DATA_DIR: tempDir(), WA_MAX_SESSIONS: 2, CHROMIUM_PATH: '/nonexistent/chromium' },
      createClient: world.factory,
      chromiumCandidates: [],
    });
    expect(noChrome.problem()).to.equal(CHROMIUM_NOT_FOUND);
    const rec = new Recorder();
    await noChrome.open(1, rec);
    await waitFor(() => rec.last?.state === 'failed', 2000, 'failed');
    expect(rec.last!.reason).to.equal('Chromium not found: install chromium or set CHROMIUM_PATH');
    expect(world.clients).to.have.length(0);
  });

  it('removes a stale SingletonLock left by a crash before launching; a reused pid is not killed', async () => {
    const dir = profileOf(5);
    fs.mkdirSync(dir, { recursive: true });
    fs.symlinkSync('deadhost-12345', path.join(dir, 'SingletonLock'));
    const rec = new Recorder();
    await engine.open(5, rec);
    await waitFor(() => rec.last?.state === 'qr', 2000, 'qr');
    expect(() => fs.lstatSync(path.join(dir, 'SingletonLock'))).to.throw();

    // The lock names a live process of this host that is not a browser on this profile (the pid
    // was reused): the lock goes, the process stays.
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const dir6 = profileOf(6);
      fs.mkdirSync(dir6, { recursive: true });
      fs.symlinkSync(`${os.hostname()}-${other.pid}`, path.join(dir6, 'SingletonLock'));
      const rec6 = new Recorder();
      await engine.open(6, rec6);
      await waitFor(() => rec6.last?.state === 'qr', 2000, 'qr');
      expect(() => fs.lstatSync(path.join(dir6, 'SingletonLock'))).to.throw();
      expect(other.exitCode).to.equal(null);
      expect(other.signalCode).to.equal(null);
    } finally {
      other.kill();
    }
  });

  it('fetchSince yields messages newer than the mark, not our own sends; markSeen works', async () => {
    const { session } = await ready();
    world.inbound(1, { from: THEM, text: 'one' });
    await session.send({ chatId: '15550002000@c.us', type: 'text', text: 'ours', media: null });
    world.fromPhone(1, THEM, 'from phone');
    const got: Inbound[] = [];
    for await (const m of session.fetchSince(new Date(Date.now() - 60_000))) got.push(m);
    expect(got.map((m) => [m.text, m.fromMe ?? false])).to.deep.equal([
      ['one', false],
      ['from phone', true],
    ]);
    const none: Inbound[] = [];
    for await (const m of session.fetchSince(new Date(Date.now() + 60_000))) none.push(m);
    expect(none).to.have.length(0);
    await session.markSeen!('15550002000@c.us');
  });

  it('recentSent, markSeen and fetchSince run under a time limit; a page that hangs or lost WWebJS is reconnected', async () => {
    const { engine: e } = standInEngine(world, { timing: { sendTimeoutMs: 150 } });
    try {
      const rec = new Recorder();
      const session = await e.open(1, rec);
      await waitFor(() => rec.last?.state === 'qr', 2000, 'qr');
      world.scan(1, ME);
      const readyOn = async (what: string) => {
        await waitFor(() => rec.last?.state === 'ready', 3000, what);
        return world.live(1)!;
      };
      let c = await readyOn('ready');
      for (const call of ['getChatById', 'fetchMessages'] as const) {
        world.hangCalls.add(call);
        const err = await session.recentSent('15550002000@c.us', new Date(0)).catch((x: Error) => x);
        world.hangCalls.delete(call);
        expect((err as Error).message).to.match(/timed out/);
        await waitFor(() => world.live(1) !== c, 3000, `reconnect after ${call}`);
        c = await readyOn(`ready after ${call}`);
      }
      world.hangCalls.add('sendSeen');
      expect(((await session.markSeen!('15550002000@c.us').catch((x: Error) => x)) as Error).message).to.match(/timed out/);
      world.hangCalls.delete('sendSeen');
      await waitFor(() => world.live(1) !== c, 3000, 'reconnect after sendSeen');
      c = await readyOn('ready after sendSeen');
      c.injected = false;
      expect(((await session.markSeen!('15550002000@c.us').catch((x: Error) => x)) as Error).message).to.match(/reading 'sendSeen'/);
      await waitFor(() => world.live(1) !== c, 3000, 'reconnect after WWebJS gone');
      c = await readyOn('ready after WWebJS gone');
      world.hangCalls.add('getChats');
      const caught = await (async () => {
        for await (const _m of session.fetchSince(new Date(0))) void _m;
      })().catch((x: Error) => x);
      world.hangCalls.delete('getChats');
      expect((caught as Error).message).to.match(/timed out/);
      await waitFor(() => world.live(1) !== c, 3000, 'reconnect after getChats');
      await readyOn('ready at the end');
      expect(e.stats().reconnects).to.equal(5);
    } finally {
      await e.shutdown();
    }
  });

  it('exposes browsers, reconnects and browser memory on /metrics, and the Chromium problem on /healthz', async () => {
    const srv = await startTestServer({}, { engine });
    try {
      await ready(1);
      const metrics = await (await fetch(srv.url + '/metrics')).text();
      expect(metrics).to.match(/^incrm_wa_browsers 1$/m);
      expect(metrics).to.match(/^incrm_wa_reconnects 0$/m);
      expect(metrics).to.include('# TYPE incrm_wa_browser_rss_bytes gauge');
      const health = await (await fetch(srv.url + '/healthz')).json();
      expect(health.engine).to.equal('wwebjs');
      expect(health.engineProblem).to.equal(undefined);
    } finally {
      await srv.close();
    }
    const noChrome = new WwebjsEngine({ config: { DATA_DIR: tempDir(), WA_MAX_SESSIONS: 1, CHROMIUM_PATH: '/nonexistent' }, chromiumCandidates: [] });
    const srv2 = await startTestServer({}, { engine: noChrome });
    try {
      const health = await (await fetch(srv2.url + '/healthz')).json();
      expect(health.engineProblem).to.equal(CHROMIUM_NOT_FOUND);
    } finally {
      await srv2.close();
    }
  });

  it('a server restart on the same DATA_DIR restores the ready number without a QR, before numbers that never logged in; a QR that expired stays stopped', async () => {
    const dataDir = tempDir('incrm-restart-');
    const config = (max: number) => ({ DATA_DIR: dataDir, WA_MAX_SESSIONS: max, CHROMIUM_PATH: process.execPath, mediaMaxBytes: 1024 * 1024 });
    const first = standInEngine(world, { config: config(50), timing: { qrTimeoutMs: 1500 } });
    let srv = await startTestServer({ DATA_DIR: dataDir }, { engine: first.engine });
    let ids: { expired: number; waiting: number; linked: number };
    let portalId: number;
    try {
      const portal = await srv.db.repos.portals.create({ crm: 'none', name: 'restart' });
      portalId = portal.id;
      const api = client(srv.url + '/api/v1', srv.tokens.issue({ portalId, userId: '1', admin: true }, 3600_000));
      const state = async (id: number) => (await api.get(`/numbers/${id}`)).body as { state: string; stateDetail: string | null; phone: string | null };
      // Connected, never scanned: the QR expired.
      const expired = (await api.post('/numbers')).body.id as number;
      await waitFor(async () => (await state(expired)).state === 'failed', 5000, 'QR expired');
      // Linked and ready.
      const linked = (await api.post('/numbers')).body.id as number;
      await waitFor(async () => (await state(linked)).state === 'qr', 3000, 'qr');
      world.scan(linked, ME);
      await waitFor(async () => (await state(linked)).state === 'ready', 3000, 'ready');
      // Showing its first QR when the server stops.
      const waiting = (await api.post('/numbers')).body.id as number;
      await waitFor(async () => (await state(waiting)).state === 'qr', 3000, 'qr');
      ids = { expired, waiting, linked };
    } finally {
      await srv.close();
    }
    expect(world.liveClients()).to.have.length(0);

    // Same DATA_DIR, one browser slot: the number with a login gets it.
    const before = world.clients.length;
    const second = standInEngine(world, { config: config(1) });
    srv = await startTestServer({ DATA_DIR: dataDir }, { engine: second.engine });
    try {
      const api = client(srv.url + '/api/v1', srv.tokens.issue({ portalId: portalId!, userId: '1', admin: true }, 3600_000));
      const state = async (id: number) => (await api.get(`/numbers/${id}`)).body as { state: string; stateDetail: string | null; phone: string | null };
      await waitFor(async () => (await state(ids.linked)).state === 'ready', 5000, 'restored ready');
      expect((await state(ids.linked)).phone).to.equal(ME);
      const restarted = world.clients.slice(before);
      expect(restarted.filter((c) => c.numberId === ids.linked).map((c) => c.showingQr)).to.deep.equal([false]);
      expect(restarted.filter((c) => c.numberId === ids.expired)).to.have.length(0);
      expect(await state(ids.expired)).to.deep.include({ state: 'failed', stateDetail: QR_EXPIRED_REASON });
      // The interrupted QR episode comes back too, behind the number with a login.
      const w = await state(ids.waiting);
      expect(w.state).to.equal('starting');
      expect(w.stateDetail).to.match(/^queued: /);
    } finally {
      await srv.close();
    }
  });

  it('through the server: an ack that fired before send() returned is kept (the returned message says ACK_PENDING)', async () => {
    const srv = await startTestServer({}, { engine });
    try {
      const { api, id } = await readyThroughServer(srv);
      // WhatsApp acks the message while the send call is still on its way back; no ack follows.
      world.acksBeforeReturn = ['sent', 'delivered'];
      world.deliverLater = false;
      world.sendDelayMs = 30;
      const conv = (await api.post('/conversations', { phone: THEM, numberId: id })).body.id as number;
      const sent = await api.post(`/conversations/${conv}/messages`, { text: 'acked early' }, { 'Idempotency-Key': 'early-1' });
      expect(sent.status).to.equal(201);
      const m = await waitFor(async () => {
        const items = (await api.get(`/conversations/${conv}/messages`)).body.items as { id: number; status: string }[];
        return items.find((x) => x.id === sent.body.id && x.status === 'delivered');
      }, 5000, 'delivered');
      expect(m.status).to.equal('delivered');
      expect(world.delivered.get(THEM)!.map((d) => d.text)).to.deep.equal(['acked early']);
    } finally {
      await srv.close();
    }
  });

  it('through the server: a send cut off by a page crash is reconciled, not sent twice nor recorded as from the phone', async () => {
    const srv = await startTestServer({}, { engine });
    try {
      const portal = await srv.db.repos.portals.create({ crm: 'none', name: 'crash' });
      const api = client(srv.url + '/api/v1', srv.tokens.issue({ portalId: portal.id, userId: '1', admin: true }, 3600_000));
      const id = (await api.post('/numbers')).body.id as number;
      await waitFor(async () => (await api.get(`/numbers/${id}`)).body.state === 'qr', 3000, 'qr');
      world.scan(id, ME);
      await waitFor(async () => (await api.get(`/numbers/${id}`)).body.state === 'ready', 3000, 'ready');
      const conv = (await api.post('/conversations', { phone: THEM, numberId: id })).body.id as number;
      world.crashNextSend.add(id);
      const sent = await api.post(`/conversations/${conv}/messages`, { text: 'exactly once' }, { 'Idempotency-Key': 'crash-1' });
      expect(sent.status).to.equal(201);
      const linked = await waitFor(async () => {
        const items = (await api.get(`/conversations/${conv}/messages`)).body.items as { id: number; status: string; waMessageId?: string }[];
        const m = items.find((x) => x.id === sent.body.id);
        return m && m.status !== 'queued' ? items : null;
      }, 8000, 'send reconciled');
      await new Promise((r) => setTimeout(r, 300)); // room for a wrong resend or a catch-up duplicate
      const items = (await api.get(`/conversations/${conv}/messages`)).body.items as { id: number; status: string; text: string }[];
      expect(items.map((m) => m.text)).to.deep.equal(['exactly once']);
      expect(linked[0]!.status).to.be.oneOf(['sent', 'delivered']);
      expect(world.delivered.get(THEM)!.map((d) => d.text)).to.deep.equal(['exactly once']);
      expect(engine.stats().reconnects).to.equal(1);
    } finally {
      await srv.close();
    }
  });
});
