// Connection pool and transactions. Every connection runs in UTC so that timestamps are read
// and written the same way everywhere.
import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = pg.Pool | pg.PoolClient;

/** The database handle passed down from main.ts to every module that needs PostgreSQL. */
export interface Db {
  pool: pg.Pool;
  url: string;
}

// int8 values are read as strings by default; count(*) and ids fit comfortably in a JS number
// but values in stream tables may not, so we keep strings and convert where we know the range.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => v);

export function createDb(url: string, max = 10): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    options: '-c TimeZone=UTC',
    application_name: 'strata',
  });
  // An idle client that loses its connection must not crash the server.
  pool.on('error', () => undefined);
  return { pool, url };
}

export async function closeDb(db: Db): Promise<void> {
  await db.pool.end();
}

/** Runs fn in a transaction on one pooled connection; rolls back if it throws. */
export async function withTransaction<T>(db: Db, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Runs fn with one pooled connection, outside any transaction. */
export async function withClient<T>(db: Db, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.pool.connect();
  let broken: unknown;
  try {
    return await fn(client);
  } catch (err) {
    broken = err;
    throw err;
  } finally {
    // A connection that failed mid-protocol (e.g. an aborted COPY) is discarded, not reused.
    client.release(broken instanceof Error && isConnectionError(broken) ? broken : undefined);
  }
}

function isConnectionError(err: Error): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code.startsWith('08') || code === 'ECONNRESET' || code === 'EPIPE' || code === '57P01';
}
