// What a failed call into whatsapp-web.js means for the session, and the time limit every page
// call runs under (a page that stopped answering must not hang the caller).

/**
 * Errors that mean the page or browser under the Client is gone or no longer works: the session
 * must be recreated. Besides a closed page or browser: a page call that timed out (ours, or
 * puppeteer's protocolTimeout), and a page whose whatsapp-web.js injection is missing
 * (`window.WWebJS` undefined after a navigation whose re-injection failed).
 */
export function isPageGone(err: unknown): boolean {
  const m = err instanceof Error ? err.message : String(err);
  return (
    /Execution context was destroyed|Target closed|Session closed|Protocol error|detached Frame|Navigating frame was detached|browser has disconnected|Connection closed|page has been closed|timed out/i.test(
      m,
    ) || WWEBJS_MISSING.test(m)
  );
}

/** How page.evaluate fails when window.WWebJS is not there. */
const WWEBJS_MISSING =
  /WWebJS is (not defined|undefined)|Cannot read properties of undefined \(reading '(getChat|sendMessage|sendSeen|getMessageModel|getChatModel|getChats|getContactModel|enforceLidAndPnRetrieval|arrayBufferToBase64Async)'\)/;

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      t.unref();
    }),
  ]);
}

/** An inbound message whose media could not be downloaded (it was not stored: it comes back). */
export class MediaDownloadError extends Error {
  constructor(
    readonly original: unknown,
    readonly pageGone: boolean,
  ) {
    super(`media download failed: ${original instanceof Error ? original.message : String(original)}`);
    this.name = 'MediaDownloadError';
  }
}
