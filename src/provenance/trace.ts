// Tracing a value back to its ingests: the rows of a stream at one instant (a raw reading) or in
// one bucket (what a rollup bucket aggregates), optionally for given tag values, grouped by the
// ingest_id every row carries. Works from the raw rows, so it answers for any bucket width, and
// lists retracted ingests whose time range covered the place, since their rows are gone.
import type { Db } from '../db/pool.ts';
import { ident } from '../db/sql.ts';
import type { StreamColumn } from '../domain/types.ts';
import { floorDiv } from '../domain/interval.ts';
import { formatMicros, pgTimestamp } from '../domain/time.ts';
import { type Stream, streamTable } from '../streams/catalog.ts';
import { type RawSource, countCompressedPerIngest, rawSource } from '../compression/read.ts';
import { type IngestRecord, INGEST_COLUMNS, toIngestRecord } from './ingest-records.ts';

export const MAX_TRACED_INGESTS = 1000;
export const MAX_TRACED_READINGS = 100;

export interface TraceRequest {
  stream: Stream;
  time: bigint;
  tags: Map<StreamColumn, string[]>;
  /** Bucket width in µs (buckets aligned to the Unix epoch), or null for the reading at `time`. */
  bucketUs: bigint | null;
  /** The bucket starts at `time` (not aligned to the epoch): [time, time + bucketUs). */
  start?: boolean;
}

export interface TraceResult {
  from: bigint;
  to: bigint;
  ingests: { ingest: IngestRecord; rows_matched: number }[];
  /** The matching rows themselves (raw readings only), each with its ingest id. */
  readings: Record<string, unknown>[];
  retracted: IngestRecord[];
  truncated: boolean;
}

const US = (expr: string): string => `(extract(epoch FROM ${expr}) * 1000000)::bigint::text`;

function whereClause(q: TraceRequest, from: bigint, to: bigint): { sql: string; params: unknown[] } {
  const params: unknown[] = [pgTimestamp(from), pgTimestamp(to)];
  const where = ['"time" >= $1::timestamptz', '"time" < $2::timestamptz'];
  for (const [col, values] of q.tags) {
    params.push(values);
    where.push(`${ident(col.columnName)} = ANY($${params.length}::text[])`);
  }
  return { sql: where.join(' AND '), params };
}

/** Rows read for a raw reading; the ingests are counted from them, so one scan serves both. */
const MAX_RAW_ROWS = 10_000;

interface RawRows {
  readings: Record<string, unknown>[];
  groups: { id: string; n: string }[] | null;
}

/** The rows at one instant (up to MAX_RAW_ROWS), shown as readings and counted per ingest. */
async function rawRows(db: Db, q: TraceRequest, where: Where): Promise<RawRows> {
  const cols = q.stream.columns;
  const select = [US('"time"'), 'ingest_id::text', ...cols.map((c) => (c.type === 'timestamptz' ? US(ident(c.columnName)) : ident(c.columnName)))];
  const params = [...where.params];
  const source = where.source ?? await rawSource(db.pool, q.stream, { from: q.time, to: q.time + 1n, tags: q.tags });
  const { rows } = await db.pool.query({
    text: `SELECT ${select.join(', ')} FROM ${source.relation(params)} r WHERE ${where.sql} ORDER BY ingest_id LIMIT ${MAX_RAW_ROWS + 1}`,
    values: params, rowMode: 'array',
  });
  const all = rows as unknown[][];
  const counts = new Map<string, number>();
  for (const r of all) counts.set(r[1] as string, (counts.get(r[1] as string) ?? 0) + 1);
  const readings = all.slice(0, MAX_TRACED_READINGS).map((r) => {
    const tags: Record<string, unknown> = {};
    const fields: Record<string, unknown> = {};
    cols.forEach((c, k) => {
      const v = r[k + 2];
      const shown = c.type === 'timestamptz' && v !== null ? formatMicros(BigInt(v as string)) : v;
      (c.role === 'tag' ? tags : fields)[c.name] = shown;
    });
    return { time: formatMicros(BigInt(r[0] as string)), ingest_id: r[1], tags, fields };
  });
  // Past the cap the counts would be partial: the caller counts in SQL instead.
  const groups = all.length > MAX_RAW_ROWS ? null : [...counts].map(([id, n]) => ({ id, n: String(n) }));
  return { readings, groups };
}

/** Rows per ingest: the table's counted in SQL, compressed ones from segment metadata (decoding only segments cut by the range). */
async function countPerIngest(db: Db, q: TraceRequest, where: Where, from: bigint, to: bigint): Promise<{ id: string; n: string }[]> {
  const { rows } = await db.pool.query<{ id: string; n: string }>(
    `SELECT ingest_id::text AS id, count(*)::bigint AS n FROM ${streamTable(q.stream)} WHERE ${where.sql}
      GROUP BY ingest_id ORDER BY ingest_id LIMIT ${MAX_TRACED_INGESTS + 1}`, where.params);
  const packed = await countCompressedPerIngest(db.pool, q.stream, { from, to, tags: q.tags });
  if (packed.size === 0) return rows;
  for (const r of rows) packed.set(r.id, (packed.get(r.id) ?? 0) + Number(r.n));
  return [...packed].sort((a, b) => (BigInt(a[0]) < BigInt(b[0]) ? -1 : 1)).slice(0, MAX_TRACED_INGESTS + 1).map(([id, n]) => ({ id, n: String(n) }));
}

/** The filter, and the raw rows it applies to (compressed chunks' rows decoded beside the table's). */
interface Where { sql: string; params: unknown[]; source?: RawSource }

export async function traceReading(db: Db, q: TraceRequest): Promise<TraceResult> {
  const from = q.bucketUs === null || q.start ? q.time : floorDiv(q.time, q.bucketUs) * q.bucketUs;
  const to = q.bucketUs === null ? q.time + 1n : from + q.bucketUs;
  const where: Where = whereClause(q, from, to);
  const raw = q.bucketUs === null ? await rawRows(db, q, where) : null;
  const groups = raw?.groups ?? await countPerIngest(db, q, where, from, to);
  const truncated = groups.length > MAX_TRACED_INGESTS;
  const ids = groups.slice(0, MAX_TRACED_INGESTS).map((g) => g.id);
  const { rows: records } = await db.pool.query(
    `SELECT ${INGEST_COLUMNS} FROM strata.ingests i WHERE id = ANY($1::bigint[])`, [ids]);
  const byId = new Map(records.map((r) => [String(r.id), toIngestRecord(r)]));
  const { rows: retracted } = await db.pool.query(
    `SELECT ${INGEST_COLUMNS} FROM strata.ingests i
      WHERE stream_id = $1 AND status = 'retracted' AND time_min < $3::timestamptz AND time_max >= $2::timestamptz
      ORDER BY id LIMIT ${MAX_TRACED_INGESTS}`, [q.stream.id, pgTimestamp(from), pgTimestamp(to)]);
  return {
    from, to, truncated,
    ingests: groups.slice(0, MAX_TRACED_INGESTS).flatMap((g) => {
      const ingest = byId.get(g.id);
      return ingest ? [{ ingest, rows_matched: Number(g.n) }] : [];
    }),
    readings: raw?.readings ?? [],
    retracted: retracted.map(toIngestRecord),
  };
}
