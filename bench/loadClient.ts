// The bench's HTTP client, in a process of its own: a server's clients are elsewhere, and an
// in-process client spends the server's event loop on its own requests (fetch is not cheap), which
// would be counted as server latency. Timestamps are process.hrtime, CLOCK_MONOTONIC: the same
// clock in the bench process, so "request started here" and "engine send there" compare directly.
//
// Usage: tsx bench/loadClient.ts '<json job>'; prints one JSON object on stdout.
//   { "mode": "post", "url", "headers", "n", "rate", "text": "prefix" }   POSTs { text: `${text} ${i}` }
//       with Idempotency-Key `${text}-${i}`, paced at `rate`/s; → { starts: [ns], ends: [ns] }
//   { "mode": "get", "urls": [...], "headers" }                            one after another;
//       → { latenciesMs: [...] }

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
      fetch(job.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Idempotency-Key': `${job.text}-${i}`, ...job.headers },
        body: JSON.stringify({ text: `${job.text} ${i}` }),
      })
        .then(async (res) => {
          await res.arrayBuffer();
          if (res.status >= 300) failures++;
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

/** The first fetch of a process loads undici and opens a connection: not part of any figure. */
async function warmUp(url: string): Promise<void> {
  for (let i = 0; i < 3; i++) await fetch(new URL('/healthz', url)).then((r) => r.arrayBuffer(), () => undefined);
}

async function get(job: GetJob): Promise<{ latenciesMs: number[] }> {
  const latenciesMs: number[] = [];
  if (job.urls[0]) await warmUp(job.urls[0]);
  for (const url of job.urls) {
    const t = now();
    const res = await fetch(url, { headers: job.headers });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
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
