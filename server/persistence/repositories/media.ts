import type { Knex } from 'knex';
import type { MediaRepo } from '../../domain/ports';
import { toMedia } from './rows';

export function mediaRepo(db: Knex | Knex.Transaction): MediaRepo {
  return {
    async upsert(m) {
      await db('media')
        .insert({ sha256: m.sha256, mimetype: m.mimetype, size: m.size, created_at: Date.now() })
        .onConflict('sha256')
        .ignore();
      return toMedia(await db('media').where({ sha256: m.sha256 }).first());
    },
    async getBySha(sha256) {
      const row = await db('media').where({ sha256 }).first();
      return row ? toMedia(row) : null;
    },
    async get(id) {
      const row = await db('media').where({ id }).first();
      return row ? toMedia(row) : null;
    },
  };
}
