import fs from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';

// Kommo accounts live on their own host: `<subdomain>.kommo.com`, `<subdomain>.amocrm.ru` or
// `<subdomain>.amocrm.com`. That host is the OAuth server, the REST API and the widget's origin.
const ACCOUNT_HOST = /^([a-z0-9][a-z0-9-]{0,62})\.(kommo\.com|amocrm\.ru|amocrm\.com)$/;

/** The account host from a `referer` (host, or URL) as Kommo sends it; null when it is not one. */
export function accountHost(raw: string): string | null {
  let host = raw.trim().toLowerCase();
  if (/^https?:\/\//.test(host)) {
    try {
      host = new URL(host).host;
    } catch {
      return null;
    }
  }
  return ACCOUNT_HOST.test(host) ? host : null;
}

export function subdomainOf(host: string): string {
  return host.split('.')[0]!;
}

/** An `Origin` header value that is exactly `https://<account host>`; the host, or null. */
export function originHost(origin: string | undefined): string | null {
  if (!origin) return null;
  const m = /^https:\/\/([^/:]+)$/.exec(origin.toLowerCase());
  return m ? accountHost(m[1]!) : null;
}

/**
 * amocrm-js calls `https.request({hostname: <account host>})` through the global agent, with no
 * port or agent of its own, so it can only reach port 443 of the real host. To drive the real
 * library against a loopback fake (tests, the demo), this agent sends connections for Kommo
 * account hosts to `KOMMO_API_BASE` instead, keeping the SNI and Host header of the account and
 * trusting the fake's test CA for those connections only. Every other host passes through
 * untouched. Installed only when KOMMO_API_BASE is set.
 */
class KommoRoutingAgent extends https.Agent {
  constructor(
    private readonly target: { host: string; port: number },
    private readonly ca: string | undefined,
  ) {
    // Node's own global agent settings.
    super({ keepAlive: true, scheduling: 'lifo', timeout: 5000 });
  }

  override createConnection(options: tls.ConnectionOptions & { host?: string }, cb?: (err: Error | null, s: net.Socket) => void): net.Socket {
    const host = options.host ?? '';
    if (!accountHost(host)) return super.createConnection(options as never, cb as never) as net.Socket;
    return tls.connect({
      ...options,
      host: this.target.host,
      port: this.target.port,
      servername: host,
      ...(this.ca ? { ca: [...tls.rootCertificates, this.ca] } : {}),
    });
  }
}

let installed: { base: string; previous: https.Agent } | null = null;

export function routeKommoHostsTo(base: string, caFile?: string): void {
  if (installed?.base === base) return;
  const url = new URL(base);
  let ca: string | undefined;
  try {
    ca = caFile ? fs.readFileSync(caFile, 'utf8') : undefined;
  } catch (err) {
    throw new Error(`KOMMO_CA_FILE: cannot read ${caFile} (${(err as Error).message})`);
  }
  const previous = installed?.previous ?? https.globalAgent;
  https.globalAgent = new KommoRoutingAgent({ host: url.hostname, port: Number(url.port || 443) }, ca);
  installed = { base, previous };
}
