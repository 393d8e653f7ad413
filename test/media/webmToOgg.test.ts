import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { RunningServer } from '../../server/main';
import { NotWebmOpus, oggCrc, opusPacketSamples, readWebmOpus, webmToOgg } from '../../server/media/webmToOgg';
import { client, portalWithNumber, startTestServer, waitFor } from '../helpers/server';

// test/fixtures/chromium-voice.webm: 1.5 s recorded by Debian's Chromium MediaRecorder
// (audio/webm;codecs=opus) from its fake microphone (--use-fake-device-for-media-stream).
const FIXTURE = path.join(__dirname, '..', 'fixtures', 'chromium-voice.webm');

interface OggPage {
  flags: number;
  granule: bigint;
  serial: number;
  seq: number;
  packets: Buffer[];
  crcOk: boolean;
}

/** An independent Ogg reader (pages, lacing, CRC) to check what the remuxer wrote. */
function readOgg(buf: Buffer): OggPage[] {
  const pages: OggPage[] = [];
  let pos = 0;
  let carry: Buffer | null = null;
  while (pos < buf.length) {
    expect(buf.toString('ascii', pos, pos + 4), `page at ${pos}`).to.equal('OggS');
    const nseg = buf[pos + 26]!;
    const lacing = [...buf.subarray(pos + 27, pos + 27 + nseg)];
    const bodyLen = lacing.reduce((a, b) => a + b, 0);
    const page = Buffer.from(buf.subarray(pos, pos + 27 + nseg + bodyLen));
    const crc = page.readUInt32LE(22);
    page.writeUInt32LE(0, 22);
    const packets: Buffer[] = [];
    let off = pos + 27 + nseg;
    let cur: Buffer[] = carry ? [carry] : [];
    for (const l of lacing) {
      cur.push(buf.subarray(off, off + l));
      off += l;
      if (l < 255) {
        packets.push(Buffer.concat(cur));
        cur = [];
      }
    }
    carry = cur.length ? Buffer.concat(cur) : null;
    pages.push({ flags: buf[pos + 5]!, granule: buf.readBigInt64LE(pos + 6), serial: buf.readUInt32LE(pos + 14), seq: buf.readUInt32LE(pos + 18), packets, crcOk: oggCrc(page) === crc });
    pos = off;
  }
  return pages;
}

describe('WebM/Opus → Ogg/Opus remux', () => {
  const webm = fs.readFileSync(FIXTURE);

  it('reads the Opus track of a Chromium recording (unknown-size Segment and Clusters)', () => {
    const { head, packets } = readWebmOpus(webm);
    expect(head.subarray(0, 8).toString('ascii')).to.equal('OpusHead');
    expect(head.readUInt32LE(12), 'input rate').to.equal(48_000);
    expect(packets.length).to.be.greaterThan(10);
  });

  it('writes an Ogg stream: OggS pages with valid CRCs, OpusHead then OpusTags, BOS/EOS, granule ≈ duration × 48000', () => {
    const ogg = webmToOgg(webm);
    expect(ogg.subarray(0, 4).toString('ascii')).to.equal('OggS');
    const pages = readOgg(ogg);
    expect(pages.length).to.be.at.least(3);
    pages.forEach((p, i) => {
      expect(p.crcOk, `page ${i} CRC`).to.equal(true);
      expect(p.seq).to.equal(i);
      expect(p.serial).to.equal(pages[0]!.serial);
    });
    expect(pages[0]!.flags & 0x02, 'first page is BOS').to.equal(0x02);
    expect(pages[0]!.packets).to.have.length(1);
    expect(pages[0]!.packets[0]!.subarray(0, 8).toString('ascii')).to.equal('OpusHead');
    expect(pages[1]!.packets[0]!.subarray(0, 8).toString('ascii')).to.equal('OpusTags');
    expect(pages[0]!.granule).to.equal(0n);
    expect(pages[1]!.granule).to.equal(0n);
    const last = pages[pages.length - 1]!;
    expect(last.flags & 0x04, 'last page is EOS').to.equal(0x04);
    // Granules never go back; the last one counts every sample of the recording.
    for (let i = 3; i < pages.length; i++) expect(pages[i]!.granule >= pages[i - 1]!.granule).to.equal(true);
    const audio = pages.slice(2).flatMap((p) => p.packets);
    const { packets } = readWebmOpus(webm);
    expect(audio.map((p) => p.toString('hex'))).to.deep.equal(packets.map((p) => p.toString('hex')));
    const preSkip = pages[0]!.packets[0]!.readUInt16LE(10);
    const seconds = Number(last.granule - BigInt(preSkip)) / 48_000;
    expect(seconds, 'duration of the 1.5 s recording').to.be.within(1.3, 1.7);
  });

  it('counts Opus packet durations from the TOC byte', () => {
    expect(opusPacketSamples(Buffer.from([0xf8]))).to.equal(960); // CELT 20 ms, one frame
    expect(opusPacketSamples(Buffer.from([0xfb, 0x03]))).to.equal(2880); // CELT 20 ms × 3
    expect(opusPacketSamples(Buffer.from([0x09]))).to.equal(1920); // SILK 20 ms, two frames
    expect(opusPacketSamples(Buffer.from([0x18]))).to.equal(2880); // SILK 60 ms
  });

  it('keeps the complete blocks of a truncated recording', () => {
    const ogg = webmToOgg(webm.subarray(0, Math.floor(webm.length * 0.6)));
    const pages = readOgg(ogg);
    const seconds = Number(pages[pages.length - 1]!.granule) / 48_000;
    expect(seconds).to.be.within(0.5, 1.2);
  });

  it('refuses what is not WebM/Opus', () => {
    expect(() => webmToOgg(Buffer.from('OggS not webm'))).to.throw(NotWebmOpus);
    expect(() => webmToOgg(Buffer.alloc(0))).to.throw(NotWebmOpus);
    expect(() => webmToOgg(webm.subarray(0, 60))).to.throw(NotWebmOpus, /Opus/);
  });

  describe('through the API', function () {
    this.timeout(20_000);
    let srv: RunningServer;
    before(async () => {
      srv = await startTestServer();
    });
    after(() => srv?.close());

    async function sendVoice(user: ReturnType<typeof client>, conversationId: number, data: Buffer, type: string, key: string) {
      const form = new FormData();
      form.set('voice', 'true');
      form.set('file', new Blob([new Uint8Array(data)], { type }), 'voice.webm');
      return user.post(`/conversations/${conversationId}/messages`, form, { 'Idempotency-Key': key });
    }

    it('a WebM voice note is stored and sent as an Ogg/Opus push-to-talk note', async () => {
      const w = await portalWithNumber(srv);
      const conv = (await w.user.post('/conversations', { phone: '+15550009001' })).body;
      const res = await sendVoice(w.user, conv.id, webm, 'audio/webm;codecs=opus', 'voice-1');
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      expect(res.body.type).to.equal('voice');
      const got = await waitFor(async () => (await w.anon.get('/simulator/delivered?phone=%2B15550009001')).body.items[0], 5000, 'delivered voice');
      expect(got.type).to.equal('voice');
      expect(got.ptt).to.equal(true);
      expect(got.mimetype).to.match(/^audio\/ogg/);
    });

    it('a voice note that is neither Ogg nor WebM/Opus gets a 400 naming the file', async () => {
      const w = await portalWithNumber(srv, '+15550000077');
      const conv = (await w.user.post('/conversations', { phone: '+15550009002' })).body;
      const res = await sendVoice(w.user, conv.id, Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x80]), 'audio/webm', 'voice-2');
      expect(res.status).to.equal(400);
      expect(res.body.error.message).to.match(/^file: /);
    });
  });
});
