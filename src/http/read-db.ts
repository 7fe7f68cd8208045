// The database a read is served from: the standby (STRATA_READ_DATABASE_URL) when the server has
// one and it is up, the primary otherwise (db/read-route.ts). The answer says which in the
// Strata-Read-From header. ?after_ingest=ID makes the read wait until the standby has the ingest.
import type { Context } from 'hono';
import type { Db } from '../db/pool.ts';
import type { ReadRoute } from '../db/read-route.ts';
import { AppError } from '../errors/index.ts';
import type { AppDeps } from './deps.ts';

export async function readDb(deps: AppDeps, c: Context): Promise<Db> {
  const route = deps.services.reads as ReadRoute | undefined;
  const after = c.req.query('after_ingest');
  if (after !== undefined && !/^\d{1,18}$/.test(after)) {
    throw new AppError(400, 'invalid_request', `after_ingest must be an ingest id (digits), got ${JSON.stringify(after.slice(0, 40))}`);
  }
  if (!route) return deps.db;
  const choice = await route.choose(after);
  c.header('Strata-Read-From', choice.target);
  return choice.db;
}
