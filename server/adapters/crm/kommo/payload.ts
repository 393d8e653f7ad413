import { z } from 'zod';
import { KommoRejected } from './client';

/** Kommo ids arrive as numbers (sometimes as digit strings); we keep them as strings. */
export const id = z.union([z.number(), z.string().regex(/^\d+$/)]).transform((v) => String(v));

/** Parses a Kommo REST v4 payload; an unexpected one is a 502 that names the first problem. */
export function parse<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const r = schema.safeParse(data);
  if (!r.success) throw new KommoRejected(`${what}: unexpected Kommo payload (${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message})`, 502, data);
  return r.data;
}
