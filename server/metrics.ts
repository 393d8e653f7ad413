import client from 'prom-client';
import type { DomainMetrics } from './domain/context';
import type { EngineStats } from './domain/ports';

/** The Prometheus registry of one server; gauges that live in the database are read at scrape time. */
export class Metrics implements DomainMetrics {
  readonly registry = new client.Registry();
  readonly messages = new client.Counter({
    name: 'incrm_messages_total',
    help: 'Messages stored (or recognised as duplicates), by direction',
    labelNames: ['direction', 'outcome'],
    registers: [this.registry],
  });
  readonly jobsFinished = new client.Counter({
    name: 'incrm_jobs_finished_total',
    help: 'Job attempts finished, by kind and outcome (done, retry, dead)',
    labelNames: ['kind', 'outcome'],
    registers: [this.registry],
  });
  readonly sessionEvents = new client.Counter({
    name: 'incrm_session_events_total',
    help: 'Session reconnects and messages recovered by catch-up',
    labelNames: ['event'],
    registers: [this.registry],
  });
  readonly httpDuration = new client.Histogram({
    name: 'incrm_http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  constructor(sources: { jobs(): Promise<Record<string, number>>; sessions(): Record<string, number>; engine?(): EngineStats | null }) {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'incrm_' });
    new client.Gauge({
      name: 'incrm_jobs',
      help: 'Jobs in the queue by state (pending, running, dead)',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        const counts = await sources.jobs();
        this.reset();
        for (const state of ['pending', 'running', 'dead']) this.set({ state }, counts[state] ?? 0);
      },
    });
    new client.Gauge({
      name: 'incrm_sessions',
      help: 'WhatsApp sessions of this process by state',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const counts = sources.sessions();
        this.reset();
        for (const state of ['starting', 'qr', 'ready', 'offline', 'logged_out', 'failed']) this.set({ state }, counts[state] ?? 0);
      },
    });
    // Browser engines only: read at scrape time (RSS from /proc).
    new client.Gauge({
      name: 'incrm_wa_browsers',
      help: 'Browsers running for WhatsApp sessions',
      registers: [this.registry],
      collect() {
        this.set(sources.engine?.()?.browsers.length ?? 0);
      },
    });
    new client.Gauge({
      name: 'incrm_wa_reconnects',
      help: 'WhatsApp sessions lost and reconnected by the engine since start',
      registers: [this.registry],
      collect() {
        this.set(sources.engine?.()?.reconnects ?? 0);
      },
    });
    new client.Gauge({
      name: 'incrm_wa_browser_rss_bytes',
      help: 'Resident memory of each browser process tree (sum of RSS, shared pages counted per process)',
      labelNames: ['number_id'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const b of sources.engine?.()?.browsers ?? []) this.set({ number_id: String(b.numberId) }, b.rssBytes);
      },
    });
    new client.Gauge({
      name: 'incrm_wa_browser_pss_bytes',
      help: 'Proportional memory of each browser process tree (shared pages split): use this for capacity',
      labelNames: ['number_id'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const b of sources.engine?.()?.browsers ?? []) if (b.pssBytes !== undefined) this.set({ number_id: String(b.numberId) }, b.pssBytes);
      },
    });
  }

  message(direction: 'in' | 'out', outcome: 'stored' | 'duplicate'): void {
    this.messages.inc({ direction, outcome });
  }

  sessionEvent(event: 'reconnect' | 'catchup', n = 1): void {
    this.sessionEvents.inc({ event }, n);
  }
}
