// Groups a chunk's rows, as a scan of its table returns them, into segments without a sort in
// PostgreSQL (sorting a chunk of millions of rows by tag set, ingest and time cost PostgreSQL more
// than the whole rest of the conversion). Each row's tuple (its COPY bytes, with its place in the
// scan appended as one more field) is kept in a buffer of its group — its tag set and ingest —
// until the group holds a whole segment's rows in time order, which then go to the segment
// builder; a group whose rows came out of time order waits for the end and is sorted by time
// (ties in scan order) first. Past BUFFER_BYTES of kept tuples the largest group is cut into
// segments early, so memory stays bounded whatever the chunk holds (a chunk of very many
// interleaved tag sets then gets segments shorter than SEGMENT_ROWS).
import { SEGMENT_ROWS, SegmentBuilder, type EncodedSegment } from './segment.ts';
import type { StreamColumn } from '../domain/types.ts';

/** Tuples kept across all groups before the largest is cut early. */
export const BUFFER_BYTES = 96 * 1024 * 1024;
const FIRST_CAPACITY = 64 * 1024;

class Group {
  constructor(readonly key: string) {}
  buf: Buffer = Buffer.allocUnsafe(FIRST_CAPACITY);
  used = 0;
  starts = new Int32Array(256);
  n = 0;
  /** Rows are in time order so far (times compared as two 32-bit halves). */
  ordered = true;
  private hi = -Infinity;
  private lo = 0;

  append(src: Buffer, start: number, end: number, fields: number, place: number, timeAt: number): void {
    const len = end - start + 12;
    if (this.used + len > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.used + len));
      this.buf.copy(grown, 0, 0, this.used);
      this.buf = grown;
    }
    if (this.n === this.starts.length) {
      const grown = new Int32Array(this.starts.length * 2);
      grown.set(this.starts);
      this.starts = grown;
    }
    const at = this.used;
    this.starts[this.n++] = at;
    src.copy(this.buf, at, start, end);
    this.buf.writeInt16BE(fields + 1, at);
    this.buf.writeInt32BE(8, at + end - start);
    // The place, as int8: below 2^53.
    this.buf.writeInt32BE(Math.floor(place / 0x1_0000_0000), at + end - start + 4);
    this.buf.writeUInt32BE(place >>> 0, at + end - start + 8);
    this.used += len;
    const hi = src.readInt32BE(timeAt);
    const lo = src.readUInt32BE(timeAt + 4);
    if (hi < this.hi || (hi === this.hi && lo < this.lo)) this.ordered = false;
    this.hi = hi;
    this.lo = lo;
  }

  /** Row indexes in time order, ties in scan order. */
  order(): Int32Array {
    const idx = new Int32Array(this.n);
    for (let i = 0; i < this.n; i++) idx[i] = i;
    if (this.ordered) return idx;
    // The time is the first field: after the field count (2) and its length (4).
    const buf = this.buf;
    const starts = this.starts;
    const hi = (i: number): number => buf.readInt32BE(starts[i] + 6);
    const lo = (i: number): number => buf.readUInt32BE(starts[i] + 10);
    return idx.sort((a, b) => hi(a) - hi(b) || lo(a) - lo(b) || a - b);
  }

  /** Bytes held (kept tuples and their offsets, with room to grow). */
  get size(): number {
    return this.buf.length + this.starts.byteLength;
  }
}

/**
 * Takes rows of the COPY column order ["time", ingest_id, ...tags, ...fields] in scan order and
 * emits segments (the builder's row order, with each row's place in the scan, 1-based, appended).
 */
export class RowGrouper {
  private readonly groups = new Map<string, Group>();
  private readonly builder: SegmentBuilder;
  private readonly fields: number;
  private readonly keyField: number;
  private last: Group | null = null;
  private lastKey: Buffer = Buffer.alloc(0);
  private place = 0;
  private buffered = 0;
  private readonly off: Int32Array;
  private readonly len: Int32Array;

  constructor(tags: StreamColumn[], fields: StreamColumn[], emit: (s: EncodedSegment) => void) {
    this.builder = new SegmentBuilder(tags, fields, emit);
    this.fields = 2 + tags.length + fields.length;
    this.keyField = 1 + tags.length;
    this.off = new Int32Array(this.fields + 1);
    this.len = new Int32Array(this.fields + 1);
  }

  /** One tuple of the COPY (offsets and lengths of its fields in buf; −1: NULL). */
  add = (buf: Buffer, off: Int32Array, len: Int32Array): void => {
    const place = ++this.place;
    // The group key as the raw bytes of ingest_id and the tags, lengths included.
    const keyStart = off[1] - 4;
    const keyEnd = off[this.keyField] + Math.max(0, len[this.keyField]);
    let g = this.last;
    if (g === null || buf.compare(this.lastKey, 0, this.lastKey.length, keyStart, keyEnd) !== 0) {
      const key = buf.toString('latin1', keyStart, keyEnd);
      g = this.groups.get(key) ?? null;
      if (g === null) {
        this.groups.set(key, (g = new Group(key)));
        this.buffered += g.size;
      }
      this.last = g;
      this.lastKey = Buffer.from(buf.subarray(keyStart, keyEnd));
    }
    const last = this.fields - 1;
    const start = off[0] - 6;
    const end = off[last] + Math.max(0, len[last]);
    const before = g.size;
    g.append(buf, start, end, this.fields, place, off[0]);
    this.buffered += g.size - before;
    if (g.ordered && g.n >= SEGMENT_ROWS) this.cut(g);
    else if (this.buffered > BUFFER_BYTES) this.cutLargest();
  };

  /** Segments of every group left (the end of the chunk). */
  finish(): void {
    for (const g of [...this.groups.values()]) this.cut(g);
  }

  private cutLargest(): void {
    let big: Group | null = null;
    for (const g of this.groups.values()) if (big === null || g.size > big.size) big = g;
    if (big) this.cut(big);
  }

  /** The group's rows to the builder, in time order (segments of SEGMENT_ROWS, then the rest); the group is dropped. */
  private cut(g: Group): void {
    const buf = g.buf;
    const off = this.off;
    const len = this.len;
    const n = this.fields + 1;
    for (const i of g.order()) {
      let p = g.starts[i] + 2;
      for (let f = 0; f < n; f++) {
        const l = buf.readInt32BE(p);
        p += 4;
        off[f] = p;
        len[f] = l;
        if (l > 0) p += l;
      }
      this.builder.add(buf, off, len);
    }
    this.builder.flush();
    this.buffered -= g.size;
    this.groups.delete(g.key);
    if (this.last === g) this.last = null;
  }
}
