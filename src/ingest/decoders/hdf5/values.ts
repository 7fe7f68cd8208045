// HDF5 element types to stream column types, and slices of values to wire columns:
//
//   float32 → float4   float64 → float8          NaN stays NaN; what missing.ts names → NULL
//   int8, uint8, int16 → int2   uint16, int32 → int4   uint32, int64 → int8   uint64 → int8 (≤ 2^63−1)
//   CF packed integers (scale_factor / add_offset) → float8, unpacked after the fill check
//   enum {FALSE, TRUE} (h5py bool), 1-byte bitfield (PyTables BoolCol) → bool
//   other enums → text (the member's label)    fixed and vlen strings → text
//   references, opaque, arrays, nested compounds, vlen sequences → not stored
import type { Metadata } from 'h5wasm/node';
import type { ColumnType, NumericArray } from '../../../domain/types.ts';
import { isBoolEnum } from './inspect.ts';
import type { WireColumn } from './protocol.ts';

export type ValueKind =
  | { kind: 'float'; size: 4 | 8 }
  | { kind: 'int'; size: 1 | 2 | 4; signed: boolean }
  | { kind: 'int64'; signed: boolean }
  | { kind: 'bool'; size: number; signed: boolean; from: 'enum' | 'bitfield' }
  | { kind: 'label'; size: number; signed: boolean; labels: Map<number, string> }
  | { kind: 'fixed-string'; size: number; strpad: number }
  | { kind: 'vlen-string' };

export type KindOrReason = ValueKind | { kind: 'unsupported'; reason: string };

export function valueKindOf(m: Metadata): KindOrReason {
  switch (m.type) {
    case 0:
      if (m.size === 8) return { kind: 'int64', signed: m.signed };
      if (m.size === 1 || m.size === 2 || m.size === 4) return { kind: 'int', size: m.size, signed: m.signed };
      return { kind: 'unsupported', reason: `${m.size * 8}-bit integers are not stored` };
    case 1:
      if (m.size === 4 || m.size === 8) return { kind: 'float', size: m.size };
      return { kind: 'unsupported', reason: `${m.size * 8}-bit floats are not stored` };
    case 3:
      return m.vlen ? { kind: 'vlen-string' } : { kind: 'fixed-string', size: m.size, strpad: m.strpad ?? 0 };
    case 4:
      if (m.size === 1) return { kind: 'bool', size: 1, signed: false, from: 'bitfield' };
      return { kind: 'unsupported', reason: `${m.size * 8}-bit bitfields are not stored` };
    case 8: {
      if (![1, 2, 4].includes(m.size)) return { kind: 'unsupported', reason: `${m.size * 8}-bit enums are not stored` };
      if (isBoolEnum(m)) return { kind: 'bool', size: m.size, signed: m.signed, from: 'enum' };
      const labels = new Map<number, string>();
      for (const [label, value] of Object.entries(m.enum_type?.members ?? {})) labels.set(Number(value), label);
      return { kind: 'label', size: m.size, signed: m.signed, labels };
    }
    default:
      return { kind: 'unsupported', reason: 'references, opaque data, arrays, nested compounds and vlen sequences are not stored' };
  }
}

export function columnTypeOf(k: ValueKind, packed: boolean): ColumnType {
  if (packed) return 'float8';
  switch (k.kind) {
    case 'float': return k.size === 4 ? 'float4' : 'float8';
    case 'int': return k.size === 1 || (k.size === 2 && k.signed) ? 'int2' : (k.size === 2 || k.signed) ? 'int4' : 'int8';
    case 'int64': return 'int8';
    case 'bool': return 'bool';
    default: return 'text';
  }
}

/** Bytes one value takes in a batch (for slice sizing). */
export function valueBytes(k: ValueKind): number {
  switch (k.kind) {
    case 'float': return k.size;
    case 'int': return k.size;
    case 'int64': return 8;
    case 'bool': case 'label': return k.size;
    case 'fixed-string': return k.size + 4;
    case 'vlen-string': return 32;
  }
}

/**
 * Raw values that mean "no value" (missing.ts: CF _FillValue / missing_value / valid range, a
 * mapping's null_values), and the CF unpacking of packed integers.
 */
export interface Packing {
  /** Exact raw values read as NULL; NaN here makes NaN NULL. */
  fills: number[];
  /** Exact 64-bit integer values read as NULL (those a double cannot hold, e.g. netCDF's NC_FILL_INT64). */
  bigFills?: bigint[];
  /** Raw values below validMin or above validMax are NULL. */
  validMin: number | null;
  validMax: number | null;
  /** Text values read as NULL (string and enum columns). */
  texts: string[];
  scale: number | null;
  offset: number | null;
}

class ValidityBuilder {
  bitmap: Uint8Array | null = null;
  constructor(private readonly n: number) {}
  clear(i: number): void {
    if (!this.bitmap) this.bitmap = new Uint8Array(Math.ceil(this.n / 8)).fill(0xff);
    this.bitmap[i >> 3] &= ~(1 << (i & 7));
  }
}

/** Clears the rows whose raw value is a fill value or outside the valid range. */
function maskNumbers(values: ArrayLike<number>, packing: Packing, valid: ValidityBuilder): void {
  const nanFill = packing.fills.some((f) => f !== f);
  const fills = packing.fills.filter((f) => f === f);
  const lo = packing.validMin ?? -Infinity;
  const hi = packing.validMax ?? Infinity;
  if (!nanFill && fills.length === 0 && lo === -Infinity && hi === Infinity) return;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== v ? nanFill : (v < lo || v > hi || (fills.length > 0 && fills.includes(v)))) valid.clear(i);
  }
}

/** Numbers (floats, ≤ 32-bit integers, enum codes used as booleans). */
export function numberColumn(values: NumericArray, packing: Packing | null): WireColumn {
  const n = values.length;
  const valid = new ValidityBuilder(n);
  if (packing) maskNumbers(values, packing, valid);
  if (packing && (packing.scale !== null || packing.offset !== null)) {
    const scale = packing.scale ?? 1;
    const offset = packing.offset ?? 0;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = values[i] * scale + offset;
    return { values: { kind: 'number', values: out }, validity: valid.bitmap };
  }
  return { values: { kind: 'number', values }, validity: valid.bitmap };
}

/** 64-bit integers; uint64 keeps its bits and is range-checked by the encoder. */
export function bigintColumn(values: BigInt64Array | BigUint64Array, packing: Packing | null): WireColumn {
  const signed = values instanceof BigInt64Array ? values : new BigInt64Array(values.buffer, values.byteOffset, values.length);
  const valid = new ValidityBuilder(values.length);
  const fills = (packing?.fills ?? []).filter((f) => Number.isFinite(f)).map((f) => BigInt.asIntN(64, BigInt(Math.trunc(f))));
  for (const f of packing?.bigFills ?? []) fills.push(BigInt.asIntN(64, f));
  if (fills.length > 0) for (let i = 0; i < signed.length; i++) if (fills.includes(signed[i])) valid.clear(i);
  if (packing && (packing.validMin !== null || packing.validMax !== null)) {
    const lo = packing.validMin ?? -Infinity;
    const hi = packing.validMax ?? Infinity;
    for (let i = 0; i < values.length; i++) {
      const v = Number(values[i]);
      if (v < lo || v > hi) valid.clear(i);
    }
  }
  if (packing && (packing.scale !== null || packing.offset !== null)) {
    const out = new Float64Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = Number(values[i]) * (packing.scale ?? 1) + (packing.offset ?? 0);
    return { values: { kind: 'number', values: out }, validity: valid.bitmap };
  }
  return { values: { kind: 'bigint', values: signed, unsigned: values instanceof BigUint64Array }, validity: valid.bitmap };
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

/** Builds a per-batch dictionary of distinct strings. */
class Dictionary {
  private readonly index = new Map<string, number>();
  private readonly entries: Uint8Array[] = [];
  private bytes = 0;

  idOf(key: string, encoded: () => Uint8Array): number {
    let id = this.index.get(key);
    if (id === undefined) {
      id = this.entries.length;
      const e = encoded();
      this.entries.push(e);
      this.bytes += e.length;
      this.index.set(key, id);
    }
    return id;
  }

  column(indices: Int32Array, validity: Uint8Array | null): WireColumn {
    const bytes = new Uint8Array(this.bytes);
    const offsets = new Int32Array(this.entries.length + 1);
    let o = 0;
    for (let i = 0; i < this.entries.length; i++) {
      bytes.set(this.entries[i], o);
      o += this.entries[i].length;
      offsets[i + 1] = o;
    }
    return { values: { kind: 'dict', bytes, offsets, indices }, validity };
  }
}

/** Text from JS strings (vlen strings as h5wasm returns them). NUL characters are dropped: PostgreSQL text cannot hold them. */
export function stringColumn(values: readonly (string | null)[], nulls: readonly string[] = []): WireColumn {
  const dict = new Dictionary();
  const indices = new Int32Array(values.length);
  const valid = new ValidityBuilder(values.length);
  for (let i = 0; i < values.length; i++) {
    const s = values[i];
    if (s === null || s === undefined || (nulls.length > 0 && nulls.includes(s))) { valid.clear(i); continue; }
    indices[i] = dict.idOf(s, () => utf8.encode(s.includes('\0') ? s.replace(/\0/g, '') : s));
  }
  return dict.column(indices, valid.bitmap);
}

/** Text from fixed-length strings, raw: `size` bytes per row, cut at the first NUL (space-padded: trailing spaces trimmed). */
export function fixedStringColumn(raw: Uint8Array, n: number, size: number, strpad: number, nulls: readonly string[] = []): WireColumn {
  const dict = new Dictionary();
  const indices = new Int32Array(n);
  const valid = new ValidityBuilder(n);
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  for (let i = 0; i < n; i++) {
    const start = i * size;
    let end = start;
    while (end < start + size && raw[end] !== 0) end++;
    if (strpad === 2) while (end > start && raw[end - 1] === 0x20) end--;
    const key = buf.toString('latin1', start, end);
    if (nulls.length > 0 && nulls.includes(utf8Decoder.decode(raw.subarray(start, end)))) { valid.clear(i); continue; }
    // Decoded as UTF-8 once per distinct value: invalid bytes become U+FFFD, never invalid text.
    indices[i] = dict.idOf(key, () => utf8.encode(utf8Decoder.decode(raw.subarray(start, end))));
  }
  return dict.column(indices, valid.bitmap);
}

/** Enum codes to their labels (codes that are not members become NULL). */
export function labelColumn(codes: NumericArray, labels: Map<number, string>, nulls: readonly string[] = []): WireColumn {
  const dict = new Dictionary();
  const indices = new Int32Array(codes.length);
  const valid = new ValidityBuilder(codes.length);
  for (let i = 0; i < codes.length; i++) {
    const label = labels.get(codes[i]);
    if (label === undefined || (nulls.length > 0 && nulls.includes(label))) { valid.clear(i); continue; }
    indices[i] = dict.idOf(label, () => utf8.encode(label));
  }
  return dict.column(indices, valid.bitmap);
}

/** A column holding NULL in every row (a series that has no value in another series' rows). */
export function nullColumn(n: number, type: ColumnType): WireColumn {
  const validity = new Uint8Array(Math.ceil(n / 8));
  if (type === 'text') return { values: { kind: 'dict', bytes: new Uint8Array(0), offsets: new Int32Array(1), indices: new Int32Array(n) }, validity };
  if (type === 'int8') return { values: { kind: 'bigint', values: new BigInt64Array(n), unsigned: false }, validity };
  return { values: { kind: 'number', values: new Uint8Array(n) }, validity };
}

/** The same text in every row (a CF station name given once for the file). */
export function constantColumn(n: number, value: string): WireColumn {
  const bytes = utf8.encode(value);
  return { values: { kind: 'dict', bytes, offsets: Int32Array.of(0, bytes.length), indices: new Int32Array(n) }, validity: null };
}
