// Groups a chunk's rows, as a scan of its table returns them, into segments without a sort in
// PostgreSQL (sorting a chunk of millions of rows by tag set, ingest and time cost PostgreSQL more
// than the whole rest of the conversion). Each row's values go straight from the COPY bytes into
// typed columns of its group — its tag set and ingest — with its place in the scan, until the
// group holds a whole segment's rows in time order, which then go to the segment builder; a group
// whose rows came out of time order waits for the end and is sorted by time (ties in scan order)
// first. Values move as 32-bit words, bit for bit (NaN payloads, −0), with no BigInt and no copy
// of the tuple kept. Past BUFFER_BYTES of kept columns the largest group is cut into segments
// early, so memory stays bounded whatever the chunk holds (a chunk of very many interleaved tag
// sets then gets segments shorter than SEGMENT_ROWS).
import { viewOf } from './copy-rows.ts';
import { type FieldColumn, type RowColumns, SEGMENT_ROWS, SegmentBuilder, type EncodedSegment, storeFor, wordsOf } from './segment.ts';
import type { ColumnType, StreamColumn } from '../domain/types.ts';

/** Bytes of columns kept across all groups before the largest is cut early. */
export const BUFFER_BYTES = 96 * 1024 * 1024;
const FIRST_CAPACITY = 256;
/** What a text value is counted as beyond its bytes (a string's header, the array's slot). */
const STRING_OVERHEAD = 32;

const F8 = 0; const F4 = 1; const I2 = 2; const I4 = 3; const I8 = 4; const BOOL = 5; const TEXT = 6;
const KIND: Record<ColumnType, number> = { float8: F8, float4: F4, int2: I2, int4: I4, int8: I8, timestamptz: I8, bool: BOOL, text: TEXT };

class Group implements RowColumns {
  n = 0;
  capacity = 0;
  time = new Int32Array(0);
  place = new Float64Array(0);
  fields: FieldColumn[] = [];
  /** Bytes of the text values held. */
  textBytes = 0;
  /** A NULL was stored since the group was made or reset (its columns' valid flags are not all 1). */
  nulls = false;
  /** Rows are in time order so far (times compared as two 32-bit halves). */
  ordered = true;
  hi = -Infinity;
  lo = 0;

  constructor(readonly key: string, readonly ingestId: string, readonly tagValues: (string | null)[], private readonly types: readonly ColumnType[]) {
    this.grow(FIRST_CAPACITY);
  }

  grow(capacity: number): void {
    const time = new Int32Array(2 * capacity);
    time.set(this.time.subarray(0, 2 * this.n));
    const place = new Float64Array(capacity);
    place.set(this.place.subarray(0, this.n));
    this.fields = this.types.map((type, f) => {
      const values = storeFor(type, capacity);
      // Rows are valid until a NULL says otherwise (add writes only the NULLs).
      const valid = new Uint8Array(capacity).fill(1);
      const old = this.fields[f];
      if (old) {
        valid.set(old.valid.subarray(0, this.n));
        if (Array.isArray(values)) for (let i = 0; i < this.n; i++) values[i] = (old.values as (string | null)[])[i];
        else if (type === 'int2' || type === 'int4' || type === 'bool') (values as Int16Array | Int32Array | Uint8Array).set(old.values as Int16Array | Int32Array | Uint8Array);
        else wordsOf(values).set(old.words);
      }
      return { values, words: wordsOf(values), valid };
    });
    this.time = time;
    this.place = place;
    this.capacity = capacity;
  }

  /** Empty again, as a new group, its columns kept for the rows to come. */
  reset(): void {
    this.n = 0;
    this.ordered = true;
    this.hi = -Infinity;
    this.lo = 0;
    // Text values went with the segment: their slots are let go.
    for (const f of this.fields) if (Array.isArray(f.values)) f.values.fill(null);
    if (this.nulls) for (const f of this.fields) f.valid.fill(1);
    this.nulls = false;
    this.textBytes = 0;
  }

  /** Row indexes in time order, ties in scan order. */
  order(): Int32Array {
    const idx = new Int32Array(this.n);
    for (let i = 0; i < this.n; i++) idx[i] = i;
    if (this.ordered) return idx;
    const t = this.time;
    return idx.sort((a, b) => t[2 * a + 1] - t[2 * b + 1] || (t[2 * a] >>> 0) - (t[2 * b] >>> 0) || a - b);
  }

  /** Bytes held (the columns with room to grow, and the text values). */
  get size(): number {
    return this.capacity * (16 + this.fields.reduce((a, f) => a + 1 + (Array.isArray(f.values) ? 8 : f.values.BYTES_PER_ELEMENT), 0)) + this.textBytes;
  }
}

/**
 * Takes rows of the COPY column order ["time", ingest_id, ...tags, ...fields] in scan order and
 * emits segments (the builder's row order, with each row's place in the scan, 1-based).
 */
export class RowGrouper {
  private readonly groups = new Map<string, Group>();
  private readonly builder: SegmentBuilder;
  private readonly types: ColumnType[];
  private readonly kinds: Int32Array;
  private readonly tagCount: number;
  private last: Group | null = null;
  private lastKey = new Uint8Array(0);
  /** lastKey's whole 32-bit words, big-endian. */
  private lastWords = new Int32Array(0);
  private place = 0;
  private buffered = 0;

  constructor(tags: StreamColumn[], fields: StreamColumn[], emit: (s: EncodedSegment) => void) {
    this.builder = new SegmentBuilder(tags, fields, emit);
    this.types = fields.map((f) => f.type);
    this.kinds = Int32Array.from(fields, (f) => KIND[f.type]);
    this.tagCount = tags.length;
  }

  /** One tuple of the COPY (offsets and lengths of its fields in buf; −1: NULL). */
  add = (buf: Buffer, off: Int32Array, len: Int32Array): void => {
    const place = ++this.place;
    // The group key as the raw bytes of ingest_id and the tags, lengths included.
    const keyStart = off[1] - 4;
    const keyEnd = off[1 + this.tagCount] + Math.max(0, len[1 + this.tagCount]);
    let g = this.last;
    if (g === null || !this.sameKey(buf, keyStart, keyEnd)) g = this.groupOf(buf, off, len, keyStart, keyEnd);
    if (g.n === g.capacity) {
      const before = g.size;
      g.grow(Math.min(2 * g.capacity, Math.max(g.capacity + 1, SEGMENT_ROWS * Math.ceil((g.n + 1) / SEGMENT_ROWS))));
      this.buffered += g.size - before;
    }
    const i = g.n++;
    const v = viewOf(buf);
    const t = off[0];
    const hi = v.getInt32(t);
    const lo = v.getInt32(t + 4);
    g.time[2 * i] = lo;
    g.time[2 * i + 1] = hi;
    if (hi < g.hi || (hi === g.hi && (lo >>> 0) < g.lo)) g.ordered = false;
    g.hi = hi;
    g.lo = lo >>> 0;
    g.place[i] = place;
    const base = 2 + this.tagCount;
    const kinds = this.kinds;
    const fields = g.fields;
    for (let f = 0; f < kinds.length; f++) {
      const l = len[base + f];
      const col = fields[f];
      if (l < 0) { col.valid[i] = 0; g.nulls = true; continue; }
      const o = off[base + f];
      switch (kinds[f]) {
        case F8: case I8: col.words[2 * i] = v.getInt32(o + 4); col.words[2 * i + 1] = v.getInt32(o); break;
        case F4: col.words[i] = v.getInt32(o); break;
        case I4: (col.values as Int32Array)[i] = v.getInt32(o); break;
        case I2: (col.values as Int16Array)[i] = v.getInt16(o); break;
        case BOOL: (col.values as Uint8Array)[i] = buf[o]; break;
        default: {
          (col.values as (string | null)[])[i] = buf.toString('utf8', o, o + l);
          g.textBytes += l + STRING_OVERHEAD;
          this.buffered += l + STRING_OVERHEAD;
        }
      }
    }
    if (g.ordered && g.n >= SEGMENT_ROWS) this.cut(g, false);
    else if (this.buffered > BUFFER_BYTES) this.cutLargest();
  };

  /** Segments of every group left (the end of the chunk). */
  finish(): void {
    for (const g of [...this.groups.values()]) this.cut(g, true);
  }

  private sameKey(buf: Buffer, start: number, end: number): boolean {
    const k = this.lastKey;
    const n = end - start;
    if (n !== k.length) return false;
    // Four bytes at a time, then the last few.
    const v = viewOf(buf);
    const words = this.lastWords;
    const whole = n & ~3;
    for (let i = 0; i < whole; i += 4) if (v.getInt32(start + i) !== words[i >> 2]) return false;
    for (let i = whole; i < n; i++) if (buf[start + i] !== k[i]) return false;
    return true;
  }

  private groupOf(buf: Buffer, off: Int32Array, len: Int32Array, keyStart: number, keyEnd: number): Group {
    const key = buf.toString('latin1', keyStart, keyEnd);
    let g = this.groups.get(key);
    if (g === undefined) {
      const tagValues: (string | null)[] = [];
      for (let t = 0; t < this.tagCount; t++) tagValues.push(len[2 + t] < 0 ? null : buf.toString('utf8', off[2 + t], off[2 + t] + len[2 + t]));
      g = new Group(key, buf.readBigInt64BE(off[1]).toString(), tagValues, this.types);
      this.groups.set(key, g);
      this.buffered += g.size;
    }
    this.last = g;
    this.lastKey = Uint8Array.from(buf.subarray(keyStart, keyEnd));
    const v = viewOf(buf);
    this.lastWords = Int32Array.from({ length: (keyEnd - keyStart) >> 2 }, (_, j) => v.getInt32(keyStart + 4 * j));
    return g;
  }

  private cutLargest(): void {
    let big: Group | null = null;
    for (const g of this.groups.values()) if (big === null || g.size > big.size) big = g;
    if (big) this.cut(big, true);
  }

  /**
   * The group's rows to the builder, in time order (segments of SEGMENT_ROWS, then the rest).
   * A group cut whole because it filled a segment in order keeps its columns for the rows to
   * come; one cut at the end, or for memory, is dropped.
   */
  private cut(g: Group, drop: boolean): void {
    const before = g.size;
    const idx = g.ordered ? null : g.order();
    for (let from = 0; from < g.n; from += SEGMENT_ROWS) this.builder.build(g, idx, from, Math.min(g.n, from + SEGMENT_ROWS));
    if (drop) {
      this.buffered -= before;
      this.groups.delete(g.key);
      if (this.last === g) this.last = null;
      return;
    }
    g.reset();
    this.buffered -= before - g.size;
    // Placed last among the groups, as a new one: finish emits the groups left in that order.
    this.groups.delete(g.key);
    this.groups.set(g.key, g);
  }
}
