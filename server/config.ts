import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

// Every setting comes from the environment and is checked here, once, at start. A bad value
// stops the server with a message that names the variable.
const optionalUrl = z.string().url().optional();

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  PUBLIC_URL: optionalUrl,
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  WA_ENGINE: z.enum(['wwebjs', 'simulator']).default('wwebjs'),
  WA_MAX_SESSIONS: z.coerce.number().int().min(1).max(1000).default(10),
  CHROMIUM_PATH: z.string().min(1).optional(),
  SECRET_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  KOMMO_CLIENT_ID: z.string().min(1).optional(),
  KOMMO_CLIENT_SECRET: z.string().min(1).optional(),
  KOMMO_REDIRECT_URI: optionalUrl,
  // Tests and the demo point every Kommo account host at one loopback fake (https://127.0.0.1:PORT);
  // KOMMO_CA_FILE trusts that fake's test certificate authority for Kommo calls only.
  KOMMO_API_BASE: z.string().regex(/^https:\/\/[^/]+$/, 'must be https://host[:port] without a path').optional(),
  KOMMO_CA_FILE: z.string().min(1).optional(),
  /** Requests per second per Kommo account (Kommo's limit is 7). */
  KOMMO_MAX_RPS: z.coerce.number().int().min(1).max(1000).default(7),
  BITRIX24_CLIENT_ID: z.string().min(1).optional(),
  BITRIX24_CLIENT_SECRET: z.string().min(1).optional(),
  // The OAuth server (refresh, install proof). Default: the one Bitrix24 names in SERVER_ENDPOINT when it
  // is a Bitrix24 OAuth host (https://oauth.bitrix.info, https://oauth.bitrix24.tech). Set: that host only.
  BITRIX24_OAUTH_URL: z.string().regex(/^https?:\/\/[^/]+$/, 'must be http(s)://host[:port] without a path').optional(),
  // Every portal's REST endpoint (default: the client_endpoint Bitrix24 reports, https://<portal>/rest/).
  // Tests and the demo point it at a loopback fake.
  BITRIX24_REST_URL: z.string().regex(/^https?:\/\/.+\/rest\/$/, 'must be a URL ending in /rest/').optional(),
  /** Requests per second per portal (Bitrix24: 2, Enterprise 5) and the burst allowed above it (50, Enterprise 250). */
  BITRIX24_RPS: z.coerce.number().min(0.1).max(1000).default(2),
  BITRIX24_BURST: z.coerce.number().int().min(1).max(10000).default(50),
  /** First pause of a portal's queue after QUERY_LIMIT_EXCEEDED, OPERATION_TIME_LIMIT or a 5xx; doubles up to 60 s. */
  BITRIX24_BACKOFF_MS: z.coerce.number().int().min(1).max(600_000).default(2000),
  OPERATOR_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL')
    .optional(),
  /** Length of the free trial a portal gets at install. */
  LICENCE_TRIAL_DAYS: z.coerce.number().int().min(0).max(365).default(3),
  /** The tariffs file (default: manifest/plans.json of this checkout). */
  PLANS_FILE: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Env = z.infer<typeof schema>;

export interface Config extends Omit<Env, 'SECRET_KEY'> {
  SECRET_KEY: string;
  /** Largest file accepted from a widget or downloaded from WhatsApp. */
  mediaMaxBytes: number;
}

export class ConfigError extends Error {}

/** Reads and validates the environment; empty strings count as unset. */
export function parseEnv(env: NodeJS.ProcessEnv): Env {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const res = schema.safeParse(cleaned);
  if (!res.success) {
    const lines = res.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return res.data;
}

/** SECRET_KEY unset: one is generated into DATA_DIR/secret.key (mode 0600) and reused after. */
export function resolveSecret(env: Env): string {
  if (env.SECRET_KEY) return env.SECRET_KEY;
  fs.mkdirSync(env.DATA_DIR, { recursive: true });
  const file = path.join(env.DATA_DIR, 'secret.key');
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  const key = crypto.randomBytes(32).toString('hex');
  fs.writeFileSync(file, key + '\n', { mode: 0o600, flag: 'wx' });
  return key;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = parseEnv(env);
  return { ...parsed, SECRET_KEY: resolveSecret(parsed), mediaMaxBytes: 64 * 1024 * 1024 };
}
