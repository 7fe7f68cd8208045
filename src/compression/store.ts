// The segments table (strata_data.segments): finding the segments a read needs (by time range and
// tag values, from the index, without their data), and loading their data in batches. Segments
// are written by binary COPY (segment-copy.ts, compress-chunk.ts). Since format 3 a segment's encoded columns are one byte string cut into
// page-sized rows of strata_data.segment_parts (schemas/014_segment_parts.sql); segments written
// before hold them in segments.data and read as before.
import type { Queryable } from '../db/pool.ts';
import { pgTimestamp } from '../domain/time.ts';
import type { StreamColumn } from '../domain/types.ts';
import { ByteReader, ByteWriter, CorruptSegment } from './codecs/bytes.ts';
import type { FieldStats, StoredSegment } from './segment.ts';

export const SEGMENTS = 'strata_data.segments';
export const SEGMENT_PARTS = 'strata_data.segment_parts';
/** The most bytes of a part: its row (48 bytes of header and keys, then these) fills a page, 8,160 bytes. */
export const PART_BYTES = 8112;

/** A segment's encoded columns as one byte string: their count, each one's length + 1 (0: all NULL), then their bytes. */
export function joinColumns(data: readonly (Uint8Array | null)[]): Uint8Array {
  const w = new ByteWriter();
  w.varint(data.length);
  for (const d of data) w.varint(d === null ? 0 : d.length + 1);
  for (const d of data) if (d !== null) w.bytes(d);
  return w.finish();
}

export function splitColumns(bytes: Uint8Array): (Uint8Array | null)[] {
  const r = new ByteReader(bytes);
  const count = r.varint();
  if (count > bytes.length) throw new CorruptSegment(`${count} columns in ${bytes.length} bytes`);
  const lengths = Array.from({ length: count }, () => r.varint());
  const out = lengths.map((l) => (l === 0 ? null : r.bytes(l - 1)));
  if (r.pos !== bytes.length) throw new CorruptSegment(`columns hold ${r.pos} of their ${bytes.length} bytes`);
  return out;
}

export interface SegmentRef {
  id: string;
  chunkId: number;
  ingestId: string;
  tags: Record<string, string | null>;
  rowCount: number;
  timeMin: bigint;
  timeMax: bigint;
}

export interface SegmentFilter {
  streamId: number;
  /** [from, to): segments overlapping it. */
  from: bigint | null;
  to: bigint | null;
  tags?: ReadonlyMap<StreamColumn, readonly string[]>;
}

const US = (e: string): string => `(extract(epoch FROM ${e}) * 1000000)::bigint::text`;

function where(f: SegmentFilter, params: unknown[]): string {
  params.push(f.streamId);
  const w = [`stream_id = $${params.length}`];
  if (f.to !== null) { params.push(pgTimestamp(f.to)); w.push(`time_min < $${params.length}::timestamptz`); }
  if (f.from !== null) { params.push(pgTimestamp(f.from)); w.push(`time_max >= $${params.length}::timestamptz`); }
  for (const [col, values] of f.tags ?? []) {
    params.push(col.columnName, values);
    w.push(`tags->>$${params.length - 1} = ANY($${params.length}::text[])`);
  }
  return w.join(' AND ');
}

/** The segments overlapping a range, oldest first, without their data. */
export async function findSegments(q: Queryable, f: SegmentFilter): Promise<SegmentRef[]> {
  const params: unknown[] = [];
  const { rows } = await q.query<{ id: string; chunk_id: string; ingest_id: string; tags: Record<string, string | null>; row_count: number; tmin: string; tmax: string }>(
    `SELECT id::text, chunk_id::text, ingest_id::text, tags, row_count, ${US('time_min')} AS tmin, ${US('time_max')} AS tmax
       FROM ${SEGMENTS} WHERE ${where(f, params)} ORDER BY time_min, id`, params);
  return rows.map((r) => ({
    id: r.id, chunkId: Number(r.chunk_id), ingestId: r.ingest_id, tags: r.tags, rowCount: r.row_count, timeMin: BigInt(r.tmin), timeMax: BigInt(r.tmax),
  }));
}

/** What a segment's statistics say of one field; a part left undefined was not kept for the segment. */
export interface FieldSummary {
  /** Values other than NULL and NaN, and NaNs. */
  count: number;
  nan: number;
  /** Texts PostgreSQL reads back exactly (int8 and times as integers, times in µs); null when count is 0. */
  min: string | null;
  max: string | null;
  sum: string | null;
  /** The first value (the smallest at the earliest time) and the last (the largest at the latest), with their times. */
  first?: { at: bigint; value: string } | null;
  last?: { at: bigint; value: string } | null;
  /** µs of the earliest and latest NaN (null: there is none). */
  nanFirst?: bigint | null;
  nanLast?: bigint | null;
  /** bool: how many true. */
  trues?: number;
}

export interface SegmentSummary extends SegmentRef {
  /** By field column name; a field missing here was added after the segment was written (all NULL in it). */
  fields: ReadonlyMap<string, FieldSummary>;
}

function fieldSummary(s: FieldStats, ref: SegmentRef): FieldSummary {
  const out: FieldSummary = { count: s.count, nan: s.nan, min: s.min, max: s.max, sum: s.sum };
  if (s.first !== undefined) out.first = s.first === null ? null : { at: s.firstAt === undefined ? ref.timeMin : BigInt(s.firstAt), value: s.first };
  if (s.last !== undefined) out.last = s.last === null ? null : { at: s.lastAt === undefined ? ref.timeMax : BigInt(s.lastAt), value: s.last };
  // Written with first and last: NaN times where there were NaN.
  if (s.first !== undefined || s.nanFirst !== undefined) {
    out.nanFirst = s.nanFirst === undefined ? null : BigInt(s.nanFirst);
    out.nanLast = s.nanLast === undefined ? null : BigInt(s.nanLast);
  }
  if (s.true !== undefined) out.trues = s.true;
  return out;
}

/**
 * The segments overlapping a range with their statistics, oldest first, without their data. The
 * one reader of the statistics' stored form: whatever reads segment metadata goes through here.
 */
export async function findSegmentSummaries(q: Queryable, f: SegmentFilter): Promise<SegmentSummary[]> {
  const params: unknown[] = [];
  const { rows } = await q.query<{ id: string; chunk_id: string; ingest_id: string; tags: Record<string, string | null>; row_count: number; tmin: string; tmax: string; stats: Record<string, FieldStats> }>(
    `SELECT id::text, chunk_id::text, ingest_id::text, tags, row_count, ${US('time_min')} AS tmin, ${US('time_max')} AS tmax, stats
       FROM ${SEGMENTS} WHERE ${where(f, params)} ORDER BY time_min, id`, params);
  return rows.map((r) => {
    const ref: SegmentRef = {
      id: r.id, chunkId: Number(r.chunk_id), ingestId: r.ingest_id, tags: r.tags, rowCount: r.row_count, timeMin: BigInt(r.tmin), timeMax: BigInt(r.tmax),
    };
    return { ...ref, fields: new Map(Object.entries(r.stats).map(([name, s]) => [name, fieldSummary(s, ref)])) };
  });
}

/** Whether any segment of the stream overlaps [from, to) — one index probe. */
export async function anySegments(q: Queryable, f: SegmentFilter): Promise<boolean> {
  const params: unknown[] = [];
  const { rows } = await q.query(`SELECT 1 FROM ${SEGMENTS} WHERE ${where(f, params)} LIMIT 1`, params);
  return rows.length > 0;
}

/**
 * The data of segments by id (in the order of ids): their parts (format 3), or one row per encoded
 * column of segments.data, a plain bytea each (node-postgres decodes bytea[] character by
 * character, a bytea at native speed).
 */
export async function loadSegments(q: Queryable, streamId: number, refs: readonly SegmentRef[]): Promise<StoredSegment[]> {
  if (refs.length === 0) return [];
  const config = {
    text: `SELECT s.id::text AS id, u.k::int4 AS k, u.d, CASE WHEN u.k = 1 THEN array_to_json(s.columns)::text END AS names, s.parts
             FROM ${SEGMENTS} s CROSS JOIN LATERAL unnest(array_prepend(s.time_data, array_prepend(s.order_data, s.data))) WITH ORDINALITY AS u(d, k)
            WHERE s.stream_id = $1 AND s.id = ANY($2::bigint[])`,
    values: [streamId, refs.map((r) => r.id)],
  };
  const { rows } = await q.query<{ id: string; k: number; d: Buffer | null; names: string | null; parts: number }>(config);
  const parts = await q.query<{ id: string; bytes: Buffer }>(
    `SELECT segment_id::text AS id, bytes FROM ${SEGMENT_PARTS} WHERE stream_id = $1 AND segment_id = ANY($2::bigint[]) ORDER BY segment_id, part`, config.values);
  const byId = new Map<string, { timeData: Uint8Array; orderData: Uint8Array; columns: string[]; data: (Uint8Array | null)[] }>();
  for (const r of rows) {
    let e = byId.get(r.id);
    if (!e) { e = { timeData: new Uint8Array(0), orderData: new Uint8Array(0), columns: [], data: [] }; byId.set(r.id, e); }
    if (r.k === 1) { e.timeData = r.d ?? new Uint8Array(0); e.columns = JSON.parse(r.names ?? '[]') as string[]; }
    else if (r.k === 2) e.orderData = r.d ?? new Uint8Array(0);
    else e.data[r.k - 3] = r.d;
  }
  const pieces = new Map<string, Buffer[]>();
  for (const r of parts.rows) {
    let list = pieces.get(r.id);
    if (!list) pieces.set(r.id, (list = []));
    list.push(r.bytes);
  }
  for (const r of rows) {
    if (r.k !== 1 || r.parts === 0) continue;
    const list = pieces.get(r.id) ?? [];
    if (list.length !== r.parts) throw new CorruptSegment(`segment ${r.id} has ${list.length} of its ${r.parts} parts`);
    const e = byId.get(r.id);
    if (e) e.data = splitColumns(list.length === 1 ? list[0] : Buffer.concat(list));
  }
  return refs.map((ref) => {
    const e = byId.get(ref.id);
    if (!e) throw new Error(`segment ${ref.id} disappeared while it was read`);
    return { ingestId: ref.ingestId, chunkId: ref.chunkId, tags: ref.tags, rowCount: ref.rowCount, ...e };
  });
}

/**
 * Deletes the segments of an ingest (retraction): a segment holds one ingest's rows, so none is
 * rewritten. Returns the rows removed per chunk table, and updates the chunks' counts.
 */
export async function deleteIngestSegments(q: Queryable, streamId: number, ingestId: string): Promise<Map<string, number>> {
  const { rows } = await q.query<{ table_name: string; n: string }>(
    `WITH d AS (DELETE FROM ${SEGMENTS} WHERE stream_id = $1 AND ingest_id = $2 RETURNING chunk_id, row_count),
          per AS (SELECT chunk_id, sum(row_count)::bigint AS n FROM d GROUP BY chunk_id),
          upd AS (UPDATE strata.chunks c SET compressed_rows = c.compressed_rows - per.n FROM per WHERE c.id = per.chunk_id RETURNING c.table_name, per.n)
     SELECT table_name, n::text FROM upd`, [streamId, ingestId]);
  return new Map(rows.map((r) => [r.table_name, Number(r.n)]));
}

/** Rows per ingest of a chunk's segments, as SQL (retention counts them with the chunk's table). */
export function segmentContentsSql(streamId: number, chunkId: number): string {
  return `SELECT ingest_id::text AS id, sum(row_count)::bigint AS n FROM ${SEGMENTS} WHERE stream_id = ${Number(streamId)} AND chunk_id = ${Number(chunkId)} GROUP BY ingest_id`;
}

/** Deletes a chunk's segments (retention, in the transaction that drops the chunk's table). */
export async function deleteChunkSegments(q: Queryable, streamId: number, chunkId: number): Promise<number> {
  const r = await q.query(`DELETE FROM ${SEGMENTS} WHERE stream_id = $1 AND chunk_id = $2`, [streamId, chunkId]);
  return r.rowCount ?? 0;
}
