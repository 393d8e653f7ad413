// `npm run demo`: the real server with the simulator engine, for trying InCRM in a browser
// without a phone or a CRM. A demo Kommo account (the loopback fake the tests use) is started
// too, InCRM is installed in it, and /demo/kommo shows its lead card with the real widget archive
// inside. Data lives in DATA_DIR (default ./data/demo) and survives restarts.
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../server/config';
import { createLogger } from '../server/logger';
import { startServer } from '../server/main';
import { startDemoKommo } from '../test/fakes/kommoDemo';

async function run(): Promise<void> {
  const base0: NodeJS.ProcessEnv = { ...process.env, WA_ENGINE: 'simulator', DATA_DIR: process.env.DATA_DIR || './data/demo', LOG_LEVEL: process.env.LOG_LEVEL || 'warn' };
  const port = Number(base0.PORT || 3000);
  const publicUrl = (base0.PUBLIC_URL || `http://localhost:${port}`).replace(/\/+$/, '');
  const kommo = await startDemoKommo({ redirectUri: `${publicUrl}/kommo/oauth` });
  const config = loadConfig({ ...base0, ...kommo.env });

  // The archive Kommo would load: the built one, packed now if the build has not made it yet.
  const archive = path.resolve('dist', 'kommo-widget.zip');
  if (!fs.existsSync(archive)) {
    const { packKommoWidget } = await import('./kommo-widget.mjs');
    await packKommoWidget({ out: archive });
  }
  const server = await startServer(config, { log: createLogger(config.LOG_LEVEL), kommoDemo: kommo.provider(archive) });
  const base = config.PUBLIC_URL ?? `http://localhost:${server.port}`;
  const installed = await kommo.install(server.url);
  process.stdout.write(
    [
      '',
      'InCRM demo (simulated WhatsApp, emulated Kommo)',
      `  Kommo card:  ${base}/demo/kommo      lead "${kommo.lead.name}" with the WhatsApp panel and the notes feed`,
      `  settings:    ${base}/demo/kommo?view=settings   connect a number by QR (the page's phone simulator scans it)`,
      `  core demo:   ${base}/demo      connect a number by QR, chat as the manager and as the client`,
      `  API docs:    ${base}/api/v1/openapi.json`,
      `  health:      ${base}/healthz`,
      installed >= 400 ? `  (installing the demo Kommo account answered ${installed})` : '',
      '',
      'Ctrl+C stops it.',
      '',
    ].join('\n'),
  );
  const stop = () => void server.close().then(() => kommo.close()).then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

run().catch((err) => {
  process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `${(err as Error).stack}\n`);
  process.exit(1);
});
