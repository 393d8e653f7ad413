// Manual smoke test of the whatsapp-web.js engine with a real phone (docs/smoke-whatsapp.md).
//   npx tsx scripts/smoke-whatsapp.ts +15551234567 [--voice note.ogg] [--data-dir DIR] [--wait 120]
// Starts one session in a temporary DATA_DIR (or DIR, to keep the login between runs), prints the
// QR in the terminal, and once linked sends a text, an image and a voice note to the number given,
// printing every state, ack and incoming message. Ctrl-C stops (the login is kept in DIR).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import QRCode from 'qrcode';
import { WwebjsEngine } from '../server/adapters/whatsapp/wwebjs/engine';
import { toE164, chatIdOf } from '../server/domain/phone';
import type { AckStatus, Inbound, SessionListener, WhatsAppSession } from '../server/domain/ports';
import type { NumberState } from '../server/domain/types';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const log = (...parts: unknown[]) => console.log(new Date().toISOString().slice(11, 19), ...parts);

/** An Ogg/Opus voice note: the file given, or a 2 s tone made by ffmpeg when it is installed. */
function voiceNote(dir: string): Buffer | null {
  const given = arg('--voice');
  if (given) return fs.readFileSync(given);
  const out = path.join(dir, 'tone.ogg');
  try {
    execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-c:a', 'libopus', '-b:a', '32k', out]);
    return fs.readFileSync(out);
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const to = toE164(process.argv[2] ?? '');
  if (!to) {
    console.error('usage: npx tsx scripts/smoke-whatsapp.ts +15551234567 [--voice note.ogg] [--data-dir DIR] [--wait 120]');
    process.exit(2);
  }
  const keep = arg('--data-dir');
  const dataDir = keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'incrm-smoke-'));
  const waitSeconds = Number(arg('--wait') ?? 120);
  const engine = new WwebjsEngine({
    config: { DATA_DIR: dataDir, WA_MAX_SESSIONS: 1, CHROMIUM_PATH: process.env.CHROMIUM_PATH },
    log: { info: (o, m) => log('info', m, JSON.stringify(o)), warn: (o, m) => log('warn', m, JSON.stringify(o)), error: (o, m) => log('error', m, JSON.stringify(o)) },
  });
  if (engine.problem()) throw new Error(engine.problem()!);
  log(`Chromium: ${engine.chromiumPath}; DATA_DIR: ${dataDir}`);

  let session: WhatsAppSession | null = null;
  let sentAll = false;
  const acks = new Map<string, AckStatus[]>();
  const labels = new Map<string, string>();
  let stop: () => void = () => {};
  const done = new Promise<void>((resolve) => (stop = resolve));

  const sendAll = async () => {
    if (sentAll || !session) return;
    sentAll = true;
    const chatId = chatIdOf(to);
    const text = await session.send({ chatId, type: 'text', text: `InCRM smoke test ${new Date().toISOString()}`, media: null });
    labels.set(text.waMessageId, 'text');
    log('sent text', text.waMessageId);
    const png = await QRCode.toBuffer('InCRM smoke test image', { width: 256 });
    const image = await session.send({ chatId, type: 'image', text: 'InCRM smoke test image', media: { data: png, mimetype: 'image/png', filename: 'smoke.png' } });
    labels.set(image.waMessageId, 'image');
    log('sent image', image.waMessageId);
    const ogg = voiceNote(dataDir);
    if (ogg) {
      const voice = await session.send({ chatId, type: 'voice', text: null, ptt: true, media: { data: ogg, mimetype: 'audio/ogg; codecs=opus', filename: null } });
      labels.set(voice.waMessageId, 'voice');
      log('sent voice note', voice.waMessageId);
    } else {
      log('no voice note sent: pass --voice note.ogg (Ogg/Opus) or install ffmpeg');
    }
    log(`waiting ${waitSeconds} s for acks (read the messages on ${to} to see "read"/"played"); Ctrl-C to stop`);
    setTimeout(stop, waitSeconds * 1000).unref();
  };

  const listener: SessionListener = {
    onState(state: NumberState, detail) {
      log('state', state, detail?.reason ?? '', detail?.phone ?? '');
      if (state === 'qr' && detail?.qr) {
        void QRCode.toString(detail.qr, { type: 'terminal', small: true }).then((s) => {
          console.log(s);
          log('scan this QR with WhatsApp on the phone: Settings → Linked devices → Link a device');
        });
      }
      if (state === 'ready') setImmediate(() => void sendAll().catch((err) => log('send failed:', (err as Error).message)));
      if (state === 'failed' || state === 'logged_out') stop();
    },
    async onInbound(msg: Inbound) {
      log(msg.fromMe ? 'sent from the phone' : 'received', msg.type, msg.phone ?? msg.chatId, JSON.stringify(msg.text), msg.media ? `${msg.media.mimetype} ${msg.media.data.length} B` : '');
    },
    async onAck(id: string, status: AckStatus) {
      const list = acks.get(id) ?? [];
      list.push(status);
      acks.set(id, list);
      log('ack', labels.get(id) ?? id, status);
    },
    async onRevoked(id: string) {
      log('revoked', id);
    },
  };

  // The engine's timers do not hold the process open (the server's HTTP listener does): this does.
  const keepAlive = setInterval(() => {}, 60_000);
  process.on('SIGINT', () => stop());
  process.on('SIGTERM', () => stop());
  session = await engine.open(1, listener);
  await done;
  log('acks:', JSON.stringify(Object.fromEntries([...acks].map(([id, s]) => [labels.get(id) ?? id, s]))));
  clearInterval(keepAlive);
  await engine.shutdown();
  if (!keep) fs.rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
