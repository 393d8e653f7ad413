import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import express from 'express';
import { z } from 'zod';
import { badRequest, notFound } from '../../domain/errors';
import { KOMMO_DEMO_PAGE } from './kommoDemoPage';

// `/demo/kommo`: a page that behaves like a Kommo account page closely enough to run the real
// widget archive (dist/kommo-widget.zip) the way Kommo runs it — RequireJS, jQuery, the global
// APP object, the widget object with render_template, $authorizedAjax and friends, and the
// callbacks called in Kommo's order. Mounted only with the simulator engine; the Kommo account
// behind it (a fake on loopback, started by `npm run demo` or a test) is handed in by the caller.

export type DemoCardType = 'lead' | 'contact' | 'company';

export interface KommoDemoProvider {
  /** The widget archive as uploaded to Kommo. */
  archivePath: string;
  account: { id: number; name: string; subdomain: string; domain: string; users: Array<{ id: number; name: string; is_admin: boolean }> };
  /** The card shown when the page names none. */
  defaultCard: { type: DemoCardType; id: number };
  card(type: DemoCardType, id: number): { id: number; name: string; fields: Array<{ label: string; value: string }>; links: Array<{ type: DemoCardType; id: number; name: string }> } | null;
  /** The card's feed: notes newest last. */
  notes(type: DemoCardType, id: number): Array<{ id: number; noteType: string; text: string; createdAt: number }>;
  /** Phones of the demo's clients, offered by the page's phone simulator. */
  clientPhones: string[];
  /** What Kommo's backend signs for `$authorizedAjax` for this user. */
  jwt(userId: number): string;
}

interface ZipEntry {
  method: number;
  compressedSize: number;
  offset: number;
}

/** Reads a zip's central directory (enough for the archives yazl writes: stored or deflated). */
export function readZip(buf: Buffer): Map<string, Buffer> {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65_557); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip archive');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const entries = new Map<string, ZipEntry>();
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error('bad zip central directory');
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    entries.set(name, { method: buf.readUInt16LE(p + 10), compressedSize: buf.readUInt32LE(p + 20), offset: buf.readUInt32LE(p + 42) });
    p += 46 + nameLen + extraLen + commentLen;
  }
  const files = new Map<string, Buffer>();
  for (const [name, e] of entries) {
    if (name.endsWith('/')) continue;
    const local = e.offset;
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = buf.subarray(start, start + e.compressedSize);
    files.set(name, e.method === 0 ? Buffer.from(data) : zlib.inflateRawSync(data));
  }
  return files;
}

const TYPES: Record<string, string> = {
  '.js': 'application/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.twig': 'text/plain; charset=utf-8',
};

/** Kommo serves uploaded widget files under /upl/<widget code>/widget/. */
export const DEMO_WIDGET_CODE = 'incrm_whatsapp';
export const DEMO_WIDGET_PATH = `/demo/kommo/upl/${DEMO_WIDGET_CODE}/widget`;

const cardQuery = z.object({ type: z.enum(['lead', 'contact', 'company']), id: z.coerce.number().int().positive() });

export function kommoDemoRouter(provider: KommoDemoProvider | null): express.Router {
  const r = express.Router();
  let cache: { mtimeMs: number; size: number; files: Map<string, Buffer> } | null = null;
  const archive = () => {
    if (!provider) throw notFound('demo Kommo account');
    let st: fs.Stats;
    try {
      st = fs.statSync(provider.archivePath);
    } catch {
      throw notFound(`widget archive ${provider.archivePath} (run npm run build)`);
    }
    // Re-read when the archive is rebuilt, so a `npm run build` shows without a restart.
    if (!cache || cache.mtimeMs !== st.mtimeMs || cache.size !== st.size) {
      cache = { mtimeMs: st.mtimeMs, size: st.size, files: readZip(fs.readFileSync(provider.archivePath)) };
    }
    return cache.files;
  };
  // jQuery's package exports only its entry (dist/jquery.js under require): resolve the package name.
  const vendor: Record<string, string> = { 'require.js': 'requirejs/require.js', 'jquery.js': 'jquery' };

  r.get('/demo/kommo', (_req, res) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    if (!provider) {
      res
        .status(404)
        .send('<!doctype html><meta charset="utf-8"><title>InCRM</title><p>The emulated Kommo page needs a demo Kommo account: start it with <code>npm run demo</code>.</p>');
      return;
    }
    res.send(KOMMO_DEMO_PAGE);
  });
  r.get('/demo/kommo/vendor/:file', (req, res) => {
    const mod = vendor[String(req.params.file)];
    if (!mod) throw notFound('vendor file');
    let file: string;
    try {
      file = require.resolve(mod);
    } catch {
      throw notFound(`${mod} (a development dependency; run npm install)`);
    }
    res.setHeader('Content-Type', TYPES['.js']!);
    res.sendFile(file);
  });
  r.get(`${DEMO_WIDGET_PATH}/*file`, (req, res) => {
    const parts = (req.params as unknown as { file: string[] }).file;
    const name = parts.join('/');
    const data = archive().get(name);
    if (!data) throw notFound(`${name} in the widget archive`);
    res.setHeader('Content-Type', TYPES[path.extname(name)] ?? 'application/octet-stream');
    res.setHeader('Cache-Control', 'no-cache');
    res.send(data);
  });
  r.get('/demo/kommo/api/state', (_req, res) => {
    if (!provider) throw notFound('demo Kommo account');
    const manifest = JSON.parse(archive().get('manifest.json')?.toString('utf8') ?? '{}') as { widget?: { version?: string } };
    res.json({ account: provider.account, defaultCard: provider.defaultCard, clientPhones: provider.clientPhones, widget: { code: DEMO_WIDGET_CODE, path: DEMO_WIDGET_PATH, version: manifest.widget?.version ?? '1.0.0' } });
  });
  r.get('/demo/kommo/api/card', (req, res) => {
    if (!provider) throw notFound('demo Kommo account');
    const q = cardQuery.safeParse(req.query);
    if (!q.success) throw badRequest('type and id: a card type (lead, contact, company) and id');
    const card = provider.card(q.data.type, q.data.id);
    if (!card) throw notFound('card');
    res.setHeader('Cache-Control', 'no-store');
    res.json({ card, notes: provider.notes(q.data.type, q.data.id) });
  });
  // Kommo's backend mints the X-Auth-Token that $authorizedAjax adds; here the fake account does.
  r.post('/demo/kommo/api/jwt', (req, res) => {
    if (!provider) throw notFound('demo Kommo account');
    const user = z.coerce.number().int().positive().safeParse(req.query.user ?? req.body?.user);
    if (!user.success || !provider.account.users.some((u) => u.id === user.data)) throw badRequest('user: not a user of the demo account');
    res.setHeader('Cache-Control', 'no-store');
    res.json({ jwt: provider.jwt(user.data) });
  });
  return r;
}
