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
import type { AckStatus, Inbound, SessionListener, WhatsAppEngine, WhatsAppSession } from '../server/domain/ports';
import type { NumberState } from '../server/domain/types';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const stamp = (...parts: unknown[]) => console.log(new Date().toISOString().slice(11, 19), ...parts);

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

export interface SmokeOptions {
  engine: WhatsAppEngine;
  /** E.164 phone to send to. */
  to: string;
  /** How long to print acks and incoming messages after the sends (or after a send failed). */
  waitSeconds: number;
  voice: Buffer | null;
  log?: (...parts: unknown[]) => void;
  /** Shows a QR payload (default: printed in the terminal). */
  showQr?: (qr: string) => void | Promise<void>;
  /** Resolves to stop early (Ctrl-C). */
  interrupted?: Promise<void>;
}

/** One smoke run: waits for ready, sends a text, an image and a voice note, then prints acks for a while. */
export async function runSmoke(opts: SmokeOptions): Promise<{ acks: Record<string, AckStatus[]>; sendError: string | null }> {
  const log = opts.log ?? stamp;
  let session: WhatsAppSession | null = null;
  let sentAll = false;
  let sendError: string | null = null;
  const acks = new Map<string, AckStatus[]>();
  const labels = new Map<string, string>();
  /** Acks that came before the send call returned the id they belong to: printed once it is known. */
  const early = new Map<string, AckStatus[]>();
  let stop: () => void = () => {};
  const done = new Promise<void>((resolve) => (stop = resolve));
  void opts.interrupted?.then(() => stop());

  const label = (id: string, name: string) => {
    labels.set(id, name);
    for (const status of early.get(id) ?? []) log('ack', name, status);
    early.delete(id);
  };

  const sendAll = async () => {
    if (sentAll || !session) return;
    sentAll = true;
    const chatId = chatIdOf(opts.to);
    try {
      const text = await session.send({ chatId, type: 'text', text: `InCRM smoke test ${new Date().toISOString()}`, media: null });
      log('sent text', text.waMessageId);
      label(text.waMessageId, 'text');
      const png = await QRCode.toBuffer('InCRM smoke test image', { width: 256 });
      const image = await session.send({ chatId, type: 'image', text: 'InCRM smoke test image', media: { data: png, mimetype: 'image/png', filename: 'smoke.png' } });
      log('sent image', image.waMessageId);
      label(image.waMessageId, 'image');
      if (opts.voice) {
        const voice = await session.send({ chatId, type: 'voice', text: null, ptt: true, media: { data: opts.voice, mimetype: 'audio/ogg; codecs=opus', filename: null } });
        log('sent voice note', voice.waMessageId);
        label(voice.waMessageId, 'voice');
      } else {
        log('no voice note sent: pass --voice note.ogg (Ogg/Opus) or install ffmpeg');
      }
    } catch (err) {
      sendError = (err as Error).message;
      log('send failed:', sendError);
    } finally {
      // Armed whatever happened: a failed send must not leave the script waiting for ever.
      log(`waiting ${opts.waitSeconds} s for acks (read the messages on ${opts.to} to see "read"/"played"); Ctrl-C to stop`);
      setTimeout(stop, opts.waitSeconds * 1000).unref();
    }
  };

  const listener: SessionListener = {
    onState(state: NumberState, detail) {
      log('state', state, detail?.reason ?? '', detail?.phone ?? '');
      if (state === 'qr' && detail?.qr) {
        const show =
          opts.showQr ??
          (async (qr: string) => {
            console.log(await QRCode.toString(qr, { type: 'terminal', small: true }));
            log('scan this QR with WhatsApp on the phone: Settings → Linked devices → Link a device');
          });
        void Promise.resolve(show(detail.qr)).catch((err) => log('QR not shown:', (err as Error).message));
      }
      if (state === 'ready') setImmediate(() => void sendAll());
      if (state === 'failed' || state === 'logged_out') stop();
    },
    async onInbound(msg: Inbound) {
      log(msg.fromMe ? 'sent from the phone' : 'received', msg.type, msg.phone ?? msg.chatId, JSON.stringify(msg.text), msg.media ? `${msg.media.mimetype} ${msg.media.data.length} B` : '');
    },
    async onAck(id: string, status: AckStatus) {
      const list = acks.get(id) ?? [];
      list.push(status);
      acks.set(id, list);
      const name = labels.get(id);
      if (name) log('ack', name, status);
      else early.set(id, [...(early.get(id) ?? []), status]); // its send has not returned yet
    },
    async onRevoked(id: string) {
      log('revoked', id);
    },
  };

  // The engine's timers do not hold the process open (the server's HTTP listener does): this does.
  const keepAlive = setInterval(() => {}, 60_000);
  try {
    session = await opts.engine.open(1, listener);
    await done;
  } finally {
    clearInterval(keepAlive);
  }
  for (const [id, statuses] of early) for (const s of statuses) log('ack', id, s); // never labelled
  const summary = Object.fromEntries([...acks].map(([id, s]) => [labels.get(id) ?? id, s]));
  log('acks:', JSON.stringify(summary));
  return { acks: summary, sendError };
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
    log: { info: (o, m) => stamp('info', m, JSON.stringify(o)), warn: (o, m) => stamp('warn', m, JSON.stringify(o)), error: (o, m) => stamp('error', m, JSON.stringify(o)) },
  });
  if (engine.problem()) throw new Error(engine.problem()!);
  stamp(`Chromium: ${engine.chromiumPath}; DATA_DIR: ${dataDir}`);
  const interrupted = new Promise<void>((resolve) => {
    process.on('SIGINT', resolve);
    process.on('SIGTERM', resolve);
  });
  const { sendError } = await runSmoke({ engine, to, waitSeconds, voice: voiceNote(dataDir), interrupted });
  await engine.shutdown();
  if (!keep) fs.rmSync(dataDir, { recursive: true, force: true });
  process.exit(sendError ? 1 : 0);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
