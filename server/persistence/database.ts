import type { Knex } from 'knex';
import type { Database, Repositories } from '../domain/ports';
import { openKnex, type Dialect, type KnexHandle } from './knex';
import { auditRepo } from './repositories/audit';
import { contactRepo } from './repositories/contacts';
import { conversationRepo } from './repositories/conversations';
import { jobRepo } from './repositories/jobs';
import { licenceRepo } from './repositories/licences';
import { mediaRepo } from './repositories/media';
import { messageRepo } from './repositories/messages';
import { numberRepo } from './repositories/numbers';
import { portalRepo } from './repositories/portals';

function reposOf(db: Knex | Knex.Transaction, dialect: Dialect): Repositories {
  return {
    portals: portalRepo(db),
    numbers: numberRepo(db),
    contacts: contactRepo(db),
    conversations: conversationRepo(db),
    messages: messageRepo(db),
    media: mediaRepo(db),
    jobs: jobRepo(db, dialect),
    audit: auditRepo(db),
    licences: licenceRepo(db),
  };
}

export interface KnexDatabase extends Database {
  knex: Knex;
  dialect: Dialect;
}

export function databaseOf(handle: KnexHandle): KnexDatabase {
  const { knex, dialect, close } = handle;
  return {
    knex,
    dialect,
    repos: reposOf(knex, dialect),
    transaction: (fn) => knex.transaction((trx) => fn(reposOf(trx, dialect))),
    ping: async () => {
      await knex.raw('select 1');
    },
    close,
  };
}

export async function openDatabase(opts: { databaseUrl?: string | null; dataDir: string; sqliteFile?: string }): Promise<KnexDatabase> {
  return databaseOf(await openKnex(opts));
}
