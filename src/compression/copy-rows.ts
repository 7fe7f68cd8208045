// Reads the rows of `COPY (…) TO STDOUT (FORMAT binary)` as they stream in: each tuple is handed
// over as the offsets and lengths of its fields in a buffer (−1: NULL), so that values are copied
// bit for bit (NaN payloads, −0) into typed arrays without going through text.
import { COPY_SIGNATURE } from '../copy/binary-format.ts';

export type TupleSink = (buf: Buffer, offsets: Int32Array, lengths: Int32Array) => void;

export class CopyRowParser {
  private pending: Buffer = Buffer.alloc(0);
  private headerDone = false;
  private readonly offsets: Int32Array;
  private readonly lengths: Int32Array;
  done = false;

  constructor(private readonly fields: number, private readonly sink: TupleSink) {
    this.offsets = new Int32Array(fields);
    this.lengths = new Int32Array(fields);
  }

  push(chunk: Buffer): void {
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let pos = 0;
    if (!this.headerDone) {
      if (buf.length < 19) { this.pending = buf; return; }
      if (!buf.subarray(0, 11).equals(COPY_SIGNATURE)) throw new Error('cannot read COPY rows: bad signature');
      pos = 19 + buf.readUInt32BE(15);
      this.headerDone = true;
    }
    while (pos + 2 <= buf.length) {
      const n = buf.readInt16BE(pos);
      if (n === -1) { this.done = true; pos += 2; break; }
      if (n !== this.fields) throw new Error(`cannot read COPY rows: ${n} fields, expected ${this.fields}`);
      let p = pos + 2;
      let complete = true;
      for (let i = 0; i < n; i++) {
        if (p + 4 > buf.length) { complete = false; break; }
        const len = buf.readInt32BE(p);
        p += 4;
        if (len > 0 && p + len > buf.length) { complete = false; break; }
        this.offsets[i] = p;
        this.lengths[i] = len;
        if (len > 0) p += len;
      }
      if (!complete) break;
      this.sink(buf, this.offsets, this.lengths);
      pos = p;
    }
    this.pending = pos < buf.length ? Buffer.from(buf.subarray(pos)) : Buffer.alloc(0);
  }
}
