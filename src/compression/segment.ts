// Segments: up to SEGMENT_ROWS rows of one tag set and one ingest, ordered by time, held as one
// encoded column each (codecs/), with per-column statistics. SegmentBuilder collects the rows of
// a chunk as COPY streams them; decodeSegment turns a stored segment back into a ColumnBatch.
import type { ColumnBatch, ColumnData, ColumnType, StreamColumn, Validity } from '../domain/types.ts';
import { PG_EPOCH_OFFSET_US } from '../copy/binary-format.ts';
import { type PlainValues, decodeColumn, encodeColumn, isValid } from './codecs/columns.ts';
import { ByteReader, ByteWriter } from './codecs/bytes.ts';
import { decodeBigInts, encodeBigInts } from './codecs/ints.ts';
import { type FieldStats, levelStats, numberText } from './segment-stats.ts';

export type { FieldStats } from './segment-stats.ts';

export const SEGMENT_ROWS = 10_000;


export interface EncodedSegment {
  ingestId: string;
  tags: Record<string, string | null>;
  rowCount: number;
  timeMin: bigint;
  timeMax: bigint;
  timeData: Uint8Array;
  /** Each row's place in the chunk's table when it was compressed (readers that sum replay that order). */
  orderData: Uint8Array;
  columns: string[];
  data: (Uint8Array | null)[];
  stats: Record<string, FieldStats>;
}

type Store = Float64Array | Float32Array | Int16Array | Int32Array | BigInt64Array | Uint8Array | (string | null)[];

function storeFor(type: ColumnType, n: number): Store {
  switch (type) {
    case 'float8': return new Float64Array(n);
    case 'float4': return new Float32Array(n);
    case 'int2': return new Int16Array(n);
    case 'int4': return new Int32Array(n);
    case 'int8': case 'timestamptz': return new BigInt64Array(n);
    case 'bool': return new Uint8Array(n);
    case 'text': return new Array<string | null>(n).fill(null);
  }
}

/**
 * Collects rows of the COPY column order ["time", ingest_id, ...tags, ...fields, place] and cuts them
 * into segments: a new one when the tag set or the ingest changes, or at SEGMENT_ROWS.
 */
export class SegmentBuilder {
  private readonly time = new BigInt64Array(SEGMENT_ROWS);
  private readonly order = new BigInt64Array(SEGMENT_ROWS);
  private readonly stores: Store[];
  private readonly valid: Uint8Array[];
  /** The bytes under each float store, to copy values bit for bit. */
  private readonly raw: Uint8Array[];
  private n = 0;
  private key: Buffer | null = null;
  private ingestId = '';
  private tagValues: (string | null)[] = [];

  constructor(private readonly tags: StreamColumn[], private readonly fields: StreamColumn[], private readonly emit: (s: EncodedSegment) => void) {
    this.stores = fields.map((f) => storeFor(f.type, SEGMENT_ROWS));
    this.valid = fields.map(() => new Uint8Array(SEGMENT_ROWS));
    this.raw = this.stores.map((s) => (s instanceof Float64Array || s instanceof Float32Array ? new Uint8Array(s.buffer) : new Uint8Array(0)));
  }

  /** One tuple of the COPY (offsets and lengths of its fields in buf; −1: NULL). */
  add = (buf: Buffer, off: Int32Array, len: Int32Array): void => {
    // The group key as the raw bytes of ingest_id and the tags (lengths included): no text decoded per row.
    const keyEnd = off[1 + this.tags.length] + Math.max(0, len[1 + this.tags.length]);
    const keyBytes = buf.subarray(off[1] - 4, keyEnd);
    if (this.key === null || this.n === SEGMENT_ROWS || !keyBytes.equals(this.key)) {
      this.flush();
      this.key = Buffer.from(keyBytes);
      this.ingestId = buf.readBigInt64BE(off[1]).toString();
      this.tagValues = this.tags.map((_, t) => (len[2 + t] < 0 ? null : buf.toString('utf8', off[2 + t], off[2 + t] + len[2 + t])));
    }
    const i = this.n++;
    this.time[i] = buf.readBigInt64BE(off[0]) + PG_EPOCH_OFFSET_US;
    const base = 2 + this.tags.length;
    this.order[i] = buf.readBigInt64BE(off[base + this.fields.length]);
    for (let f = 0; f < this.fields.length; f++) {
      const l = len[base + f];
      const o = off[base + f];
      if (l < 0) { this.valid[f][i] = 0; continue; }
      this.valid[f][i] = 1;
      const s = this.stores[f];
      switch (this.fields[f].type) {
        case 'float8': case 'float4': {
          // Big-endian bytes into the little-endian slot, bit for bit.
          const bytes = this.raw[f];
          for (let k = 0; k < l; k++) bytes[i * l + k] = buf[o + l - 1 - k];
          break;
        }
        case 'int2': (s as Int16Array)[i] = buf.readInt16BE(o); break;
        case 'int4': (s as Int32Array)[i] = buf.readInt32BE(o); break;
        case 'int8': (s as BigInt64Array)[i] = buf.readBigInt64BE(o); break;
        case 'timestamptz': (s as BigInt64Array)[i] = buf.readBigInt64BE(o) + PG_EPOCH_OFFSET_US; break;
        case 'bool': (s as Uint8Array)[i] = buf[o]; break;
        case 'text': (s as (string | null)[])[i] = buf.toString('utf8', o, o + l); break;
      }
    }
  };

  flush(): void {
    const n = this.n;
    if (n === 0) return;
    this.n = 0;
    const time = this.time.slice(0, n);
    const tw = new ByteWriter();
    encodeBigInts(tw, time);
    const ow = new ByteWriter();
    encodeBigInts(ow, this.order.slice(0, n));
    const data: (Uint8Array | null)[] = [];
    const stats: Record<string, FieldStats> = {};
    this.fields.forEach((f, k) => {
      const { values, validity } = this.plain(k, n);
      data.push(validity && validity.bitmap.every((b) => b === 0) && n > 0 ? null : encodeColumn(f.type, values, validity, n));
      stats[f.columnName] = { ...fieldStats(f.type, values, validity, n), ...levelStats(f.type, values, validity, time, n) };
    });
    let min = time[0];
    let max = time[0];
    for (let i = 1; i < n; i++) { if (time[i] < min) min = time[i]; if (time[i] > max) max = time[i]; }
    this.emit({
      ingestId: this.ingestId, tags: Object.fromEntries(this.tags.map((t, i) => [t.columnName, this.tagValues[i]])),
      rowCount: n, timeMin: min, timeMax: max, timeData: tw.finish(), orderData: ow.finish(), columns: this.fields.map((f) => f.columnName), data, stats,
    });
  }

  private plain(k: number, n: number): { values: PlainValues; validity: Validity | null } {
    const v = this.valid[k];
    let nulls = false;
    for (let i = 0; i < n; i++) if (v[i] === 0) { nulls = true; break; }
    let validity: Validity | null = null;
    if (nulls) {
      const bitmap = new Uint8Array(Math.ceil(n / 8));
      for (let i = 0; i < n; i++) if (v[i]) bitmap[i >> 3] |= 1 << (i & 7);
      validity = { bitmap, offset: 0 };
    }
    const s = this.stores[k];
    const type = this.fields[k].type;
    if (type === 'bool') {
      const bitmap = new Uint8Array(Math.ceil(n / 8));
      for (let i = 0; i < n; i++) if ((s as Uint8Array)[i]) bitmap[i >> 3] |= 1 << (i & 7);
      return { values: { kind: 'bits', bitmap, offset: 0 }, validity };
    }
    if (type === 'text') return { values: { kind: 'strings', values: (s as (string | null)[]).slice(0, n) }, validity };
    if (s instanceof BigInt64Array) return { values: { kind: 'bigint', values: s.slice(0, n) }, validity };
    return { values: { kind: 'number', values: (s as Float64Array).slice(0, n) }, validity };
  }
}

export function fieldStats(type: ColumnType, values: PlainValues, validity: Validity | null, n: number): FieldStats {
  let count = 0;
  let nan = 0;
  if (values.kind === 'number') {
    let min = Infinity; let max = -Infinity; let sum = 0;
    for (let i = 0; i < n; i++) {
      if (!isValid(validity, i)) continue;
      const x = values.values[i];
      if (x !== x) { nan++; continue; }
      // From the first value on, as PostgreSQL's sum() does (a sum of −0 alone is −0).
      sum = count === 0 ? x : sum + x;
      count++;
      if (x < min) min = x;
      if (x > max) max = x;
    }
    return { count, nan, min: count ? numberText(min) : null, max: count ? numberText(max) : null, sum: count ? numberText(sum) : null };
  }
  if (values.kind === 'bigint') {
    let min = 0n; let max = 0n; let sum = 0n;
    for (let i = 0; i < n; i++) {
      if (!isValid(validity, i)) continue;
      const x = values.values[i];
      if (count === 0 || x < min) min = x;
      if (count === 0 || x > max) max = x;
      sum += x;
      count++;
    }
    return { count, nan, min: count ? String(min) : null, max: count ? String(max) : null, sum: count && (type === 'int8' || type === 'timestamptz') ? String(sum) : null };
  }
  for (let i = 0; i < n; i++) if (isValid(validity, i)) count++;
  return { count, nan, min: null, max: null, sum: null };
}

export interface StoredSegment {
  ingestId: string;
  chunkId: number;
  tags: Record<string, string | null>;
  rowCount: number;
  timeData: Uint8Array;
  orderData: Uint8Array;
  columns: string[];
  data: (Uint8Array | null)[];
}

export interface DecodedSegment {
  ingestId: bigint;
  batch: ColumnBatch;
}

/** The rows' places in their chunk's table when it was compressed. */
export function decodeOrder(seg: StoredSegment): BigInt64Array {
  return decodeBigInts(new ByteReader(seg.orderData), seg.rowCount);
}

/** A stored segment as a ColumnBatch of `wanted` (tags as constant columns; fields added since: NULL). */
export function decodeSegment(seg: StoredSegment, wanted: readonly StreamColumn[]): DecodedSegment {
  const n = seg.rowCount;
  const time = decodeBigInts(new ByteReader(seg.timeData), n);
  let minTime = time[0];
  let maxTime = time[0];
  for (let i = 1; i < n; i++) { if (time[i] < minTime) minTime = time[i]; if (time[i] > maxTime) maxTime = time[i]; }
  const columns: ColumnData[] = wanted.map((c) => {
    if (c.role === 'tag') {
      const v = seg.tags[c.columnName] ?? null;
      return {
        column: c,
        values: { kind: 'dictionary', entries: [v === null ? null : new TextEncoder().encode(v)], indices: new Uint8Array(n) },
        validity: v === null ? { bitmap: new Uint8Array(Math.ceil(n / 8)), offset: 0 } : null,
      };
    }
    const k = seg.columns.indexOf(c.columnName);
    const decoded = decodeColumn(c.type, k < 0 ? null : seg.data[k], n);
    return { column: c, values: decoded.values, validity: decoded.validity };
  });
  return { ingestId: BigInt(seg.ingestId), batch: { length: n, time, minTime, maxTime, columns } };
}
