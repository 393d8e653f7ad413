// The live stream (SSE) with our own reconnects: EventSource cannot send a fresh token, so on an
// error we close it and open a new one with a (possibly renewed) token and the last event id.
// A `resync` from the server (or a restart) means events were missed: the app reloads its state.
import type { Api } from './api';

export type StreamHandler = (name: string, data: unknown) => void;

const EVENTS = ['message', 'status', 'conversation', 'number', 'licence', 'alert', 'resync', 'hello'];

export class Stream {
  private es: EventSource | null = null;
  private lastId = '';
  private boot = '';
  private closed = false;
  private retryMs = 500;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly api: Api,
    private readonly onEvent: StreamHandler,
    private readonly onState: (live: boolean) => void,
  ) {}

  start(): void {
    void this.open();
  }

  private async open(): Promise<void> {
    if (this.closed) return;
    let token: string;
    try {
      token = await this.api.token(this.retryMs > 2000);
    } catch {
      return this.again();
    }
    if (this.closed) return;
    const q = `access_token=${encodeURIComponent(token)}${this.lastId ? `&lastEventId=${encodeURIComponent(this.lastId)}` : ''}`;
    const es = new EventSource(`${this.api.base}/api/v1/stream?${q}`);
    this.es = es;
    for (const name of EVENTS) {
      es.addEventListener(name, (ev) => {
        const e = ev as MessageEvent<string>;
        if (e.lastEventId) this.lastId = e.lastEventId;
        let data: unknown = null;
        try {
          data = e.data ? JSON.parse(e.data) : null;
        } catch {
          return;
        }
        if (name === 'hello') {
          this.retryMs = 500;
          this.onState(true);
          // A different boot id: the server restarted and its replay buffer is gone.
          const boot = (data as { boot?: string } | null)?.boot ?? '';
          if (this.boot && boot !== this.boot) this.onEvent('resync', {});
          this.boot = boot;
          return;
        }
        this.onEvent(name, data);
      });
    }
    es.onerror = () => {
      if (this.es !== es) return;
      es.close();
      this.es = null;
      this.onState(false);
      this.again();
    };
  }

  private again(): void {
    if (this.closed) return;
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 15_000);
    this.timer = setTimeout(() => void this.open(), wait);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.es?.close();
    this.es = null;
  }
}
