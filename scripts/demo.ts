// `npm run demo`: the real server with the simulator engine, for trying InCRM in a browser
// without a phone or a CRM. Data lives in DATA_DIR (default ./data/demo) and survives restarts.
import { ConfigError, loadConfig } from '../server/config';
import { createLogger } from '../server/logger';
import { startServer } from '../server/main';

async function run(): Promise<void> {
  // Demo portals get a long trial: the demo data survives restarts and should not expire under a tester.
  const env = { ...process.env, WA_ENGINE: 'simulator', DATA_DIR: process.env.DATA_DIR || './data/demo', LOG_LEVEL: process.env.LOG_LEVEL || 'warn', LICENCE_TRIAL_DAYS: process.env.LICENCE_TRIAL_DAYS || '365' };
  const config = loadConfig(env);
  const server = await startServer(config, { log: createLogger(config.LOG_LEVEL) });
  const base = config.PUBLIC_URL ?? `http://localhost:${server.port}`;
  process.stdout.write(
    [
      '',
      'InCRM demo (simulated WhatsApp)',
      `  demo page:   ${base}/demo      connect a number by QR, chat as the manager and as the client`,
      `  API docs:    ${base}/api/v1/openapi.json`,
      `  health:      ${base}/healthz`,
      '',
      'Ctrl+C stops it.',
      '',
    ].join('\n'),
  );
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

run().catch((err) => {
  process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `${(err as Error).stack}\n`);
  process.exit(1);
});
