import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { payloadTooLarge } from '../domain/errors';
import type { MediaRepo, MediaStore } from '../domain/ports';
import type { MediaRef } from '../domain/types';

/** Signed links are valid this long: long enough to open a CRM note the same day, short enough to leak little. */
export const MEDIA_URL_TTL_MS = 7 * 24 * 3600_000;

export function mediaSignature(secret: string, sha256: string, expires: number): string {
  return crypto.createHmac('sha256', secret).update(`media:${sha256}:${expires}`).digest('base64url');
}

export function verifyMediaSignature(secret: string, sha256: string, expires: number, sig: string, now = Date.now()): boolean {
  if (!Number.isFinite(expires) || expires < now) return false;
  const want = Buffer.from(mediaSignature(secret, sha256, expires));
  const got = Buffer.from(sig);
  return want.length === got.length && crypto.timingSafeEqual(want, got);
}

/**
 * Files stored once by content hash under DATA_DIR/media/ab/abcdef…; the database row keeps
 * the type and size. Written to a temp name and renamed, so a crash never leaves half a file
 * under a hash.
 */
export class FileMediaStore implements MediaStore {
  constructor(
    private readonly dir: string,
    private readonly repo: MediaRepo,
    private readonly secret: string,
    private readonly maxBytes: number,
    private readonly publicUrl: string | null,
  ) {
    fs.mkdirSync(dir, { recursive: true });
  }

  private pathOf(sha256: string): string {
    return path.join(this.dir, sha256.slice(0, 2), sha256);
  }

  async put(data: Buffer, mimetype: string): Promise<MediaRef> {
    if (data.length > this.maxBytes) throw payloadTooLarge(`file: larger than ${Math.round(this.maxBytes / 1048576)} MB`);
    const sha256 = crypto.createHash('sha256').update(data).digest('hex');
    const file = this.pathOf(sha256);
    if (!fs.existsSync(file)) {
      await fs.promises.mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
      await fs.promises.writeFile(tmp, data);
      await fs.promises.rename(tmp, file);
    }
    return this.repo.upsert({ sha256, mimetype: mimetype.slice(0, 120), size: data.length });
  }

  read(sha256: string): Promise<Buffer> {
    if (!/^[a-f0-9]{64}$/.test(sha256)) throw new Error('bad media hash');
    return fs.promises.readFile(this.pathOf(sha256));
  }

  filePath(sha256: string): string {
    return this.pathOf(sha256);
  }

  url(media: MediaRef, filename?: string | null): string {
    const expires = Date.now() + MEDIA_URL_TTL_MS;
    const sig = mediaSignature(this.secret, media.sha256, expires);
    const name = filename ?? media.filename;
    const q = `exp=${expires}&sig=${sig}${name ? `&name=${encodeURIComponent(name)}` : ''}`;
    return `${this.publicUrl ?? ''}/media/${media.sha256}?${q}`;
  }
}
