import type { SessionListener, WhatsAppEngine, WhatsAppSession } from '../../../domain/ports';

// Placeholder until the whatsapp-web.js engine lands (issue 3): the server starts and every
// number reports why it cannot connect, instead of crashing.
export class WwebjsEngine implements WhatsAppEngine {
  readonly name = 'wwebjs';
  private readonly reason = 'the whatsapp-web.js engine is not part of this build yet; run with WA_ENGINE=simulator';

  async open(_numberId: number, listener: SessionListener): Promise<WhatsAppSession> {
    setImmediate(() => listener.onState('failed', { reason: this.reason }));
    const fail = async (): Promise<never> => {
      throw new Error(this.reason);
    };
    return {
      send: fail,
      fetchSince: async function* () {},
      recentSent: async () => [],
      close: async () => {},
      logout: async () => {},
    };
  }

  problem(): string | null {
    return this.reason;
  }
}
