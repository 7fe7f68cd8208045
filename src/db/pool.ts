// Connection pool and transactions. Every connection runs in UTC so that timestamps are read
// and written the same way everywhere.
import pg from 'pg';
import { isConnectionError } from '../errors/index.ts';

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

export interface PoolOptions {
  /** Connections at most. */
  max?: number;
  /** application_name, so that pg_stat_activity tells the pools apart. */
  name?: string;
  /** Told of every connection that breaks (PostgreSQL restarted, session terminated, network lost). */
  onConnectionLost?: (err: Error) => void;
}

/** How long a request waits for a pooled connection (or for PostgreSQL to accept one) before it is a 503. */
const CONNECT_TIMEOUT_MS = 30_000;

export function createDb(url: string, maxOrOptions: number | PoolOptions = 10): Db {
  const opts = typeof maxOrOptions === 'number' ? { max: maxOrOptions } : maxOrOptions;
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    options: '-c TimeZone=UTC',
    application_name: opts.name ?? 'strata',
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // A database host that vanishes without closing its sockets is noticed within minutes, not hours.
    keepAlive: true,
  });
  // A client whose connection breaks emits 'error'; pg-pool listens only while the client is idle
  // in the pool. This listener stays for the client's whole life, checkouts included, so that a
  // PostgreSQL restart or a terminated backend under a running upload, query or job is an error
  // for that work (its query or COPY fails, and the pool discards the client on release) and
  // never an unhandled 'error' event that ends the process.
  pool.on('connect', (client) => {
    client.on('error', (err: Error) => opts.onConnectionLost?.(err));
  });
  // An idle client that loses its connection is dropped by the pool.
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
    client.release();
    return result;
  } catch (err) {
    let broken = isConnectionError(err) ? err as Error : undefined;
    await client.query('ROLLBACK').catch((e: Error) => { broken ??= e; });
    client.release(broken);
    throw err;
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
