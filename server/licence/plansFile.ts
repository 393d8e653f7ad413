import fs from 'node:fs';
import path from 'node:path';
import { parsePlans, type PlanCatalog } from '../domain/licencePlans';

/** manifest/plans.json of this checkout, found from the source tree or from the bundle in dist/. */
export function defaultPlansFile(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'manifest', 'plans.json');
    if (fs.existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  return path.resolve('manifest/plans.json');
}

/** Reads and validates the tariffs; a bad file stops the server with a message naming it. */
export function loadPlans(file = defaultPlansFile()): PlanCatalog {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`plans file ${file}: ${(err as Error).message}`);
  }
  try {
    return parsePlans(json);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
}
