// Binary COPY tuples written value by value, for rows that are few and made one at a time (the
// pending rows of rollups, for instance); column batches go through encoder.ts instead. Each
// value is the int32 length (−1 for NULL) and PostgreSQL's binary representation of the type;
// CopyStream adds the COPY header and trailer.
import { PG_EPOCH_OFFSET_US } from './binary-format.ts';

const NUMERIC_POS = 0x0000;
const NUMERIC_NEG = 0x4000;
const NBASE = 10_000n;

export class TupleWriter {
  private buf: Buffer;
  private at = 0;
  rows = 0;

  constructor(initialBytes = 1 << 16) {
    this.buf = Buffer.allocUnsafe(Math.max(64, initialBytes));
  }

  private room(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + bytes));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  /** Starts a tuple of `fields` values. */
  row(fields: number): this {
    this.room(2);
    this.buf.writeInt16BE(fields, this.at);
    this.at += 2;
    this.rows++;
    return this;
  }

  null(): this {
    this.room(4);
    this.buf.writeInt32BE(-1, this.at);
    this.at += 4;
    return this;
  }

  /** int8 from a bigint, or from a number that is an integer within ±2^53 (written as two halves, no BigInt made). */
  int8(x: bigint | number): this {
    this.room(12);
    const b = this.buf;
    b.writeInt32BE(8, this.at);
    if (typeof x === 'bigint') b.writeBigInt64BE(x, this.at + 4);
    else {
      const hi = Math.floor(x / 4294967296);
      b.writeInt32BE(hi, this.at + 4);
      b.writeUInt32BE(x - hi * 4294967296, this.at + 8);
    }
    this.at += 12;
    return this;
  }

  float8(x: number): this {
    this.room(12);
    this.buf.writeInt32BE(8, this.at);
    this.buf.writeDoubleBE(x, this.at + 4);
    this.at += 12;
    return this;
  }

  bool(x: boolean): this {
    this.room(5);
    this.buf.writeInt32BE(1, this.at);
    this.buf[this.at + 4] = x ? 1 : 0;
    this.at += 5;
    return this;
  }

  /** timestamptz from µs since the Unix epoch. */
  timestamptz(us: bigint): this {
    return this.int8(us - PG_EPOCH_OFFSET_US);
  }

  text(s: string): this {
    const len = Buffer.byteLength(s, 'utf8');
    this.room(4 + len);
    this.buf.writeInt32BE(len, this.at);
    this.buf.write(s, this.at + 4, len, 'utf8');
    this.at += 4 + len;
    return this;
  }

  /** numeric from an integer: base-10,000 digits, most significant first, no fraction. */
  numeric(x: bigint): this {
    const digits: number[] = [];
    let v = x < 0n ? -x : x;
    while (v > 0n) {
      digits.push(Number(v % NBASE));
      v /= NBASE;
    }
    const weight = digits.length - 1;
    // Trailing zero digits (the least significant) may be left out; weight keeps the scale.
    let low = 0;
    while (low < digits.length && digits[low] === 0) low++;
    const kept = digits.length - low;
    this.room(4 + 8 + 2 * kept);
    const b = this.buf;
    b.writeInt32BE(8 + 2 * kept, this.at);
    b.writeInt16BE(kept, this.at + 4);
    b.writeInt16BE(kept === 0 ? 0 : weight, this.at + 6);
    b.writeUInt16BE(x < 0n ? NUMERIC_NEG : NUMERIC_POS, this.at + 8);
    b.writeInt16BE(0, this.at + 10);
    for (let k = 0; k < kept; k++) b.writeInt16BE(digits[digits.length - 1 - k], this.at + 12 + 2 * k);
    this.at += 12 + 2 * kept;
    return this;
  }

  /** The tuples written so far (CopyStream adds the header and trailer). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}
