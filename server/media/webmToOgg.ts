// WebM/Opus → Ogg/Opus, by remuxing (no transcoding, no ffmpeg).
//
// Why: browsers record voice with MediaRecorder, and Chromium only offers
// `audio/webm;codecs=opus`. WhatsApp plays a push-to-talk voice note only from Ogg/Opus, and the
// Opus packets inside the WebM are exactly the packets an Ogg stream carries — so we lift them
// out of the Matroska SimpleBlocks and write them into Ogg pages (RFC 7845) with an OpusHead (the
// track's CodecPrivate) and an OpusTags header, and granule positions counted from each packet's
// TOC byte (RFC 6716 §3.1), which is what players use for the duration.

export class NotWebmOpus extends Error {}

// Matroska element ids (with their length marker bits, as written in the file).
const ID = {
  EBML: 0x1a45dfa3,
  DocType: 0x4282,
  Segment: 0x18538067,
  Cluster: 0x1f43b675,
  Timecode: 0xe7,
  SimpleBlock: 0xa3,
  BlockGroup: 0xa0,
  Block: 0xa1,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackType: 0x83,
  CodecID: 0x86,
  CodecPrivate: 0x63a2,
  CodecDelay: 0x56aa,
  Audio: 0xe1,
  Channels: 0x9f,
} as const;

/**
 * Master elements we walk into. Everything else is skipped by its size. Walking the children of a
 * master as if they followed it flatly is what makes "unknown size" masters work: Chromium writes
 * the Segment and every Cluster with an unknown size (it streams), so their ends are unknowable
 * until the next sibling's id appears.
 */
const MASTERS = new Set<number>([ID.Segment, ID.Cluster, ID.Tracks, ID.TrackEntry, ID.BlockGroup, ID.Audio]);

interface Track {
  number: number;
  type: number | null;
  codec: string | null;
  codecPrivate: Buffer | null;
  codecDelayNs: number | null;
  channels: number | null;
}

function readVint(buf: Buffer, pos: number, keepMarker: boolean): { value: number; length: number; unknown: boolean } {
  const first = buf[pos];
  if (first === undefined) throw new NotWebmOpus('truncated file');
  let length = 1;
  while (length <= 8 && !(first & (0x80 >> (length - 1)))) length++;
  if (length > 8) throw new NotWebmOpus(`bad EBML length byte at ${pos}`);
  if (pos + length > buf.length) throw new NotWebmOpus('truncated file');
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    const b = buf[pos + i]!;
    if (b !== 0xff) allOnes = false;
    value = value * 256 + b;
  }
  return { value, length, unknown: !keepMarker && allOnes };
}

function readUint(buf: Buffer): number {
  let v = 0;
  for (const b of buf) v = v * 256 + b;
  return v;
}

/** Samples (at 48 kHz) in one Opus packet, from its TOC byte and frame count (RFC 6716 §3.1). */
export function opusPacketSamples(packet: Buffer): number {
  const toc = packet[0];
  if (toc === undefined) return 0;
  const config = toc >> 3;
  // Frame duration in units of 1/400 s (2.5 ms), so everything stays an integer.
  let units: number;
  if (config < 12) units = [4, 8, 16, 24][config % 4]!; // SILK: 10, 20, 40, 60 ms
  else if (config < 16) units = [4, 8][config % 2]!; // Hybrid: 10, 20 ms
  else units = [1, 2, 4, 8][config % 4]!; // CELT: 2.5, 5, 10, 20 ms
  const code = toc & 3;
  const frames = code === 0 ? 1 : code === 3 ? (packet[1] ?? 0) & 0x3f : 2;
  return frames * units * 120; // 2.5 ms at 48 kHz = 120 samples
}

/** The frames of a (Simple)Block's payload after its header, undoing Xiph, EBML or fixed lacing. */
function unlace(buf: Buffer, pos: number, end: number, flags: number): Buffer[] {
  const lacing = (flags >> 1) & 3;
  if (lacing === 0) return [buf.subarray(pos, end)];
  const count = buf[pos]! + 1;
  pos += 1;
  const sizes: number[] = [];
  if (lacing === 1) {
    // Xiph: each size is a run of 255s plus a final byte.
    for (let i = 0; i < count - 1; i++) {
      let size = 0;
      let b: number;
      do {
        b = buf[pos++]!;
        size += b;
      } while (b === 255);
      sizes.push(size);
    }
  } else if (lacing === 3) {
    // EBML: first size as a vint, the rest as signed differences.
    const first = readVint(buf, pos, false);
    pos += first.length;
    sizes.push(first.value);
    for (let i = 1; i < count - 1; i++) {
      const d = readVint(buf, pos, false);
      pos += d.length;
      const bias = 2 ** (7 * d.length - 1) - 1;
      sizes.push(sizes[i - 1]! + d.value - bias);
    }
  } else {
    const each = (end - pos) / count;
    if (!Number.isInteger(each)) throw new NotWebmOpus('bad fixed lacing');
    for (let i = 0; i < count - 1; i++) sizes.push(each);
  }
  const used = sizes.reduce((a, b) => a + b, 0);
  sizes.push(end - pos - used);
  const frames: Buffer[] = [];
  for (const s of sizes) {
    if (s < 0 || pos + s > end) throw new NotWebmOpus('bad lacing sizes');
    frames.push(buf.subarray(pos, pos + s));
    pos += s;
  }
  return frames;
}

/** Parses a WebM file: its Opus track and that track's packets in file order. */
export function readWebmOpus(buf: Buffer): { head: Buffer; packets: Buffer[] } {
  if (buf.length < 4 || buf.readUInt32BE(0) !== ID.EBML) throw new NotWebmOpus('not a WebM/Matroska file');
  const tracks: Track[] = [];
  let current: Track | null = null;
  const blocks: { track: number; frames: Buffer[] }[] = [];
  let pos = 0;
  while (pos < buf.length) {
    // A file cut mid-element (a recording stopped abruptly): keep what was complete.
    let id, size;
    try {
      id = readVint(buf, pos, true);
      size = readVint(buf, pos + id.length, false);
    } catch {
      break;
    }
    const dataStart = pos + id.length + size.length;
    if (MASTERS.has(id.value)) {
      if (id.value === ID.TrackEntry) {
        current = { number: 0, type: null, codec: null, codecPrivate: null, codecDelayNs: null, channels: null };
        tracks.push(current);
      }
      pos = dataStart;
      continue;
    }
    if (size.unknown) throw new NotWebmOpus(`element 0x${id.value.toString(16)} has an unknown size`);
    const dataEnd = dataStart + size.value;
    if (dataEnd > buf.length) break; // truncated last element
    const data = buf.subarray(dataStart, dataEnd);
    switch (id.value) {
      case ID.EBML: {
        // The header is a master too, but we only need its DocType.
        let p = 0;
        while (p < data.length) {
          const cid = readVint(data, p, true);
          const cs = readVint(data, p + cid.length, false);
          const s = p + cid.length + cs.length;
          if (cid.value === ID.DocType) {
            const doc = data.subarray(s, s + cs.value).toString('ascii');
            if (doc !== 'webm' && doc !== 'matroska') throw new NotWebmOpus(`DocType ${doc} is not webm`);
          }
          p = s + cs.value;
        }
        break;
      }
      case ID.TrackNumber:
        if (current) current.number = readUint(data);
        break;
      case ID.TrackType:
        if (current) current.type = readUint(data);
        break;
      case ID.CodecID:
        if (current) current.codec = data.toString('ascii').replace(/\0+$/, '');
        break;
      case ID.CodecPrivate:
        if (current) current.codecPrivate = Buffer.from(data);
        break;
      case ID.CodecDelay:
        if (current) current.codecDelayNs = readUint(data);
        break;
      case ID.Channels:
        if (current) current.channels = readUint(data);
        break;
      case ID.SimpleBlock:
      case ID.Block: {
        const track = readVint(data, 0, false);
        const headerEnd = track.length + 3; // track number, 16-bit relative timecode, flags
        if (headerEnd > data.length) throw new NotWebmOpus('truncated block');
        blocks.push({ track: track.value, frames: unlace(data, headerEnd, data.length, data[track.length + 2]!) });
        break;
      }
      default:
        break; // Cues, Tags, Info, Void…: not needed to remux
    }
    pos = dataEnd;
  }
  const opus = tracks.find((t) => t.codec === 'A_OPUS');
  if (!opus) {
    const codecs = tracks.map((t) => t.codec).filter(Boolean);
    throw new NotWebmOpus(codecs.length ? `the audio is ${codecs.join(', ')}, not Opus` : 'no Opus track');
  }
  let head = opus.codecPrivate;
  if (!head || head.length < 19 || head.subarray(0, 8).toString('ascii') !== 'OpusHead') {
    // Without CodecPrivate, build the identification header from the track's own fields.
    head = Buffer.alloc(19);
    head.write('OpusHead', 0, 'ascii');
    head[8] = 1;
    head[9] = opus.channels ?? 1;
    head.writeUInt16LE(Math.round(((opus.codecDelayNs ?? 0) * 48_000) / 1e9), 10);
    head.writeUInt32LE(48_000, 12);
    head.writeInt16LE(0, 16);
    head[18] = 0;
    if (head[9]! > 2) throw new NotWebmOpus('multichannel Opus without CodecPrivate');
  }
  const packets = blocks.filter((b) => b.track === opus.number).flatMap((b) => b.frames).filter((f) => f.length > 0);
  if (!packets.length) throw new NotWebmOpus('the Opus track has no audio');
  return { head, packets };
}

// Ogg's CRC-32: polynomial 0x04c11db7, not reflected, initial value 0.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let k = 0; k < 8; k++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    t[i] = r >>> 0;
  }
  return t;
})();

export function oggCrc(buf: Buffer): number {
  let crc = 0;
  for (const b of buf) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ b) & 0xff]!) >>> 0;
  return crc;
}

function oggPage(packets: Buffer[], granule: bigint, serial: number, seq: number, flags: number): Buffer {
  const lacing: number[] = [];
  for (const p of packets) {
    for (let n = p.length; ; n -= 255) {
      lacing.push(Math.min(n, 255));
      if (n < 255) break;
    }
  }
  const header = Buffer.alloc(27 + lacing.length);
  header.write('OggS', 0, 'ascii');
  header[4] = 0;
  header[5] = flags;
  header.writeBigInt64LE(granule, 6);
  header.writeUInt32LE(serial, 14);
  header.writeUInt32LE(seq, 18);
  header.writeUInt32LE(0, 22);
  header[26] = lacing.length;
  Buffer.from(lacing).copy(header, 27);
  const page = Buffer.concat([header, ...packets]);
  page.writeUInt32LE(oggCrc(page), 22);
  return page;
}

/** Segments a packet takes in a page's lacing table. */
const segmentsOf = (p: Buffer) => Math.floor(p.length / 255) + 1;

/** Writes an Ogg/Opus stream from an OpusHead and the packets (RFC 7845). */
export function writeOggOpus(head: Buffer, packets: Buffer[], opts: { serial?: number; vendor?: string } = {}): Buffer {
  const serial = opts.serial ?? 0x494e4352; // "INCR": any value is fine for a single stream
  const vendor = Buffer.from(opts.vendor ?? 'InCRM', 'utf8');
  const tags = Buffer.alloc(8 + 4 + vendor.length + 4);
  tags.write('OpusTags', 0, 'ascii');
  tags.writeUInt32LE(vendor.length, 8);
  vendor.copy(tags, 12);
  tags.writeUInt32LE(0, 12 + vendor.length); // no user comments
  const pages: Buffer[] = [oggPage([head], 0n, serial, 0, 0x02), oggPage([tags], 0n, serial, 1, 0)];
  let seq = 2;
  let granule = 0n;
  let batch: Buffer[] = [];
  let segments = 0;
  let bytes = 0;
  // About one second of audio per page keeps the overhead small and seeking reasonable.
  const flush = (last: boolean) => {
    if (!batch.length) return;
    pages.push(oggPage(batch, granule, serial, seq++, last ? 0x04 : 0));
    batch = [];
    segments = 0;
    bytes = 0;
  };
  packets.forEach((p, i) => {
    if (segmentsOf(p) > 255) throw new NotWebmOpus('an Opus packet larger than an Ogg page');
    if (segments + segmentsOf(p) > 255 || bytes + p.length > 16_000) flush(false);
    batch.push(p);
    segments += segmentsOf(p);
    bytes += p.length;
    granule += BigInt(opusPacketSamples(p));
    if (i === packets.length - 1) flush(true);
  });
  return Buffer.concat(pages);
}

/** WebM/Opus (as MediaRecorder makes it) → Ogg/Opus bytes. Throws NotWebmOpus for anything else. */
export function webmToOgg(webm: Buffer): Buffer {
  const { head, packets } = readWebmOpus(webm);
  return writeOggOpus(head, packets);
}

/** True when the bytes start like an EBML (WebM/Matroska) file. */
export function looksLikeWebm(buf: Buffer): boolean {
  return buf.length >= 4 && buf.readUInt32BE(0) === ID.EBML;
}

/** True when the bytes are an Ogg stream whose first packet is an OpusHead. */
export function looksLikeOggOpus(buf: Buffer): boolean {
  return buf.length >= 36 && buf.toString('ascii', 0, 4) === 'OggS' && buf.toString('ascii', 28, 36) === 'OpusHead';
}
