import { PermanentSendError, type SessionListener, type WhatsAppEngine, type WhatsAppSession } from '../../../domain/ports';
import { NotOnWhatsApp, type SimNetwork } from './network';

/** How often an unscanned QR is replaced, as WhatsApp Web rotates its codes. */
const QR_ROTATE_MS = 20_000;
/** Acks of sends this recent are re-reported on (re)connect. */
const ACK_REPLAY_MS = 24 * 3600_000;

/** The simulator behind the engine port: sessions of numbers on the in-process SimNetwork. */
export class SimulatorEngine implements WhatsAppEngine {
  readonly name = 'simulator';
  private readonly open_ = new Set<number>();

  constructor(readonly network: SimNetwork) {}

  async open(numberId: number, listener: SessionListener): Promise<WhatsAppSession> {
    const net = this.network;
    let closed = false;
    let rotation = 0;
    let qrTimer: NodeJS.Timeout | null = null;
    const stopQr = () => {
      if (qrTimer) clearInterval(qrTimer);
      qrTimer = null;
    };
    const showQr = () => listener.onState('qr', { qr: `incrm-simulator:${numberId}:${++rotation}` });
    const report = (p: Promise<void>) => p.catch(() => {}); // the domain logs its own failures

    net.attach(numberId, {
      inbound: (msg) => !closed && void report(listener.onInbound(msg)),
      ack: (id, status) => !closed && void report(listener.onAck(id, status)),
      identified: (hidden, phone) => !closed && void report(listener.onChatIdentified?.(hidden, phone) ?? Promise.resolve()),
      state: (state, phone) => {
        if (closed) return;
        stopQr();
        listener.onState(state, { phone });
        if (state === 'ready') for (const a of net.recentStatuses(numberId, Date.now() - ACK_REPLAY_MS)) void report(listener.onAck(a.waMessageId, a.status));
      },
    });
    this.open_.add(numberId);

    // Like a browser loading WhatsApp Web: `starting` first, then a QR or the restored login.
    listener.onState('starting');
    setImmediate(() => {
      if (closed) return;
      const acc = net.accountOf(numberId);
      if (acc) {
        listener.onState(acc.online ? 'ready' : 'offline', { phone: acc.phone });
        if (acc.online) for (const a of net.recentStatuses(numberId, Date.now() - ACK_REPLAY_MS)) void report(listener.onAck(a.waMessageId, a.status));
      } else {
        showQr();
        qrTimer = setInterval(showQr, QR_ROTATE_MS);
        qrTimer.unref();
      }
    });

    const shut = () => {
      closed = true;
      stopQr();
      net.detach(numberId);
      this.open_.delete(numberId);
    };

    return {
      send: async (out) => {
        if (closed) throw new Error('session closed');
        try {
          return { waMessageId: net.send(numberId, out) };
        } catch (err) {
          if (err instanceof NotOnWhatsApp) throw new PermanentSendError('not on WhatsApp');
          throw err;
        }
      },
      fetchSince: async function* (since: Date) {
        yield* net.fetchSince(numberId, since.getTime());
      },
      recentSent: async (chatId, since) => net.recentSent(numberId, chatId, since.getTime()),
      markSeen: async () => {},
      close: async () => shut(),
      logout: async () => {
        shut();
        net.unlink(numberId);
      },
    };
  }

  problem(): string | null {
    return null;
  }

  async shutdown(): Promise<void> {
    this.network.close();
  }
}
