// One column of a segment as bytes: a null bitmap (or a flag saying there are no NULLs / only
// NULLs), then the non-NULL values with the codec for the column's type — floats (floats.ts),
// integers and times (ints.ts), booleans as a bitmap, text as lengths plus LZ4-compressed UTF-8.
import { compressSync, uncompressSync } from 'lz4-napi';
import type { ColumnType, ColumnValues, Validity } from '../../domain/types.ts';
import { ByteReader, ByteWriter, CorruptSegment } from './bytes.ts';
import { decodeFloats, encodeFloats } from './floats.ts';
import { decodeBigInts, decodeInts, encodeBigInts, encodeInts } from './ints.ts';

const NO_NULLS = 0;
const SOME_NULLS = 1;
const ALL_NULL = 2;
/**
 * Since format 3, a boolean column's flag byte may carry these bits: its values are the positions
 * of the rows that hold the rarer value (true, or false with INVERTED), as integers (ints.ts)
 * instead of a bitmap, when that is smaller (a flag set on one row in twenty: 0.04 bytes a row
 * instead of 0.125).
 */
const POSITIONS = 0x10;
const INVERTED = 0x20;

/** A column's values in memory, one slot per row (the slot of a NULL holds anything). */
export type PlainValues =
  | { kind: 'number'; values: Float64Array | Float32Array | Int16Array | Int32Array }
  | { kind: 'bigint'; values: BigInt64Array }
  | { kind: 'bits'; bitmap: Uint8Array; offset: number }
  | { kind: 'strings'; values: readonly (string | null)[] };

export const isValid = (v: Validity | null, i: number): boolean =>
  v === null || ((v.bitmap[(v.offset + i) >> 3] >> ((v.offset + i) & 7)) & 1) === 1;

const bit = (map: Uint8Array, i: number): boolean => ((map[i >> 3] >> (i & 7)) & 1) === 1;

function compact<T extends { length: number; [i: number]: unknown }>(arr: T, keep: number[], make: (n: number) => T): T {
  const out = make(keep.length);
  for (let k = 0; k < keep.length; k++) out[k] = arr[keep[k]];
  return out;
}

export function encodeColumn(type: ColumnType, data: PlainValues, validity: Validity | null, n: number): Uint8Array {
  const w = new ByteWriter();
  let rows: number[] | null = null;
  if (validity !== null) {
    const bitmap = new Uint8Array(Math.ceil(n / 8));
    rows = [];
    for (let i = 0; i < n; i++) if (isValid(validity, i)) { rows.push(i); bitmap[i >> 3] |= 1 << (i & 7); }
    if (rows.length === 0) { w.u8(ALL_NULL); return w.finish(); }
    if (rows.length === n) rows = null;
    else { w.u8(SOME_NULLS); w.bytes(bitmap); }
  }
  if (rows === null) w.u8(NO_NULLS);
  const keep = rows;
  const m = keep ? keep.length : n;
  switch (data.kind) {
    case 'number': {
      const v = data.values;
      if (type === 'float8' || type === 'float4') {
        const arr = v as Float64Array | Float32Array;
        encodeFloats(w, keep ? compact(arr, keep, (k) => (arr instanceof Float32Array ? new Float32Array(k) : new Float64Array(k))) : arr);
      } else {
        encodeInts(w, keep ? Array.from(keep, (i) => v[i]) : v);
      }
      break;
    }
    case 'bigint':
      encodeBigInts(w, keep ? compact(data.values, keep, (k) => new BigInt64Array(k)) : data.values);
      break;
    case 'bits': {
      const bits = new Uint8Array(Math.ceil(m / 8));
      let set = 0;
      for (let k = 0; k < m; k++) {
        const i = keep ? keep[k] : k;
        if (bit(data.bitmap, data.offset + i)) { bits[k >> 3] |= 1 << (k & 7); set++; }
      }
      const positions = boolPositions(bits, m, set * 2 > m);
      if (positions !== null && positions.length < bits.length) {
        const out = w.finish();
        out[0] |= POSITIONS | (set * 2 > m ? INVERTED : 0);
        const pw = new ByteWriter();
        pw.bytes(out);
        pw.bytes(positions);
        return pw.finish();
      }
      w.bytes(bits);
      break;
    }
    case 'strings': {
      const enc = new TextEncoder();
      const parts = Array.from({ length: m }, (_, k) => enc.encode(data.values[keep ? keep[k] : k] ?? ''));
      encodeInts(w, parts.map((p) => p.length));
      w.block(compressSync(Buffer.concat(parts)));
      break;
    }
  }
  return w.finish();
}

/** The rows holding true (or false when `inverted`) as a count and their positions; null if not sparse. */
function boolPositions(bits: Uint8Array, m: number, inverted: boolean): Uint8Array | null {
  const rows: number[] = [];
  for (let k = 0; k < m; k++) {
    if (bit(bits, k) !== inverted) rows.push(k);
    if (rows.length * 4 > m) return null;
  }
  const w = new ByteWriter();
  w.varint(rows.length);
  if (rows.length > 0) encodeInts(w, rows);
  return w.finish();
}

function decodeBoolPositions(r: ByteReader, m: number, inverted: boolean): Uint8Array {
  const bits = new Uint8Array(Math.ceil(m / 8));
  if (inverted) { bits.fill(0xff); if (m % 8) bits[bits.length - 1] = (1 << (m % 8)) - 1; }
  const count = r.varint();
  if (count > m) throw new CorruptSegment(`${count} boolean positions of ${m} rows`);
  const rows = count > 0 ? decodeInts(r, count) : new Float64Array(0);
  for (const k of rows) {
    if (!(k >= 0 && k < m)) throw new CorruptSegment(`boolean position ${k} of ${m} rows`);
    bits[k >> 3] ^= 1 << (k & 7);
  }
  return bits;
}

export interface DecodedColumn {
  values: ColumnValues;
  validity: Validity | null;
}

function expand<T extends { length: number; [i: number]: unknown }>(compacted: T, bitmap: Uint8Array, n: number, make: (n: number) => T): T {
  const out = make(n);
  let k = 0;
  for (let i = 0; i < n; i++) if (bit(bitmap, i)) out[i] = compacted[k++];
  return out;
}

function makeNumbers(type: ColumnType, n: number): Float64Array | Float32Array | Int16Array | Int32Array {
  switch (type) {
    case 'float4': return new Float32Array(n);
    case 'int2': return new Int16Array(n);
    case 'int4': return new Int32Array(n);
    default: return new Float64Array(n);
  }
}

export function decodeColumn(type: ColumnType, bytes: Uint8Array | null, n: number): DecodedColumn {
  const r = new ByteReader(bytes ?? new Uint8Array([ALL_NULL]));
  const flagByte = r.u8();
  const flag = type === 'bool' ? flagByte & 0x0f : flagByte;
  if (flag === ALL_NULL) return { values: emptyValues(type, n), validity: { bitmap: new Uint8Array(Math.ceil(n / 8)), offset: 0 } };
  if (flag !== NO_NULLS && flag !== SOME_NULLS) throw new CorruptSegment(`null flag ${flag}`);
  let bitmap: Uint8Array | null = null;
  let m = n;
  if (flag === SOME_NULLS) {
    bitmap = r.bytes(Math.ceil(n / 8)).slice();
    m = 0;
    for (let i = 0; i < n; i++) if (bit(bitmap, i)) m++;
  }
  const validity = bitmap ? { bitmap, offset: 0 } : null;
  switch (type) {
    case 'float8': case 'float4': {
      const v = decodeFloats(r, m, type === 'float4');
      return { values: { kind: 'number', values: bitmap ? expand(v, bitmap, n, (k) => makeNumbers(type, k) as typeof v) : v }, validity };
    }
    case 'int2': case 'int4': {
      const raw = decodeInts(r, m);
      const v = makeNumbers(type, m);
      v.set(raw);
      return { values: { kind: 'number', values: bitmap ? expand(v, bitmap, n, (k) => makeNumbers(type, k) as typeof v) : v }, validity };
    }
    case 'int8': case 'timestamptz': {
      const v = decodeBigInts(r, m);
      return { values: { kind: 'bigint', values: bitmap ? expand(v, bitmap, n, (k) => new BigInt64Array(k)) : v }, validity };
    }
    case 'bool': {
      const bits = flagByte & POSITIONS ? decodeBoolPositions(r, m, (flagByte & INVERTED) !== 0) : r.bytes(Math.ceil(m / 8));
      if (!bitmap) return { values: { kind: 'bits', bitmap: bits.slice(), offset: 0 }, validity };
      const out = new Uint8Array(Math.ceil(n / 8));
      let k = 0;
      for (let i = 0; i < n; i++) if (bit(bitmap, i)) { if (bit(bits, k)) out[i >> 3] |= 1 << (i & 7); k++; }
      return { values: { kind: 'bits', bitmap: out, offset: 0 }, validity };
    }
    case 'text': {
      const lengths = decodeInts(r, m);
      const data = uncompressSync(r.block());
      const dec = new TextDecoder();
      const values: (string | null)[] = new Array(n).fill(null);
      let pos = 0;
      let k = 0;
      for (let i = 0; i < n; i++) {
        if (bitmap && !bit(bitmap, i)) continue;
        const len = lengths[k++];
        if (pos + len > data.length) throw new CorruptSegment(`text runs past its ${data.length} bytes`);
        values[i] = dec.decode(data.subarray(pos, pos + len));
        pos += len;
      }
      return { values: { kind: 'strings', values }, validity };
    }
  }
}

function emptyValues(type: ColumnType, n: number): ColumnValues {
  switch (type) {
    case 'int8': case 'timestamptz': return { kind: 'bigint', values: new BigInt64Array(n) };
    case 'bool': return { kind: 'bits', bitmap: new Uint8Array(Math.ceil(n / 8)), offset: 0 };
    case 'text': return { kind: 'strings', values: new Array<string | null>(n).fill(null) };
    default: return { kind: 'number', values: makeNumbers(type, n) };
  }
}
