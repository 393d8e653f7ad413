// `npm run demo`: the real server with the simulator engine, for trying InCRM in a browser
// without a phone or a CRM. Data lives in DATA_DIR (default ./data/demo) and survives restarts.
import { ConfigError, loadConfig } from '../server/config';
import { createLogger } from '../server/logger';
import { startServer } from '../server/main';
import { startDemoBitrix24 } from '../test/fakes/bitrix24Demo';

async function run(): Promise<void> {
  // An emulated Bitrix24 portal (fake OAuth + REST on loopback) with a deal and its contact.
  const bitrix24 = await startDemoBitrix24();
  const env = { ...process.env, ...bitrix24.env, WA_ENGINE: 'simulator', DATA_DIR: process.env.DATA_DIR || './data/demo', LOG_LEVEL: process.env.LOG_LEVEL || 'warn' };
  const config = loadConfig(env);
  const server = await startServer(config, { log: createLogger(config.LOG_LEVEL) });
  const base = config.PUBLIC_URL ?? `http://localhost:${server.port}`;
  const b24Status = await bitrix24.install(server.url);
  if (b24Status !== 200) process.stderr.write(`Bitrix24 demo install answered ${b24Status}\n`);
  process.stdout.write(
    [
      '',
      'InCRM demo (simulated WhatsApp)',
      `  demo page:   ${base}/demo      connect a number by QR, chat as the manager and as the client`,
      `  Bitrix24:    ${bitrix24.pageUrl(base)}   an emulated deal card with the WhatsApp tab and its timeline`,
      `  API docs:    ${base}/api/v1/openapi.json`,
      `  health:      ${base}/healthz`,
      '',
      'Ctrl+C stops it.',
      '',
    ].join('\n'),
  );
  const stop = () => void server.close().then(() => bitrix24.close()).then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

run().catch((err) => {
  process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `${(err as Error).stack}\n`);
  process.exit(1);
});
