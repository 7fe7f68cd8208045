// Segments as rows of a binary COPY into strata_data.segments (the column list SEGMENT_COLUMNS):
// one COPY carries a chunk's segments in the transaction that converts it, where a multi-row
// INSERT would build parameter lists and parse a statement per batch. Encoded columns go as they
// are (bytea, bytea[]), statistics and tags as jsonb (version byte 1, then the JSON text).
import { PG_EPOCH_OFFSET_US } from '../copy/binary-format.ts';
import type { EncodedSegment } from './segment.ts';

export const SEGMENT_COLUMNS = [
  'stream_id', 'chunk_id', 'ingest_id', 'tags', 'row_count', 'time_min', 'time_max', 'time_data', 'order_data', 'columns', 'data', 'stats',
] as const;

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

/** The segments' rows in binary COPY form (no header or trailer). */
export function segmentCopyRows(streamId: number, chunkId: number, segs: readonly EncodedSegment[]): Buffer {
  const enc = new TextEncoder();
  const parts = segs.map((s) => ({
    tags: enc.encode(JSON.stringify(s.tags)),
    stats: enc.encode(JSON.stringify(s.stats)),
    names: s.columns.map((c) => enc.encode(c)),
  }));
  let size = 0;
  segs.forEach((s, k) => {
    const p = parts[k];
    // field count; 3 int8, row_count, 2 timestamps (with their lengths); the variable fields with theirs
    size += 2 + 3 * 12 + 8 + 2 * 12 + 4 * 6 + 2 + p.tags.length + p.stats.length + s.timeData.length + s.orderData.length
      + arraySize(p.names) + arraySize(s.data);
  });
  // A buffer of its own (never a slice of the shared pool): it is transferred to another thread.
  const buf = Buffer.allocUnsafeSlow(size);
  let at = 0;
  const i64 = (v: bigint): void => { buf.writeInt32BE(8, at); buf.writeBigInt64BE(v, at + 4); at += 12; };
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
  segs.forEach((s, k) => {
    const p = parts[k];
    buf.writeInt16BE(SEGMENT_COLUMNS.length, at); at += 2;
    i64(BigInt(streamId));
    i64(BigInt(chunkId));
    i64(BigInt(s.ingestId));
    bytes(p.tags, JSONB_VERSION);
    buf.writeInt32BE(4, at); buf.writeInt32BE(s.rowCount, at + 4); at += 8;
    i64(s.timeMin - PG_EPOCH_OFFSET_US);
    i64(s.timeMax - PG_EPOCH_OFFSET_US);
    bytes(s.timeData);
    bytes(s.orderData);
    array(TEXT_OID, p.names);
    array(BYTEA_OID, s.data);
    bytes(p.stats, JSONB_VERSION);
  });
  if (at !== size) throw new Error(`segment rows took ${at} bytes, ${size} were counted`);
  return buf;
}
