// Reads `COPY (SELECT …) TO STDOUT (FORMAT binary)` and decodes it straight into column buffers:
// typed arrays for numbers and times, offsets plus UTF-8 bytes for text, bit-packed booleans and
// validity, handed on as ColumnBatches (the shape the decoders give the COPY encoder). No value
// is ever a JavaScript string or number on the way unless the output format needs one.
//
// The stream is pulled one socket read at a time, so a slow client slows the COPY (backpressure)
// and memory stays at one batch plus one read.
import type { ColumnBatch, ColumnData, ColumnType, StreamColumn, Validity } from '../domain/types.ts';

/** µs from 1970-01-01 to PostgreSQL's epoch 2000-01-01, split in 32-bit halves for carry arithmetic. */
const PG_EPOCH_US = 946_684_800_000_000;
const EPOCH_LO = PG_EPOCH_US % 2 ** 32;
const EPOCH_HI = Math.floor(PG_EPOCH_US / 2 ** 32);
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** Column kinds, as small integers: the decoding loop switches on them for every value. */
const enum Kind { Micros, Int8, Float8, Float4, Int2, Int4, Bool, Text }

const KIND: Record<ColumnType | 'time', Kind> = {
  time: Kind.Micros, timestamptz: Kind.Micros, int8: Kind.Int8, float8: Kind.Float8, float4: Kind.Float4,
  int2: Kind.Int2, int4: Kind.Int4, bool: Kind.Bool, text: Kind.Text,
};

/**
 * One column's buffers. Every builder has every property, set in the same order, so that the
 * decoding loop sees one object shape.
 */
interface Builder {
  column: StreamColumn | null;
  kind: Kind;
  rows: number;
  /** 8-byte values (time, timestamptz, int8) as pairs of int32 words, little-endian. */
  words: Int32Array | null;
  f8: Float64Array | null;
  f4: Float32Array | null;
  i2: Int16Array | null;
  i4: Int32Array | null;
  bits: Uint8Array | null;
  offsets: Int32Array | null;
  text: Uint8Array | null;
  textBytes: number;
  nulls: Uint8Array | null;
}

function builder(column: StreamColumn | null, type: ColumnType | 'time', capacity: number): Builder {
  const kind = KIND[type];
  return {
    column, kind, rows: 0,
    words: kind === Kind.Micros || kind === Kind.Int8 ? new Int32Array(capacity * 2) : null,
    f8: kind === Kind.Float8 ? new Float64Array(capacity) : null,
    f4: kind === Kind.Float4 ? new Float32Array(capacity) : null,
    i2: kind === Kind.Int2 ? new Int16Array(capacity) : null,
    i4: kind === Kind.Int4 ? new Int32Array(capacity) : null,
    bits: kind === Kind.Bool ? new Uint8Array(Math.ceil(capacity / 8)) : null,
    offsets: kind === Kind.Text ? new Int32Array(capacity + 1) : null,
    text: kind === Kind.Text ? new Uint8Array(64 * 1024) : null,
    textBytes: 0,
    nulls: null,
  };
}

/** Decodes the binary COPY stream of a SELECT whose first column is `time` and the rest `columns`. */
export class CopyBatchDecoder {
  private pending: Buffer | null = null;
  private headerDone = false;
  private ended = false;
  private builders: Builder[] = [];

  constructor(private readonly columns: readonly StreamColumn[], private readonly batchRows = 65_536) {
    this.reset();
  }

  private reset(): void {
    this.builders = [builder(null, 'time', this.batchRows), ...this.columns.map((c) => builder(c, c.type, this.batchRows))];
  }

  get rows(): number {
    return this.builders[0].rows;
  }

  /** Decodes what `chunk` completes; returns the batches that filled up. */
  push(chunk: Buffer): ColumnBatch[] {
    let buf = chunk;
    if (this.pending) { buf = Buffer.concat([this.pending, chunk]); this.pending = null; }
    let pos = 0;
    if (!this.headerDone) {
      if (buf.length < 19) { this.pending = buf; return []; }
      if (!buf.subarray(0, 11).equals(SIGNATURE)) throw new Error('not a binary COPY stream (bad signature)');
      pos = 19 + buf.readInt32BE(15);
      this.headerDone = true;
    }
    const out: ColumnBatch[] = [];
    const width = this.builders.length;
    // DataView reads are inlined by V8; Buffer's readDoubleBE goes through a byte copy.
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    while (pos + 2 <= buf.length) {
      const count = view.getInt16(pos);
      if (count === -1) { this.ended = true; pos += 2; break; }
      if (count !== width) throw new Error(`binary COPY row has ${count} fields, expected ${width}`);
      // The whole tuple must be here before any of it is decoded.
      let end = pos + 2;
      let complete = true;
      for (let i = 0; i < width; i++) {
        if (end + 4 > buf.length) { complete = false; break; }
        const len = view.getInt32(end);
        end += 4 + (len > 0 ? len : 0);
        if (end > buf.length) { complete = false; break; }
      }
      if (!complete) break;
      this.decodeTuple(buf, view, pos + 2);
      pos = end;
      if (this.builders[0].rows === this.batchRows) { out.push(this.take()); }
    }
    if (pos < buf.length && !this.ended) this.pending = buf.subarray(pos);
    return out;
  }

  /** The rows decoded since the last full batch, if any; checks the stream ended properly. */
  finish(): ColumnBatch | null {
    if (!this.ended) throw new Error('binary COPY stream ended without its trailer');
    return this.builders[0].rows > 0 ? this.take() : null;
  }

  private decodeTuple(buf: Buffer, view: DataView, start: number): void {
    let p = start;
    const builders = this.builders;
    for (let i = 0; i < builders.length; i++) {
      const b = builders[i];
      const len = view.getInt32(p);
      p += 4;
      const r = b.rows++;
      if (len === -1) {
        b.nulls ??= new Uint8Array(Math.ceil(this.batchRows / 8));
        b.nulls[r >> 3] |= 1 << (r & 7);
        if (b.offsets !== null) b.offsets[r + 1] = b.textBytes;
        continue;
      }
      switch (b.kind) {
        case Kind.Micros: {
          // PostgreSQL's µs since 2000 → µs since 1970, as 64-bit addition on 32-bit halves.
          const hi = view.getInt32(p);
          const lo = view.getUint32(p + 4);
          const sum = lo + EPOCH_LO;
          const words = b.words as Int32Array;
          words[2 * r] = sum | 0;
          words[2 * r + 1] = hi + EPOCH_HI + (sum >= 4294967296 ? 1 : 0);
          break;
        }
        case Kind.Int8: {
          const words = b.words as Int32Array;
          words[2 * r] = view.getInt32(p + 4);
          words[2 * r + 1] = view.getInt32(p);
          break;
        }
        case Kind.Float8: (b.f8 as Float64Array)[r] = view.getFloat64(p); break;
        case Kind.Float4: (b.f4 as Float32Array)[r] = view.getFloat32(p); break;
        case Kind.Int2: (b.i2 as Int16Array)[r] = view.getInt16(p); break;
        case Kind.Int4: (b.i4 as Int32Array)[r] = view.getInt32(p); break;
        case Kind.Bool: if (buf[p] !== 0) (b.bits as Uint8Array)[r >> 3] |= 1 << (r & 7); break;
        default: {
          let text = b.text as Uint8Array;
          if (b.textBytes + len > text.length) {
            const grown = new Uint8Array(Math.max(text.length * 2, b.textBytes + len));
            grown.set(text.subarray(0, b.textBytes));
            b.text = text = grown;
          }
          if (len <= 32) for (let k = 0; k < len; k++) text[b.textBytes + k] = buf[p + k];
          else text.set(buf.subarray(p, p + len), b.textBytes);
          b.textBytes += len;
          (b.offsets as Int32Array)[r + 1] = b.textBytes;
        }
      }
      p += len;
    }
  }

  private take(): ColumnBatch {
    const [timeB, ...rest] = this.builders;
    const n = timeB.rows;
    const time = new BigInt64Array((timeB.words as Int32Array).buffer, 0, n);
    const columns: ColumnData[] = rest.map((b) => ({ column: b.column as StreamColumn, values: valuesOf(b, n), validity: validityOf(b) }));
    this.reset();
    // Rows come ordered by time, so the extremes are the first and last.
    return { length: n, time, minTime: time[0], maxTime: time[n - 1], columns };
  }
}

function validityOf(b: Builder): Validity | null {
  if (!b.nulls) return null;
  // The builder marks nulls; Arrow's validity marks values.
  const bitmap = b.nulls;
  for (let i = 0; i < bitmap.length; i++) bitmap[i] = ~bitmap[i];
  return { bitmap, offset: 0 };
}

function valuesOf(b: Builder, n: number): ColumnData['values'] {
  switch (b.kind) {
    case Kind.Micros: case Kind.Int8: return { kind: 'bigint', values: new BigInt64Array((b.words as Int32Array).buffer, 0, n) };
    case Kind.Bool: return { kind: 'bits', bitmap: b.bits as Uint8Array, offset: 0 };
    case Kind.Text: return { kind: 'utf8', offsets: (b.offsets as Int32Array).subarray(0, n + 1), data: (b.text as Uint8Array).subarray(0, b.textBytes) };
    case Kind.Float8: return { kind: 'number', values: (b.f8 as Float64Array).subarray(0, n) };
    case Kind.Float4: return { kind: 'number', values: (b.f4 as Float32Array).subarray(0, n) };
    case Kind.Int2: return { kind: 'number', values: (b.i2 as Int16Array).subarray(0, n) };
    default: return { kind: 'number', values: (b.i4 as Int32Array).subarray(0, n) };
  }
}

/** Decodes a binary COPY byte stream into batches, pulling one chunk at a time. */
export async function* decodeCopyStream(source: AsyncIterable<Buffer>, columns: readonly StreamColumn[], batchRows?: number): AsyncGenerator<ColumnBatch> {
  const decoder = new CopyBatchDecoder(columns, batchRows);
  for await (const chunk of source) yield* decoder.push(chunk);
  const last = decoder.finish();
  if (last) yield last;
}
