// Segments as rows of binary COPY: their rows into strata_data.segments (SEGMENT_COLUMNS), where
// multi-row INSERTs would build parameter lists and parse a statement per batch, and their
// encoded columns, joined and cut into page-sized parts, for strata_data.segment_parts
// (PART_COLUMNS; inserted from that form, see writeSegmentRows) — a batch at a time in the
// transaction that converts a chunk. Ids are taken from the
// segments' sequence beforehand, so that parts name their segment. Statistics and tags go as
// jsonb (version byte 1, then the JSON text).
import { PG_EPOCH_OFFSET_US } from '../copy/binary-format.ts';
import { CopyStream } from '../copy/copy-stream.ts';
import type { PoolClient, Queryable } from '../db/pool.ts';
import type { EncodedSegment } from './segment.ts';
import { PART_BYTES, SEGMENTS, SEGMENT_PARTS, joinColumns } from './store.ts';

export const SEGMENT_COLUMNS = [
  'id', 'stream_id', 'chunk_id', 'ingest_id', 'tags', 'row_count', 'time_min', 'time_max', 'time_data', 'order_data', 'columns', 'data', 'stats', 'parts',
] as const;
export const PART_COLUMNS = ['stream_id', 'segment_id', 'part', 'bytes'] as const;

/** A batch of segments as COPY rows (no header or trailer) for the two tables. */
export interface SegmentRows {
  segments: Buffer;
  parts: Buffer;
  /** Segment rows in `segments`. */
  count: number;
}

/** `n` fresh segment ids (the sequence is not transactional: any connection may take them). */
export async function reserveSegmentIds(q: Pick<Queryable, 'query'>, n: number): Promise<bigint[]> {
  if (n === 0) return [];
  const { rows } = await q.query<{ id: string }>(
    `SELECT nextval(pg_get_serial_sequence('${SEGMENTS}', 'id'))::text AS id FROM generate_series(1, $1)`, [n]);
  return rows.map((r) => BigInt(r.id));
}

const TEXT_OID = 25;
const BYTEA_OID = 17;
const JSONB_VERSION = 1;

/** Bytes of a one-dimensional array of variable-length values in binary form (NULL: null). */
function arraySize(items: readonly (Uint8Array | null)[]): number {
  let size = items.length === 0 ? 12 : 20;
  for (const d of items) size += 4 + (d?.length ?? 0);
  return size;
}

function writeArray(buf: Buffer, at: number, oid: number, items: readonly (Uint8Array | null)[]): number {
  let p = at;
  buf.writeInt32BE(items.length === 0 ? 0 : 1, p); p += 4;
  buf.writeInt32BE(items.some((d) => d === null) ? 1 : 0, p); p += 4;
  buf.writeInt32BE(oid, p); p += 4;
  if (items.length === 0) return p;
  buf.writeInt32BE(items.length, p); p += 4;
  buf.writeInt32BE(1, p); p += 4;
  for (const d of items) {
    if (d === null) { buf.writeInt32BE(-1, p); p += 4; continue; }
    buf.writeInt32BE(d.length, p); p += 4;
    buf.set(d, p); p += d.length;
  }
  return p;
}

/** The segments' rows and their parts in binary COPY form; `ids` from reserveSegmentIds. */
export function segmentCopyRows(streamId: number, chunkId: number, segs: readonly EncodedSegment[], ids: readonly bigint[]): SegmentRows {
  if (ids.length !== segs.length) throw new Error(`${ids.length} ids for ${segs.length} segments`);
  const enc = new TextEncoder();
  const meta = segs.map((s) => {
    const joined = joinColumns(s.data);
    return {
      tags: enc.encode(JSON.stringify(s.tags)),
      stats: enc.encode(JSON.stringify(s.stats)),
      names: s.columns.map((c) => enc.encode(c)),
      joined,
      parts: Math.ceil(joined.length / PART_BYTES),
    };
  });
  let size = 0;
  let partsSize = 0;
  segs.forEach((s, k) => {
    const p = meta[k];
    // field count; 4 int8, 2 int4, 2 timestamps (with their lengths); the variable fields with theirs
    size += 2 + 4 * 12 + 2 * 8 + 2 * 12 + 4 * 6 + 2 + p.tags.length + p.stats.length + s.timeData.length + s.orderData.length
      + arraySize(p.names) + arraySize([]);
    // per part: field count, 2 int8, 1 int4, the bytes with their length
    partsSize += p.parts * (2 + 2 * 12 + 8 + 4) + p.joined.length;
  });
  // Buffers of their own (never slices of the shared pool): they are transferred to another thread.
  const buf = Buffer.allocUnsafeSlow(size);
  const partBuf = Buffer.allocUnsafeSlow(partsSize);
  let at = 0;
  const i64 = (v: bigint): void => { buf.writeInt32BE(8, at); buf.writeBigInt64BE(v, at + 4); at += 12; };
  const i32 = (v: number): void => { buf.writeInt32BE(4, at); buf.writeInt32BE(v, at + 4); at += 8; };
  const bytes = (d: Uint8Array, prefix?: number): void => {
    const extra = prefix === undefined ? 0 : 1;
    buf.writeInt32BE(d.length + extra, at); at += 4;
    if (prefix !== undefined) buf[at++] = prefix;
    buf.set(d, at); at += d.length;
  };
  const array = (oid: number, items: readonly (Uint8Array | null)[]): void => {
    buf.writeInt32BE(arraySize(items), at);
    at = writeArray(buf, at + 4, oid, items);
  };
  let pat = 0;
  segs.forEach((s, k) => {
    const p = meta[k];
    buf.writeInt16BE(SEGMENT_COLUMNS.length, at); at += 2;
    i64(ids[k]);
    i64(BigInt(streamId));
    i64(BigInt(chunkId));
    i64(BigInt(s.ingestId));
    bytes(p.tags, JSONB_VERSION);
    i32(s.rowCount);
    i64(s.timeMin - PG_EPOCH_OFFSET_US);
    i64(s.timeMax - PG_EPOCH_OFFSET_US);
    bytes(s.timeData);
    bytes(s.orderData);
    array(TEXT_OID, p.names);
    array(BYTEA_OID, []);
    bytes(p.stats, JSONB_VERSION);
    i32(p.parts);
    for (let i = 0; i < p.parts; i++) {
      const piece = p.joined.subarray(i * PART_BYTES, (i + 1) * PART_BYTES);
      partBuf.writeInt16BE(PART_COLUMNS.length, pat); pat += 2;
      partBuf.writeInt32BE(8, pat); partBuf.writeBigInt64BE(BigInt(streamId), pat + 4); pat += 12;
      partBuf.writeInt32BE(8, pat); partBuf.writeBigInt64BE(ids[k], pat + 4); pat += 12;
      partBuf.writeInt32BE(4, pat); partBuf.writeInt32BE(i, pat + 4); pat += 8;
      partBuf.writeInt32BE(piece.length, pat); pat += 4;
      partBuf.set(piece, pat); pat += piece.length;
    }
  });
  if (at !== size || pat !== partsSize) throw new Error(`segment rows took ${at} and ${pat} bytes, ${size} and ${partsSize} were counted`);
  return { segments: buf, parts: partBuf, count: segs.length };
}

/**
 * Writes a batch of segments on `tx`: their rows by COPY, then their parts (which refer to them)
 * by INSERT. An INSERT puts a short last part into the free space another one left (the free
 * space map); PostgreSQL 17's COPY gives each a page of its own (200 segments of 7 parts: 1,424
 * pages by COPY, 1,293 by INSERT — about 0.5 bytes a row on lab-logger rows).
 */
export async function writeSegmentRows(tx: PoolClient, rows: SegmentRows, windowBytes: number): Promise<void> {
  const copy = new CopyStream(tx, SEGMENTS, SEGMENT_COLUMNS, windowBytes);
  try {
    await copy.write(rows.segments);
    const stored = await copy.finish();
    if (stored !== rows.count) throw new Error(`the segments COPY stored ${stored} rows of ${rows.count}`);
  } catch (err) {
    await copy.abort('the segments could not be written');
    throw err;
  }
  await insertParts(tx, rows.parts);
}

/** Part rows per INSERT (4 parameters each, well below PostgreSQL's 65,535). */
const PARTS_AT_ONCE = 1000;

/** Inserts the part rows of a COPY buffer (PART_COLUMNS), the byte strings as binary parameters. */
async function insertParts(tx: PoolClient, parts: Buffer): Promise<void> {
  let at = 0;
  while (at < parts.length) {
    const values: string[] = [];
    const params: unknown[] = [];
    while (at < parts.length && values.length < PARTS_AT_ONCE) {
      if (parts.readInt16BE(at) !== PART_COLUMNS.length) throw new Error('a part row of the wrong shape');
      const streamId = parts.readBigInt64BE(at + 6);
      const segmentId = parts.readBigInt64BE(at + 18);
      const part = parts.readInt32BE(at + 30);
      const len = parts.readInt32BE(at + 34);
      at += 38;
      params.push(String(streamId), String(segmentId), part, parts.subarray(at, at + len));
      at += len;
      const b = params.length - 4;
      values.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}::bytea)`);
    }
    await tx.query(`INSERT INTO ${SEGMENT_PARTS} (${PART_COLUMNS.join(', ')}) VALUES ${values.join(', ')}`, params);
  }
}
