// `npm run demo`: the real server with the simulator engine, for trying InCRM in a browser
// without a phone or a CRM. A demo Kommo account and a demo Bitrix24 portal (the loopback fakes
// the tests use) are started too, InCRM is installed in both, and /demo/kommo and /demo/bitrix24
// show their cards with the real widget inside. Data lives in DATA_DIR (default ./data/demo) and
// survives restarts.
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../server/config';
import { createLogger } from '../server/logger';
import { startServer } from '../server/main';
import { startDemoBitrix24 } from '../test/fakes/bitrix24Demo';
import { startDemoKommo } from '../test/fakes/kommoDemo';

async function run(): Promise<void> {
  const base0: NodeJS.ProcessEnv = { ...process.env, WA_ENGINE: 'simulator', DATA_DIR: process.env.DATA_DIR || './data/demo', LOG_LEVEL: process.env.LOG_LEVEL || 'warn',
    // Demo portals get a long trial: the demo data survives restarts and should not expire under a tester.
    LICENCE_TRIAL_DAYS: process.env.LICENCE_TRIAL_DAYS || '365' };
  const port = Number(base0.PORT || 3000);
  const publicUrl = (base0.PUBLIC_URL || `http://localhost:${port}`).replace(/\/+$/, '');
  const kommo = await startDemoKommo({ redirectUri: `${publicUrl}/kommo/oauth` });
  // An emulated Bitrix24 portal (fake OAuth + REST on loopback) with a deal and its contact.
  const bitrix24 = await startDemoBitrix24();
  const config = loadConfig({ ...base0, ...kommo.env, ...bitrix24.env });

  // The archive Kommo would load: the built one, packed now if the build has not made it yet.
  const archive = path.resolve('dist', 'kommo-widget.zip');
  if (!fs.existsSync(archive)) {
    const { packKommoWidget } = await import('./kommo-widget.mjs');
    await packKommoWidget({ out: archive });
  }
  const server = await startServer(config, { log: createLogger(config.LOG_LEVEL), kommoDemo: kommo.provider(archive), bitrix24Demo: bitrix24.card });
  const base = config.PUBLIC_URL ?? `http://localhost:${server.port}`;
  const installed = await kommo.install(server.url);
  const b24Status = await bitrix24.install(server.url);
  process.stdout.write(
    [
      '',
      'InCRM demo (simulated WhatsApp, emulated Kommo and Bitrix24)',
      `  Kommo card:  ${base}/demo/kommo      lead "${kommo.lead.name}" with the WhatsApp panel and the notes feed`,
      `  settings:    ${base}/demo/kommo?view=settings   connect a number by QR (the page's phone simulator scans it)`,
      `  Bitrix24:    ${base}/demo/bitrix24   an emulated deal card with the WhatsApp tab and its timeline`,
      `  core demo:   ${base}/demo      connect a number by QR, chat as the manager and as the client`,
      `  API docs:    ${base}/api/v1/openapi.json`,
      `  health:      ${base}/healthz`,
      installed >= 400 ? `  (installing the demo Kommo account answered ${installed})` : '',
      b24Status !== 200 ? `  (installing the demo Bitrix24 portal answered ${b24Status})` : '',
      '',
      'Ctrl+C stops it.',
      '',
    ].join('\n'),
  );
  const stop = () =>
    void server
      .close()
      .then(() => Promise.all([kommo.close(), bitrix24.close()]))
      .then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

run().catch((err) => {
  process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `${(err as Error).stack}\n`);
  process.exit(1);
});
