// Reads the rows of `COPY (…) TO STDOUT (FORMAT binary)` as they stream in: each tuple is handed
// over as the offsets and lengths of its fields in a buffer (−1: NULL), so that values are copied
// bit for bit (NaN payloads, −0) into typed arrays without going through text. Tuples are read
// where they lie in the pieces the stream hands over; only a tuple cut between two pieces is
// copied, joined with as much of the next piece as it needs.
import { COPY_SIGNATURE } from '../copy/binary-format.ts';

export type TupleSink = (buf: Buffer, offsets: Int32Array, lengths: Int32Array) => void;

/** Bytes of the next piece first joined to a cut tuple (more when the tuple is longer). */
const JOIN_BYTES = 4096;
const EMPTY = Buffer.alloc(0);

let viewed: Buffer | null = null;
let view: DataView = new DataView(new ArrayBuffer(0));

/**
 * A DataView of buf, made once for each buffer the rows come in (the parser and the grouper read
 * the same pieces): big-endian reads of 16 and 32 bits, one load each.
 */
export function viewOf(buf: Buffer): DataView {
  if (buf !== viewed) {
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    viewed = buf;
  }
  return view;
}

export class CopyRowParser {
  private pending: Buffer = EMPTY;
  private headerDone = false;
  private readonly offsets: Int32Array;
  private readonly lengths: Int32Array;
  done = false;

  constructor(private readonly fields: number, private readonly sink: TupleSink) {
    this.offsets = new Int32Array(fields);
    this.lengths = new Int32Array(fields);
  }

  /** Bytes start … end of chunk (the whole of it when not given), the next of the COPY's. */
  push(chunk: Buffer, start = 0, end = chunk.length): void {
    let pos = start;
    if (this.pending.length > 0) {
      // The cut tuple (or header) first: it needs some bytes of this piece, rarely many.
      const pending = this.pending;
      for (let take = Math.min(end - start, Math.max(JOIN_BYTES, pending.length)); ; take = Math.min(end - start, take * 4)) {
        const joined = Buffer.concat([pending, chunk.subarray(start, start + take)]);
        const after = this.parse(joined, 0, joined.length, true);
        if (after > pending.length) { pos = start + after - pending.length; break; }
        if (take === end - start) { this.pending = Buffer.from(joined.subarray(after)); return; }
      }
    }
    const after = this.parse(chunk, pos, end, false);
    this.pending = after < end ? Buffer.from(chunk.subarray(after, end)) : EMPTY;
  }

  /** Hands over the whole tuples of buf from start to end (only the first when `one`); the position after them. */
  private parse(buf: Buffer, start: number, end: number, one: boolean): number {
    let pos = start;
    if (!this.headerDone) {
      if (end - pos < 19) return pos;
      if (!buf.subarray(pos, pos + 11).equals(COPY_SIGNATURE)) throw new Error('cannot read COPY rows: bad signature');
      const header = 19 + buf.readUInt32BE(pos + 15);
      if (end - pos < header) return pos;
      pos += header;
      this.headerDone = true;
    }
    const v = viewOf(buf);
    while (!this.done && pos + 2 <= end) {
      const n = v.getInt16(pos);
      if (n === -1) { this.done = true; pos += 2; break; }
      if (n !== this.fields) throw new Error(`cannot read COPY rows: ${n} fields, expected ${this.fields}`);
      let p = pos + 2;
      let complete = true;
      for (let i = 0; i < n; i++) {
        if (p + 4 > end) { complete = false; break; }
        const len = v.getInt32(p);
        p += 4;
        if (len > 0 && p + len > end) { complete = false; break; }
        this.offsets[i] = p;
        this.lengths[i] = len;
        if (len > 0) p += len;
      }
      if (!complete) break;
      this.sink(buf, this.offsets, this.lengths);
      pos = p;
      if (one) break;
    }
    return pos;
  }
}
