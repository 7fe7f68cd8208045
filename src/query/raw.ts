// Raw read-back: the stored rows of a stream between two instants, oldest first, as
// ColumnBatches. The rows come from `COPY (SELECT …) TO STDOUT (FORMAT binary)` on a connection
// of their own, decoded into column buffers (copy-batches.ts); the output formats take the
// batches from there (batch-formats.ts). Other sources of the same rows yield the same batches.
import { to as copyTo } from 'pg-copy-streams';
import type { Db } from '../db/pool.ts';
import { ident, literal } from '../db/sql.ts';
import type { ColumnBatch, StreamColumn } from '../domain/types.ts';
import { pgTimestamp } from '../domain/time.ts';
import { type Stream, streamTable } from '../streams/catalog.ts';
import { mergeBatchesWithCompressed } from '../compression/merge-batches.ts';
import { decodeCopyStream } from './copy-batches.ts';
import type { ResultColumn } from './result-formats.ts';

export interface RawQuery {
  stream: Stream;
  from: bigint | null;
  to: bigint | null;
  columns: StreamColumn[];
  tags: Map<StreamColumn, string[]>;
  limit?: number | null;
}

/** Bytes of COPY data read ahead of the batch being formatted. */
const COPY_READ_AHEAD_BYTES = 4 << 20;

/** Rows per batch: one Arrow record batch, one Parquet row group at most. */
export const RAW_BATCH_ROWS = 65_536;

/**
 * The rows' SELECT, in time order. COPY takes no parameters, so values are quoted literals
 * (literal() in db/sql.ts) and every identifier comes from the catalog, quoted.
 */
export function rawRowsSql(q: RawQuery): string {
  const where: string[] = [];
  if (q.from !== null) where.push(`"time" >= ${literal(pgTimestamp(q.from))}::timestamptz`);
  if (q.to !== null) where.push(`"time" < ${literal(pgTimestamp(q.to))}::timestamptz`);
  for (const [col, values] of q.tags) {
    where.push(`${ident(col.columnName)} = ANY(ARRAY[${values.map(literal).join(', ')}]::text[])`);
  }
  let sql = `SELECT ${['"time"', ...q.columns.map((c) => ident(c.columnName))].join(', ')} FROM ${streamTable(q.stream)}`;
  if (where.length > 0) sql += ` WHERE ${where.join(' AND ')}`;
  sql += ' ORDER BY "time"';
  if (q.limit) sql += ` LIMIT ${Math.trunc(q.limit)}`;
  return sql;
}

/** The COPY statement of the rows in binary. */
export function rawCopySql(q: RawQuery): string {
  return `COPY (${rawRowsSql(q)}) TO STDOUT (FORMAT binary)`;
}

export function rawColumns(q: RawQuery): ResultColumn[] {
  return [{ name: 'time', type: 'time' }, ...q.columns.map((c) => ({ name: c.name, type: c.type }))];
}

/** The rows as batches, compressed chunks' rows merged in, in time order (compression/merge-batches.ts). */
export function rawBatches(db: Db, q: RawQuery, batchRows = RAW_BATCH_ROWS): AsyncGenerator<ColumnBatch> {
  return mergeBatchesWithCompressed(db.pool, q.stream, { from: q.from, to: q.to, tags: q.tags }, q.columns, plainBatches(db, q, batchRows), q.limit ?? null, batchRows);
}

/** The stream table's rows as batches; the connection goes back to the pool when the last is read or the reader stops. */
async function* plainBatches(db: Db, q: RawQuery, batchRows: number): AsyncGenerator<ColumnBatch> {
  const client = await db.pool.connect();
  let finished = false;
  let broken: Error | undefined;
  // A few MB of read-ahead: PostgreSQL goes on producing rows while a batch is formatted and sent.
  const copy = client.query(copyTo(rawCopySql(q), { highWaterMark: COPY_READ_AHEAD_BYTES }));
  try {
    yield* decodeCopyStream(copy, q.columns, batchRows);
    finished = true;
  } catch (err) {
    broken = err as Error;
    throw err;
  } finally {
    // A reader that stops early leaves the connection mid-COPY: it is closed, not reused.
    if (!finished) copy.destroy();
    client.release(finished ? undefined : (broken ?? new Error('raw export stopped before its end')));
  }
}
