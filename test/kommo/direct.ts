import { KommoAdapter } from '../../server/adapters/crm/kommo/adapter';
import { KommoApi } from '../../server/adapters/crm/kommo/client';
import { KommoStore } from '../../server/adapters/crm/kommo/store';
import type { Clock, CrmMessageRecord, LivePublisher } from '../../server/domain/ports';
import { systemClock } from '../../server/domain/ports';
import type { Portal } from '../../server/domain/types';
import { createLogger } from '../../server/logger';
import { SecretBox } from '../../server/security/secretBox';
import { KOMMO_APP, type KommoWorld } from './world';

export interface DirectKommo {
  api: KommoApi;
  store: KommoStore;
  adapter: KommoAdapter;
  portal(): Promise<Portal>;
}

/**
 * A second Kommo client and adapter over the world's database and fake, built by hand so a test
 * can give it timeouts (and a pace) the server's configuration does not expose. Same code, same
 * tables, same fake: only the knobs differ.
 */
export function directKommo(w: KommoWorld, opts: { timeoutMs?: number; lingerMs?: number; maxPerSecond?: number; clock?: Clock; live?: LivePublisher } = {}): DirectKommo {
  const clock = opts.clock ?? systemClock;
  const log = createLogger('silent');
  const store = new KommoStore(w.srv.db.knex, new SecretBox(w.srv.config.SECRET_KEY, 'kommo-tokens'));
  const api = new KommoApi(KOMMO_APP, store, clock, log, opts.maxPerSecond ?? 1000, opts.timeoutMs ?? 20_000, opts.lingerMs ?? 120_000);
  const adapter = new KommoAdapter({ api, store, live: opts.live ?? { publish() {} }, clock, log });
  return {
    api,
    store,
    adapter,
    portal: async () => (await w.srv.db.repos.portals.get(w.portalId))!,
  };
}

// The suites' one offset clock (real time plus an offset a test moves forward).
export { OffsetClock } from '../licence/world';

let seq = 0;

/** A mirrored message as the CRM jobs hand it to the adapter (unique id per call). */
export function message(text: string, over: Partial<CrmMessageRecord> = {}): CrmMessageRecord {
  return {
    messageId: 900_000 + ++seq + Math.floor(Math.random() * 1e6) * 10,
    direction: 'in',
    type: 'text',
    text,
    phone: '+15557771234',
    contactName: 'Direct Test',
    numberPhone: '+15550001000',
    mediaUrl: null,
    at: Date.now(),
    status: 'delivered',
    fromPhone: false,
    ...over,
  };
}
