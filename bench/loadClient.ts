// The bench's HTTP client, in a process of its own: a server's clients are elsewhere, and an
// in-process client spends the server's event loop on its own requests, which would be counted as
// server latency. Timestamps are process.hrtime, CLOCK_MONOTONIC: the same clock in the bench
// process, so "request started here" and "engine send there" compare directly.
//
// Requests go through node:http with a keep-alive agent, like a browser's reused connection. Not
// fetch: measured on 2026-12-04 (2 cores), fetch alone added ~1.5 ms to the p99 of a GET of a
// fixed body from a bare express route (p99 3.4-4.1 ms with fetch, 2.1-2.4 ms with node:http),
// client cost that would be counted against a server target of a few milliseconds.
//
// Usage: tsx bench/loadClient.ts '<json job>'; prints one JSON object on stdout.
//   { "mode": "post", "url", "headers", "n", "rate", "text": "prefix" }   POSTs { text: `${text} ${i}` }
//       with Idempotency-Key `${text}-${i}`, paced at `rate`/s; → { starts: [ns], ends: [ns] }
//   { "mode": "get", "urls": [...], "headers" }                            one after another;
//       → { latenciesMs: [...] }
import http from 'node:http';

interface PostJob {
  mode: 'post';
  url: string;
  headers: Record<string, string>;
  n: number;
  rate: number;
  text: string;
}
interface GetJob {
  mode: 'get';
  urls: string[];
  headers: Record<string, string>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => process.hrtime.bigint();
const agent = new http.Agent({ keepAlive: true });

/** One request, body read to the end; resolves with the status code. */
function request(url: string, method: 'GET' | 'POST', headers: Record<string, string>, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body === undefined ? headers : { ...headers, 'Content-Length': String(Buffer.byteLength(body)) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function post(job: PostJob): Promise<{ starts: string[]; ends: string[]; failures: number }> {
  const starts: string[] = [];
  const ends: string[] = new Array(job.n).fill('');
  let failures = 0;
  const inflight: Promise<void>[] = [];
  await warmUp(job.url);
  const t0 = Date.now();
  for (let i = 0; i < job.n; i++) {
    const due = t0 + (i * 1000) / job.rate;
    if (due - Date.now() >= 2) await sleep(due - Date.now());
    starts.push(String(now()));
    inflight.push(
      request(job.url, 'POST', { 'Content-Type': 'application/json', 'Idempotency-Key': `${job.text}-${i}`, ...job.headers }, JSON.stringify({ text: `${job.text} ${i}` }))
        .then((status) => {
          if (status >= 300) failures++;
          ends[i] = String(now());
        })
        .catch(() => {
          failures++;
        }),
    );
  }
  await Promise.all(inflight);
  return { starts, ends, failures };
}

/** The first requests of a process load code and open a connection: not part of any figure. */
async function warmUp(url: string): Promise<void> {
  for (let i = 0; i < 3; i++) await request(new URL('/healthz', url).href, 'GET', {}).catch(() => undefined);
}

async function get(job: GetJob): Promise<{ latenciesMs: number[] }> {
  const latenciesMs: number[] = [];
  if (job.urls[0]) await warmUp(job.urls[0]);
  for (const url of job.urls) {
    const t = now();
    const status = await request(url, 'GET', job.headers);
    if (status !== 200) throw new Error(`GET ${url}: ${status}`);
    latenciesMs.push(Number(now() - t) / 1e6);
  }
  return { latenciesMs };
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as PostJob | GetJob;
  const out = job.mode === 'post' ? await post(job) : await get(job);
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
