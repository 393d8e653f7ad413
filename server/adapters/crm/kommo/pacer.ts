interface AccountSlots {
  inFlight: number;
  /** When each recently finished request was answered (ms). */
  finished: number[];
  waiters: Array<() => void>;
}

/**
 * Kommo's limit: `perSecond` REST requests per account in any second, counted where Kommo
 * receives them. We cannot see that moment, only that it lies between our send and the answer.
 * So a request holds its slot from send until one second after its answer (or after we gave up
 * on it): whatever the network delay, no request then lands as one too many in any second at
 * Kommo. Counting sends alone does not: a request delayed on its way (a TLS handshake, a busy
 * event loop) arrives inside the next second's budget.
 */
export class Pacer {
  private readonly accounts = new Map<number, AccountSlots>();

  constructor(private readonly perSecond: number) {}

  /** Waits for a slot; call the returned function (once is enough) when the request is over. */
  async acquire(portalId: number): Promise<() => void> {
    let a = this.accounts.get(portalId);
    if (!a) this.accounts.set(portalId, (a = { inFlight: 0, finished: [], waiters: [] }));
    for (;;) {
      const now = Date.now();
      a.finished = a.finished.filter((t) => now - t < 1000);
      if (a.inFlight + a.finished.length < this.perSecond) {
        a.inFlight++;
        return this.releaser(a);
      }
      // A slot frees when the oldest answer is a second old, or (all in flight) when one is answered.
      const until = a.finished.length ? 1000 - (now - a.finished[0]!) + 1 : null;
      await new Promise<void>((resolve) => {
        a.waiters.push(resolve);
        if (until !== null) setTimeout(resolve, until).unref();
      });
    }
  }

  private releaser(a: AccountSlots): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      a.inFlight--;
      a.finished.push(Date.now());
      // Waiters with nothing to time re-check; the freed slot itself counts for one more second.
      for (const w of a.waiters.splice(0)) w();
    };
  }
}
