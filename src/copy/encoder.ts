// Encodes column batches straight into PostgreSQL binary COPY tuples. The layouts ingest sees are
// written row by row by code compiled per layout (row-encoder.ts); the rest here.
//
// Here rows are written column by column: first every row's size is summed (so each output buffer
// is allocated once, at its exact size), then each column is written into all rows with a
// per-row cursor. Each loop handles one value layout, which keeps it monomorphic and fast.
// 64-bit values (time, int8) are moved as two int32 halves; no BigInt arithmetic per row.
import { AppError } from '../errors/index.ts';
import type { ColumnBatch, ColumnData, ColumnValues, Validity } from '../domain/types.ts';
import { PG_OFFSET_HI, PG_OFFSET_LO, fixedWidth } from './binary-format.ts';
import { copyBytes, viewWords } from './text-bytes.ts';
import { rowEncoderFor } from './row-encoder.ts';

const TWO32 = 4294967296;

const utf8 = new TextEncoder();

function isValid(v: Validity | null, i: number): boolean {
  if (v === null) return true;
  const bit = v.offset + i;
  return ((v.bitmap[bit >> 3] >> (bit & 7)) & 1) === 1;
}

/** Per-row byte length of a text column's value (−1 for null). */
function textLengths(col: ColumnData, start: number, end: number): Int32Array {
  const n = end - start;
  const out = new Int32Array(n);
  const v = col.values;
  const valid = col.validity;
  switch (v.kind) {
    case 'utf8': {
      const o = v.offsets;
      for (let r = 0; r < n; r++) out[r] = o[start + r + 1] - o[start + r];
      break;
    }
    case 'utf8view': {
      const w = viewWords(v.views);
      for (let r = 0; r < n; r++) out[r] = w[(start + r) * 4];
      break;
    }
    case 'dictionary': {
      const lens = v.entries.map((e) => (e === null || e === undefined ? -1 : e.length));
      const idx = v.indices;
      for (let r = 0; r < n; r++) {
        const l = lens[Number(idx[start + r])];
        out[r] = l === undefined ? -1 : l;
      }
      break;
    }
    case 'strings':
      for (let r = 0; r < n; r++) {
        const s = v.values[start + r];
        out[r] = s === null ? -1 : Buffer.byteLength(s, 'utf8');
      }
      break;
    default: throw new Error(`text column ${col.column.name} has ${v.kind} values`);
  }
  if (valid !== null) for (let r = 0; r < n; r++) if (!isValid(valid, start + r)) out[r] = -1;
  return out;
}

interface Plan {
  /** Byte offset of each row within the slice buffer, plus the total at [n]. */
  rowStart: Int32Array;
  textLens: (Int32Array | null)[];
}

function planSlice(batch: ColumnBatch, start: number, end: number): Plan {
  const n = end - start;
  // int16 field count + time (4+8) + ingest_id (4+8), plus every column that never holds null
  let fixed = 2 + 12 + 12;
  const size = new Int32Array(n);
  const textLens: (Int32Array | null)[] = [];
  for (const col of batch.columns) {
    const width = fixedWidth(col.column.type);
    if (width > 0) {
      textLens.push(null);
      fixed += 4;
      if (col.validity === null) fixed += width;
      else for (let r = 0; r < n; r++) if (isValid(col.validity, start + r)) size[r] += width;
    } else {
      const lens = textLengths(col, start, end);
      textLens.push(lens);
      fixed += 4;
      for (let r = 0; r < n; r++) if (lens[r] > 0) size[r] += lens[r];
    }
  }
  const rowStart = new Int32Array(n + 1);
  for (let r = 0; r < n; r++) rowStart[r + 1] = rowStart[r] + fixed + size[r];
  return { rowStart, textLens };
}

/**
 * Splits a batch into row ranges whose encoded size is about `targetBytes` each, so that COPY
 * data flows in buffers of a steady size whatever the batch size.
 */
export function* sliceRanges(length: number, rowBytesEstimate: number, targetBytes: number): Generator<[number, number]> {
  const rows = Math.max(1, Math.floor(targetBytes / Math.max(1, rowBytesEstimate)));
  for (let s = 0; s < length; s += rows) yield [s, Math.min(length, s + rows)];
}

/** Rough encoded size of one row, for slicing. */
export function estimateRowBytes(batch: ColumnBatch): number {
  let bytes = 26;
  for (const col of batch.columns) bytes += 4 + (fixedWidth(col.column.type) || 16);
  return bytes;
}

/** Encodes rows [start, end) of a batch as binary COPY tuples, into a buffer from `alloc`. */
export function encodeRows(
  batch: ColumnBatch, ingestId: bigint, start: number, end: number,
  alloc: (bytes: number) => Buffer = Buffer.allocUnsafe,
): Buffer {
  const compiled = rowEncoderFor(batch);
  if (compiled !== null) return compiled(batch, ingestId, start, end, alloc);
  return encodeRowsByColumn(batch, ingestId, start, end, alloc);
}

/** encodeRows for every layout: column by column, with a cursor per row. */
export function encodeRowsByColumn(
  batch: ColumnBatch, ingestId: bigint, start: number, end: number,
  alloc: (bytes: number) => Buffer = Buffer.allocUnsafe,
): Buffer {
  const n = end - start;
  const { rowStart, textLens } = planSlice(batch, start, end);
  const buf = alloc(rowStart[n]);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const cursor = new Int32Array(n);
  const fieldCount = 2 + batch.columns.length;

  // field count and time
  const t32 = new Int32Array(batch.time.buffer, batch.time.byteOffset, batch.time.length * 2);
  for (let r = 0; r < n; r++) {
    const p = rowStart[r];
    const i = (start + r) * 2;
    let lo = (t32[i] >>> 0) - PG_OFFSET_LO;
    let hi = t32[i + 1] - PG_OFFSET_HI;
    if (lo < 0) { lo += TWO32; hi -= 1; }
    dv.setInt16(p, fieldCount);
    dv.setInt32(p + 2, 8);
    dv.setInt32(p + 6, hi);
    dv.setUint32(p + 10, lo);
    cursor[r] = p + 14;
  }

  for (let c = 0; c < batch.columns.length; c++) {
    writeColumn(dv, buf, cursor, batch.columns[c], textLens[c], start, n);
  }

  // ingest_id
  const idHi = Number(BigInt.asIntN(32, ingestId >> 32n));
  const idLo = Number(BigInt.asUintN(32, ingestId));
  for (let r = 0; r < n; r++) {
    const p = cursor[r];
    dv.setInt32(p, 8);
    dv.setInt32(p + 4, idHi);
    dv.setUint32(p + 8, idLo);
  }
  return buf;
}

function writeNull(dv: DataView, cursor: Int32Array, r: number): void {
  dv.setInt32(cursor[r], -1);
  cursor[r] += 4;
}

function writeColumn(
  dv: DataView, buf: Buffer, cursor: Int32Array, col: ColumnData,
  lens: Int32Array | null, start: number, n: number,
): void {
  const type = col.column.type;
  const v = col.values;
  const valid = col.validity;
  switch (type) {
    case 'float8': return writeFloat8(dv, cursor, expectNumbers(col), valid, start, n);
    case 'float4': return writeFloat4(dv, cursor, expectNumbers(col), valid, start, n);
    case 'int4': return writeInt4(dv, cursor, expectNumbers(col), valid, start, n);
    case 'int2': return writeInt2(dv, cursor, expectNumbers(col), valid, start, n);
    case 'bool': return writeBool(dv, cursor, v, valid, start, n, col);
    case 'int8':
    case 'timestamptz':
      if (v.kind === 'bigint') return writeInt64(dv, cursor, v.values, valid, start, n, type === 'timestamptz', v.unsigned === true, col);
      if (v.kind === 'number' && type === 'int8') return writeInt64FromNumbers(dv, cursor, v.values, valid, start, n);
      throw new Error(`column ${col.column.name}: ${type} cannot be written from ${v.kind} values`);
    case 'text': return writeText(buf, dv, cursor, col, lens as Int32Array, start, n);
  }
}

function expectNumbers(col: ColumnData): ArrayLike<number> {
  if (col.values.kind !== 'number') throw new Error(`column ${col.column.name}: ${col.column.type} needs number values, got ${col.values.kind}`);
  return col.values.values;
}

function writeFloat8(dv: DataView, cursor: Int32Array, a: ArrayLike<number>, valid: Validity | null, start: number, n: number): void {
  for (let r = 0; r < n; r++) {
    if (!isValid(valid, start + r)) { writeNull(dv, cursor, r); continue; }
    const p = cursor[r];
    dv.setInt32(p, 8);
    dv.setFloat64(p + 4, a[start + r]);
    cursor[r] = p + 12;
  }
}

function writeFloat4(dv: DataView, cursor: Int32Array, a: ArrayLike<number>, valid: Validity | null, start: number, n: number): void {
  for (let r = 0; r < n; r++) {
    if (!isValid(valid, start + r)) { writeNull(dv, cursor, r); continue; }
    const p = cursor[r];
    dv.setInt32(p, 4);
    dv.setFloat32(p + 4, a[start + r]);
    cursor[r] = p + 8;
  }
}

function writeInt4(dv: DataView, cursor: Int32Array, a: ArrayLike<number>, valid: Validity | null, start: number, n: number): void {
  for (let r = 0; r < n; r++) {
    if (!isValid(valid, start + r)) { writeNull(dv, cursor, r); continue; }
    const p = cursor[r];
    dv.setInt32(p, 4);
    dv.setInt32(p + 4, a[start + r]);
    cursor[r] = p + 8;
  }
}

function writeInt2(dv: DataView, cursor: Int32Array, a: ArrayLike<number>, valid: Validity | null, start: number, n: number): void {
  for (let r = 0; r < n; r++) {
    if (!isValid(valid, start + r)) { writeNull(dv, cursor, r); continue; }
    const p = cursor[r];
    dv.setInt32(p, 2);
    dv.setInt16(p + 4, a[start + r]);
    cursor[r] = p + 6;
  }
}

function writeBool(
  dv: DataView, cursor: Int32Array, v: ColumnValues, valid: Validity | null, start: number, n: number, col: ColumnData,
): void {
  for (let r = 0; r < n; r++) {
    const i = start + r;
    if (!isValid(valid, i)) { writeNull(dv, cursor, r); continue; }
    let b: number;
    if (v.kind === 'bits') {
      const bit = v.offset + i;
      b = (v.bitmap[bit >> 3] >> (bit & 7)) & 1;
    } else if (v.kind === 'number') {
      b = v.values[i] !== 0 ? 1 : 0;
    } else {
      throw new Error(`column ${col.column.name}: bool cannot be written from ${v.kind} values`);
    }
    const p = cursor[r];
    dv.setInt32(p, 1);
    dv.setUint8(p + 4, b);
    cursor[r] = p + 5;
  }
}

function writeInt64(
  dv: DataView, cursor: Int32Array, a: BigInt64Array, valid: Validity | null, start: number, n: number,
  toPgEpoch: boolean, unsigned: boolean, col: ColumnData,
): void {
  const w = new Int32Array(a.buffer, a.byteOffset, a.length * 2);
  const offHi = toPgEpoch ? PG_OFFSET_HI : 0;
  const offLo = toPgEpoch ? PG_OFFSET_LO : 0;
  for (let r = 0; r < n; r++) {
    const i = start + r;
    if (!isValid(valid, i)) { writeNull(dv, cursor, r); continue; }
    let lo = (w[2 * i] >>> 0) - offLo;
    let hi = w[2 * i + 1] - offHi;
    if (lo < 0) { lo += TWO32; hi -= 1; }
    if (unsigned && w[2 * i + 1] < 0) {
      throw new AppError(422, 'unsupported_type',
        `column ${JSON.stringify(col.column.name)}: value ${BigInt.asUintN(64, a[i])} at row ${i} exceeds the int8 range (uint64 values must be ≤ 9223372036854775807)`);
    }
    const p = cursor[r];
    dv.setInt32(p, 8);
    dv.setInt32(p + 4, hi);
    dv.setUint32(p + 8, lo);
    cursor[r] = p + 12;
  }
}

function writeInt64FromNumbers(
  dv: DataView, cursor: Int32Array, a: ArrayLike<number>, valid: Validity | null, start: number, n: number,
): void {
  for (let r = 0; r < n; r++) {
    if (!isValid(valid, start + r)) { writeNull(dv, cursor, r); continue; }
    const x = a[start + r];
    const p = cursor[r];
    dv.setInt32(p, 8);
    dv.setInt32(p + 4, Math.floor(x / TWO32));
    dv.setUint32(p + 8, x >>> 0);
    cursor[r] = p + 12;
  }
}

function writeText(buf: Buffer, dv: DataView, cursor: Int32Array, col: ColumnData, lens: Int32Array, start: number, n: number): void {
  const v = col.values;
  const words = v.kind === 'utf8view' ? viewWords(v.views) : null;
  for (let r = 0; r < n; r++) {
    const len = lens[r];
    if (len < 0) { writeNull(dv, cursor, r); continue; }
    const i = start + r;
    const p = cursor[r];
    dv.setInt32(p, len);
    const q = p + 4;
    switch (v.kind) {
      case 'utf8':
        copyBytes(buf, q, v.data, v.offsets[i], len);
        break;
      case 'utf8view':
        if (len <= 12) copyBytes(buf, q, v.views, i * 16 + 4, len);
        else copyBytes(buf, q, v.buffers[(words as Int32Array)[i * 4 + 2]], (words as Int32Array)[i * 4 + 3], len);
        break;
      case 'dictionary': {
        const e = v.entries[Number(v.indices[i])] as Uint8Array;
        copyBytes(buf, q, e, 0, len);
        break;
      }
      case 'strings':
        buf.write(v.values[i] as string, q, len, 'utf8');
        break;
      default:
        throw new Error(`column ${col.column.name}: text cannot be written from ${v.kind} values`);
    }
    cursor[r] = q + len;
  }
}

/** UTF-8 encodes dictionary entries once per batch, so rows copy bytes instead of encoding strings. */
export function encodeDictionaryEntries(values: readonly (string | null)[]): (Uint8Array | null)[] {
  return values.map((s) => (s === null ? null : utf8.encode(s)));
}
