import busboy from 'busboy';
import type { Request } from 'express';
import { badRequest, payloadTooLarge } from '../domain/errors';

export interface Multipart {
  fields: Record<string, string>;
  file: { data: Buffer; mimetype: string; filename: string | null } | null;
}

/** Reads a multipart body with at most one file (field `file`), refusing it past `maxBytes`. */
export function readMultipart(req: Request, maxBytes: number): Promise<Multipart> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { files: 1, fileSize: maxBytes, fields: 20, fieldSize: 70_000 } });
    } catch (err) {
      reject(badRequest(`body: ${(err as Error).message}`));
      return;
    }
    const fields: Record<string, string> = {};
    let file: Multipart['file'] = null;
    let failure: Error | null = null;
    bb.on('field', (name, value) => (fields[name] = value));
    bb.on('file', (name, stream, info) => {
      if (name !== 'file') {
        failure ??= badRequest(`${name}: unexpected file field (use "file")`, { field: name });
        stream.resume();
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => (failure ??= payloadTooLarge(`file: larger than ${Math.round(maxBytes / 1048576)} MB`)));
      stream.on('end', () => {
        file = { data: Buffer.concat(chunks), mimetype: info.mimeType || 'application/octet-stream', filename: info.filename || null };
      });
    });
    bb.on('filesLimit', () => (failure ??= badRequest('file: only one file per message', { field: 'file' })));
    bb.on('error', (err) => reject(badRequest(`body: ${(err as Error).message}`)));
    bb.on('close', () => (failure ? reject(failure) : resolve({ fields, file })));
    req.pipe(bb);
  });
}
