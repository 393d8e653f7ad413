import express from 'express';
import type { Database, WhatsAppEngine } from '../../domain/ports';
import type { FileMediaStore } from '../../media/store';
import { verifyMediaSignature } from '../../media/store';
import type { Metrics } from '../../metrics';

/** /healthz, /metrics and the signed media links. */
export function systemRouter(deps: { db: Database; dialect: string; engine: WhatsAppEngine; metrics: Metrics; media: FileMediaStore; secret: string; version: string }): express.Router {
  const r = express.Router();
  r.get('/healthz', async (_req, res) => {
    const engineProblem = deps.engine.problem?.() ?? null;
    try {
      await deps.db.ping();
      res.json({ status: 'ok', version: deps.version, database: deps.dialect, engine: deps.engine.name, ...(engineProblem ? { engineProblem } : {}) });
    } catch (err) {
      res.status(503).json({ status: 'error', database: deps.dialect, error: `database: ${(err as Error).message}` });
    }
  });
  r.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });
  r.get('/media/:sha', async (req, res) => {
    // The signature is the permission, not the origin: the widget inside a CRM page (another
    // origin) may read the file, and learn that it is gone (404), without credentials.
    res.setHeader('Access-Control-Allow-Origin', '*');
    const sha = String(req.params.sha);
    const exp = Number(req.query.exp);
    const sig = typeof req.query.sig === 'string' ? req.query.sig : '';
    if (!/^[a-f0-9]{64}$/.test(sha) || !verifyMediaSignature(deps.secret, sha, exp, sig)) {
      res.status(403).json({ error: { code: 'forbidden', message: 'media link is invalid or expired' } });
      return;
    }
    const media = await deps.db.repos.media.getBySha(sha);
    if (!media) {
      res.status(404).json({ error: { code: 'not_found', message: 'media not found' } });
      return;
    }
    const name = typeof req.query.name === 'string' ? req.query.name : null;
    res.setHeader('Content-Type', media.mimetype);
    res.setHeader('Cache-Control', 'private, max-age=3600');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (name) res.setHeader('Content-Disposition', `inline; filename*=UTF-8''${encodeURIComponent(name)}`);
    res.sendFile(deps.media.filePath(sha));
  });
  return r;
}
