import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import express from 'express';

// `GET /widget/:file`: the widget bundles from dist/widget (built by `npm run build`). Each file
// is served with an ETag of its content hash; a URL carrying that hash (`?v=<hash>`, what
// `url()` gives the pages we render) is immutable for a year, any other URL revalidates. Bundles
// are gzipped once in memory. A rebuild is picked up (the file's mtime is checked).

const NAME = /^[a-z0-9][a-z0-9_-]*\.(js|js\.map|css)$/;

interface Entry {
  mtimeMs: number;
  size: number;
  hash: string;
  body: Buffer;
  gzip: Buffer;
}

/** dist/widget of the checkout: found from this file both under server/ (tsx) and dist/server/ (built). */
export function defaultWidgetDir(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'dist', 'widget');
    dir = path.dirname(dir);
  }
  return path.resolve('dist', 'widget');
}

export class WidgetAssets {
  private readonly cache = new Map<string, Entry>();

  constructor(readonly dir: string = defaultWidgetDir()) {}

  private load(file: string): Entry | null {
    if (!NAME.test(file)) return null;
    const full = path.join(this.dir, file);
    let st: fs.Stats;
    try {
      st = fs.statSync(full);
    } catch {
      return null;
    }
    if (!st.isFile()) return null;
    const hit = this.cache.get(file);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit;
    const body = fs.readFileSync(full);
    const entry = { mtimeMs: st.mtimeMs, size: st.size, hash: crypto.createHash('sha256').update(body).digest('hex').slice(0, 16), body, gzip: zlib.gzipSync(body, { level: 9 }) };
    this.cache.set(file, entry);
    return entry;
  }

  /** The URL path of a bundle with its content hash (immutable caching), or without when not built. */
  url(file: string): string {
    const e = this.load(file);
    return e ? `/widget/${file}?v=${e.hash}` : `/widget/${file}`;
  }

  router(): express.Router {
    const r = express.Router();
    r.get('/widget/:file', (req, res) => {
      const file = String(req.params.file);
      const e = this.load(file);
      if (!e) {
        res.status(404).json({ error: { code: 'not_found', message: `widget file ${file} not found (run npm run build)` } });
        return;
      }
      const etag = `"${e.hash}"`;
      res.setHeader('ETag', etag);
      res.setHeader('Vary', 'Accept-Encoding');
      res.setHeader('Content-Type', file.endsWith('.css') ? 'text/css; charset=utf-8' : file.endsWith('.map') ? 'application/json; charset=utf-8' : 'text/javascript; charset=utf-8');
      // Loaded as a script by CRM pages on other origins (Kommo, Bitrix24 frames, the console).
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Cache-Control', req.query.v === e.hash ? 'public, max-age=31536000, immutable' : 'no-cache');
      if (req.header('if-none-match') === etag) {
        res.status(304).end();
        return;
      }
      const gz = /\bgzip\b/.test(req.header('accept-encoding') ?? '');
      if (gz) res.setHeader('Content-Encoding', 'gzip');
      res.status(200).end(gz ? e.gzip : e.body);
    });
    return r;
  }
}
