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
      // A text field holds up to 65,536 characters, which UTF-8 may spell in 4 bytes each.
      bb = busboy({ headers: req.headers, limits: { files: 1, fileSize: maxBytes, fields: 20, fieldSize: 4 * 65_536 + 1024 } });
    } catch (err) {
      reject(badRequest(`body: ${(err as Error).message}`));
      return;
    }
    const fields: Record<string, string> = {};
    let file: Multipart['file'] = null;
    let failure: Error | null = null;
    bb.on('field', (name, value, info) => {
      // busboy cuts a field at the limit and says so; storing the stump would lose text silently.
      if (info.valueTruncated || info.nameTruncated) failure ??= badRequest(`${name}: too long`, { field: name });
      else fields[name] = value;
    });
    bb.on('fieldsLimit', () => (failure ??= badRequest('body: too many fields (at most 20)')));
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
        if (chunks.length === 0) {
          failure ??= badRequest('file: the file is empty', { field: 'file' });
          return;
        }
        file = { data: Buffer.concat(chunks), mimetype: info.mimeType || 'application/octet-stream', filename: info.filename || null };
      });
    });
    bb.on('filesLimit', () => (failure ??= badRequest('file: only one file per message', { field: 'file' })));
    bb.on('error', (err) => reject(badRequest(`body: ${(err as Error).message}`)));
    bb.on('close', () => (failure ? reject(failure) : resolve({ fields, file })));
    req.pipe(bb);
  });
}
