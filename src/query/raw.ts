// Raw read-back: the stored rows of a stream between two instants, oldest first.
import type { Db } from '../db/pool.ts';
import { ident } from '../db/sql.ts';
import type { StreamColumn } from '../domain/types.ts';
import { pgTimestamp } from '../domain/time.ts';
import { type Stream, streamTable } from '../streams/catalog.ts';
import { mergeWithCompressed } from '../compression/read.ts';
import { cursorPages } from './cursor-pages.ts';
import type { Cell, ResultColumn } from './result-formats.ts';

export interface RawQuery {
  stream: Stream;
  from: bigint | null;
  to: bigint | null;
  columns: StreamColumn[];
  tags: Map<StreamColumn, string[]>;
  limit?: number | null;
}

const US = (expr: string): string => `(extract(epoch FROM ${expr}) * 1000000)::bigint`;

/** Builds the SQL; every value is a parameter and every identifier comes from the catalog, quoted. */
export function rawSql(q: RawQuery): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const where: string[] = [];
  if (q.from !== null) { params.push(pgTimestamp(q.from)); where.push(`"time" >= $${params.length}::timestamptz`); }
  if (q.to !== null) { params.push(pgTimestamp(q.to)); where.push(`"time" < $${params.length}::timestamptz`); }
  for (const [col, values] of q.tags) {
    params.push(values);
    where.push(`${ident(col.columnName)} = ANY($${params.length}::text[])`);
  }
  const select = [US('"time"'), ...q.columns.map((c) => (c.type === 'timestamptz' ? US(ident(c.columnName)) : ident(c.columnName)))];
  let sql = `SELECT ${select.join(', ')} FROM ${streamTable(q.stream)}`;
  if (where.length > 0) sql += ` WHERE ${where.join(' AND ')}`;
  sql += ' ORDER BY "time"';
  if (q.limit) { params.push(q.limit); sql += ` LIMIT $${params.length}`; }
  return { sql, params };
}

export function rawColumns(q: RawQuery): ResultColumn[] {
  return [{ name: 'time', type: 'time' }, ...q.columns.map((c) => ({ name: c.name, type: c.type }))];
}

export function rawPages(db: Db, q: RawQuery): AsyncGenerator<Cell[][]> {
  const { sql, params } = rawSql(q);
  // Rows of compressed chunks are merged in, in time order (compression/read.ts).
  return mergeWithCompressed(db.pool, q.stream, { from: q.from, to: q.to, tags: q.tags }, q.columns, cursorPages(db, sql, params), q.limit ?? null);
}
