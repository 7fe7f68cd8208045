// Segments: up to SEGMENT_ROWS rows of one tag set and one ingest, ordered by time, held as one
// encoded column each (codecs/), with per-column statistics. SegmentBuilder encodes the rows of a
// chunk as group-rows.ts collects them; decodeSegment turns a stored segment back into a ColumnBatch.
import type { ColumnBatch, ColumnData, ColumnType, StreamColumn, Validity } from '../domain/types.ts';
import { PG_OFFSET_HI, PG_OFFSET_LO } from '../copy/binary-format.ts';
import { type PlainValues, decodeColumn, encodeColumn, isValid } from './codecs/columns.ts';
import { ByteReader, ByteWriter } from './codecs/bytes.ts';
import { decodeBigInts, encodeBigInts } from './codecs/ints.ts';
import { type FieldStats, levelStats, numberText, timeSpan } from './segment-stats.ts';

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

export function storeFor(type: ColumnType, n: number): Store {
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
 * The 32-bit words under a store of floats or 8-byte integers (two a value, low word first on
 * this little-endian machine): values move through them bit for bit (a NaN's payload, −0) and
 * without a BigInt per value. Empty for the other stores.
 */
export function wordsOf(s: Store): Int32Array {
  return s instanceof Float64Array || s instanceof Float32Array || s instanceof BigInt64Array ? new Int32Array(s.buffer, s.byteOffset, s.byteLength >> 2) : new Int32Array(0);
}

/** One field of RowColumns: its values (a store of its type) and a NULL flag per row (0: NULL). */
export interface FieldColumn {
  values: Store;
  words: Int32Array;
  valid: Uint8Array;
}

/**
 * Rows of one tag set and ingest as columns, as group-rows.ts collects them from the COPY: times
 * and timestamptz fields as PostgreSQL sends them (µs since 2000-01-01), each row's place in the
 * chunk's scan (1-based, below 2^53).
 */
export interface RowColumns {
  ingestId: string;
  tagValues: (string | null)[];
  /** Two words a row, low first. */
  time: Int32Array;
  place: Float64Array;
  fields: FieldColumn[];
}

const TWO_32 = 0x1_0000_0000;

/** Adds the epoch offset to the int64 at word pair k of `w` (wrapping as int64 arithmetic does). */
function toUnixEpoch(w: Int32Array, k: number, lo: number, hi: number): void {
  const sum = (lo >>> 0) + PG_OFFSET_LO;
  w[k] = sum | 0;
  w[k + 1] = (hi + PG_OFFSET_HI + (sum >= TWO_32 ? 1 : 0)) | 0;
}

/**
 * Encodes rows of one tag set and ingest (RowColumns, in the order group-rows.ts gives) into
 * segments of at most SEGMENT_ROWS, with their statistics.
 */
export class SegmentBuilder {
  private readonly time = new BigInt64Array(SEGMENT_ROWS);
  private readonly timeWords = new Int32Array(this.time.buffer);
  private readonly order = new BigInt64Array(SEGMENT_ROWS);
  private readonly orderWords = new Int32Array(this.order.buffer);
  private readonly stores: Store[];
  private readonly words: Int32Array[];
  private readonly valid: Uint8Array[];
  private n = 0;
  private ingestId = '';
  private tagValues: (string | null)[] = [];

  constructor(private readonly tags: StreamColumn[], private readonly fields: StreamColumn[], private readonly emit: (s: EncodedSegment) => void) {
    this.stores = fields.map((f) => storeFor(f.type, SEGMENT_ROWS));
    this.words = this.stores.map(wordsOf);
    this.valid = fields.map(() => new Uint8Array(SEGMENT_ROWS));
  }

  /**
   * Rows rows[from] … rows[to − 1] of `src` (at most SEGMENT_ROWS) as one segment; rows null:
   * rows from … to − 1 in their order.
   */
  build(src: RowColumns, rows: Int32Array | null, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    if (n > SEGMENT_ROWS) throw new Error(`a segment of ${n} rows`);
    this.ingestId = src.ingestId;
    this.tagValues = src.tagValues;
    const row = (j: number): number => (rows === null ? from + j : rows[from + j]);
    const tw = this.timeWords;
    const ow = this.orderWords;
    const st = src.time;
    for (let j = 0; j < n; j++) {
      const r = row(j);
      toUnixEpoch(tw, 2 * j, st[2 * r], st[2 * r + 1]);
      const p = src.place[r];
      ow[2 * j] = p % TWO_32;
      ow[2 * j + 1] = Math.floor(p / TWO_32);
    }
    for (let f = 0; f < this.fields.length; f++) {
      const col = src.fields[f];
      const type = this.fields[f].type;
      const s = this.stores[f];
      const w = this.words[f];
      const sw = col.words;
      if (type === 'timestamptz') {
        for (let j = 0; j < n; j++) { const r = row(j); toUnixEpoch(w, 2 * j, sw[2 * r], sw[2 * r + 1]); }
      } else if (rows === null) {
        // Rows in order: whole runs copied (words for floats and int8, bit for bit).
        this.valid[f].set(col.valid.subarray(from, to));
        if (type === 'float8' || type === 'int8') w.set(sw.subarray(2 * from, 2 * to));
        else if (type === 'float4') w.set(sw.subarray(from, to));
        else if (type === 'text') for (let j = 0; j < n; j++) (s as (string | null)[])[j] = (col.values as (string | null)[])[from + j];
        else (s as Int16Array | Int32Array | Uint8Array).set((col.values as Int16Array | Int32Array | Uint8Array).subarray(from, to));
        continue;
      } else if (type === 'float8' || type === 'int8') {
        for (let j = 0; j < n; j++) { const r = rows[from + j]; w[2 * j] = sw[2 * r]; w[2 * j + 1] = sw[2 * r + 1]; }
      } else if (type === 'float4') {
        for (let j = 0; j < n; j++) w[j] = sw[rows[from + j]];
      } else {
        const out = s as Int16Array | Int32Array | Uint8Array | (string | null)[];
        const sv = col.values as Int16Array | Int32Array | Uint8Array | (string | null)[];
        for (let j = 0; j < n; j++) out[j] = sv[rows[from + j]];
      }
      const valid = this.valid[f];
      const sv = col.valid;
      for (let j = 0; j < n; j++) valid[j] = sv[row(j)];
    }
    this.n = n;
    this.flush();
  }

  private flush(): void {
    const n = this.n;
    if (n === 0) return;
    this.n = 0;
    // Views of the builder's arrays, not copies: nothing below keeps them past this call.
    const time = this.time.subarray(0, n);
    const tw = new ByteWriter();
    encodeBigInts(tw, time);
    const ow = new ByteWriter();
    encodeBigInts(ow, this.order.subarray(0, n));
    const data: (Uint8Array | null)[] = [];
    const stats: Record<string, FieldStats> = {};
    const span = timeSpan(time, n);
    this.fields.forEach((f, k) => {
      const { values, validity } = this.plain(k, n);
      data.push(validity && validity.bitmap.every((b) => b === 0) && n > 0 ? null : encodeColumn(f.type, values, validity, n));
      stats[f.columnName] = { ...fieldStats(f.type, values, validity, n), ...levelStats(f.type, values, validity, time, n, span) };
    });
    // The earliest and latest time, compared as two words (high signed, low unsigned).
    const w = this.timeWords;
    let lo = 0;
    let hi = 0;
    for (let i = 1; i < n; i++) {
      const h = w[2 * i + 1];
      const l = w[2 * i] >>> 0;
      if (h < w[2 * lo + 1] || (h === w[2 * lo + 1] && l < w[2 * lo] >>> 0)) lo = i;
      if (h > w[2 * hi + 1] || (h === w[2 * hi + 1] && l > w[2 * hi] >>> 0)) hi = i;
    }
    const min = time[lo];
    const max = time[hi];
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
    if (s instanceof BigInt64Array) return { values: { kind: 'bigint', values: s.subarray(0, n) }, validity };
    return { values: { kind: 'number', values: (s as Float64Array).subarray(0, n) }, validity };
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
