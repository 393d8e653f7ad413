// `npm run operator -- <command>`: the operator's tools from a shell, over the same code as
// /api/v1/operator/* (OperatorCommands), on the database the configuration names
// (DATABASE_URL, or SQLite in DATA_DIR). A running server picks the changes up within seconds
// (sending) or at its next licence rule run (reopening sessions, at most a minute).
import { ConfigError, loadConfig } from '../server/config';
import type { DomainContext } from '../server/domain/context';
import { AppError } from '../server/domain/errors';
import { OperatorCommands } from '../server/domain/licenceOperator';
import { LicenceService } from '../server/domain/licenceService';
import { systemClock, type MediaStore } from '../server/domain/ports';
import { loadPlans } from '../server/licence/plansFile';
import { createLogger } from '../server/logger';
import { openDatabase } from '../server/persistence/database';

const USAGE = `InCRM operator CLI

usage: npm run operator -- <command> [arguments]

  portals                                   list portals with their licence
  show <portalId>                           one portal: licence, numbers, payments
  pay <portalId> [--plan CODE] [--amount EUR] [--ref TEXT]
                                            record a payment (access at once; the plan's period
                                            is added from the later of now and paidUntil)
  plan <portalId> <CODE>                    change the plan (takes effect when the paid period ends)
  suspend <portalId> <reason…>              suspend (admins see the reason)
  unsuspend <portalId>                      lift a suspension
  maintenance <start> <end> <reason…>       declare a window (ISO 8601 times); portals with access
                                            during it get its length in whole days, once
  windows                                   list maintenance windows
  expiring [--days N]                       licences ending within N days (default 7)
  audit [--after ID] [--portal ID]          export the audit log as JSON lines
  tick                                      run the time-driven licence rules once (plan
                                            changes, credits, alerts; closing and reopening
                                            sessions is left to the running server)
  plans                                     list the plans
`;

function flags(args: string[]): { rest: string[]; opts: Record<string, string> } {
  const rest: string[] = [];
  const opts: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const k = eq < 0 ? a.slice(2) : a.slice(2, eq);
      // `--amount` with nothing after it (or before another flag) is an empty value, which the
      // command refuses, rather than swallowing the next flag as its value.
      opts[k] = eq >= 0 ? a.slice(eq + 1) : args[i + 1] !== undefined && !args[i + 1]!.startsWith('--') ? args[++i]! : '';
    } else rest.push(a);
  }
  return { rest, opts };
}

function portalId(v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new AppError(400, 'bad_request', `portal id: "${v ?? ''}" is not a portal id`);
  return n;
}

export async function runOperator(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<void> {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help') {
    out(USAGE);
    return;
  }
  const config = loadConfig();
  const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const db = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR });
  try {
    const noMedia = new Proxy({} as MediaStore, { get: () => () => Promise.reject(new Error('no media in the CLI')) });
    const ctx: DomainContext = {
      db,
      live: { publish: () => {} },
      media: noMedia,
      clock: systemClock,
      metrics: { message: () => {}, sessionEvent: () => {} },
      log,
      wakeJobs: () => {},
    };
    const licences = new LicenceService(ctx, loadPlans(config.PLANS_FILE), { trialDays: config.LICENCE_TRIAL_DAYS });
    // Postponed CRM jobs are released in the database (the server's runner sees them at once);
    // sessions are the server's: it closes and reopens them at its next rule run (the CLI's
    // `tick` records neither, so the server still does both).
    licences.attach({
      closeSessions: async () => false,
      reopenSessions: async () => false,
      releaseDeferred: async (id) => void (await db.repos.jobs.release(id, ['crm.mirror'], Date.now())),
    });
    const ops = new OperatorCommands(licences, db);
    const actor = `operator:cli:${process.env.USER ?? 'unknown'}`;
    const json = (v: unknown) => out(JSON.stringify(v, null, 2) + '\n');
    const { rest, opts } = flags(args);
    switch (command) {
      case 'portals':
        return json(await ops.listPortals());
      case 'show':
        return json(await ops.showPortal(portalId(rest[0])));
      case 'pay':
        return json(await ops.recordPayment(portalId(rest[0]), { plan: opts.plan, amountEur: opts.amount, reference: opts.ref }, actor));
      case 'plan':
        return json(await ops.changePlan(portalId(rest[0]), { plan: rest[1] }, actor));
      case 'suspend':
        return json(await ops.suspend(portalId(rest[0]), { reason: rest.slice(1).join(' ') }, actor));
      case 'unsuspend':
        return json(await ops.unsuspend(portalId(rest[0]), actor));
      case 'maintenance':
        return json(await ops.declareMaintenance({ startAt: rest[0], endAt: rest[1], reason: rest.slice(2).join(' ') }, actor));
      case 'windows':
        return json(await ops.listMaintenance());
      case 'expiring':
        return json(await ops.expiring({ days: opts.days }));
      case 'audit':
        return out(await ops.exportAudit({ afterId: opts.after ? Number(opts.after) : undefined, portalId: opts.portal ? portalId(opts.portal) : undefined }));
      case 'tick':
        await licences.tick();
        return json({ ok: true });
      case 'plans':
        return json(licences.catalog.plans);
      default:
        throw new AppError(400, 'bad_request', `unknown command "${command}" (npm run operator -- help)`);
    }
  } finally {
    await db.close();
  }
}

if (require.main === module) {
  runOperator(process.argv.slice(2)).catch((err) => {
    process.stderr.write(err instanceof AppError || err instanceof ConfigError ? `error: ${err.message}\n` : `${(err as Error).stack}\n`);
    process.exit(1);
  });
}
