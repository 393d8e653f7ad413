import type { Clock, Database, LivePublisher, MediaStore } from './ports';

/** What the domain reports for /metrics; implemented outside so the domain stays SDK-free. */
export interface DomainMetrics {
  message(direction: 'in' | 'out', outcome: 'stored' | 'duplicate'): void;
  sessionEvent(event: 'reconnect' | 'catchup', n?: number): void;
}

export interface DomainLog {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

/** The shared collaborators of the domain services, built once by the composition root. */
export interface DomainContext {
  db: Database;
  live: LivePublisher;
  media: MediaStore;
  clock: Clock;
  metrics: DomainMetrics;
  log: DomainLog;
  /** Nudges the job runner after a commit that enqueued work. */
  /** New work was committed: wake the runners (only the lane of `kind` when given). */
  wakeJobs(kind?: string): void;
}
