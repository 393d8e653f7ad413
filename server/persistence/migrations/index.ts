import type { Knex } from 'knex';
import * as m001 from './001_core';
import * as m002 from './002_job_priority';
import * as m003 from './003_kommo';
import * as m004 from './004_bitrix24';
import * as m005 from './005_licence';
import * as m006 from './006_plan_schedule';
import * as m007 from './007_licence_suspensions';

// Migrations are listed in code (not read from a folder) so the bundled server carries them.
const migrations: Record<string, { up(k: Knex): Promise<void>; down(k: Knex): Promise<void> }> = {
  '001_core': m001,
  '002_job_priority': m002,
  '003_kommo': m003,
  '004_bitrix24': m004,
  '005_licence': m005,
  '006_plan_schedule': m006,
  '007_licence_suspensions': m007,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name]!,
};
