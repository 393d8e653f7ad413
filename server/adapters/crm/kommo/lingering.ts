/**
 * Requests to Kommo that outlived our timeout, per account. amocrm-js cannot abort a request, and
 * Kommo may still act on one we gave up on (store a note, rotate a token pair). Until it settles,
 * or `lingerMs` has passed, work that would repeat it waits for it (`settled`), or the work may be
 * done twice.
 */
export class Lingering {
  private readonly byAccount = new Map<number, Set<Promise<void>>>();

  constructor(private readonly lingerMs: number) {}

  /** Tracks `request` (already timed out) until it settles or `lingerMs` passes; the returned promise marks that moment. */
  add(portalId: number, request: Promise<unknown>): Promise<void> {
    let set = this.byAccount.get(portalId);
    if (!set) this.byAccount.set(portalId, (set = new Set()));
    let timer: NodeJS.Timeout | undefined;
    const cap = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.lingerMs);
      timer.unref();
    });
    const done: Promise<void> = Promise.race([request.then(noop, noop), cap]).then(() => {
      clearTimeout(timer);
      set.delete(done);
      if (set.size === 0 && this.byAccount.get(portalId) === set) this.byAccount.delete(portalId);
    });
    set.add(done);
    return done;
  }

  /** Resolves once every request of this account that timed out so far has settled (or aged out). */
  async settled(portalId: number): Promise<void> {
    const set = this.byAccount.get(portalId);
    if (set) await Promise.all([...set]);
  }

  count(portalId: number): number {
    return this.byAccount.get(portalId)?.size ?? 0;
  }
}

function noop(): void {}
