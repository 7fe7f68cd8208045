// Which Arrow types Strata stores, how, and which it refuses. README.md "Arrow types" lists the
// same rules for users.
//
//   Float16, Float32 → float4          Float64 → float8
//   Int8, Int16, Uint8 → int2          Int32, Uint16 → int4
//   Int64, Uint32 → int8               Uint64 → int8 (values above 2^63−1 are refused)
//   Bool → bool                        Utf8, LargeUtf8, Utf8View, Dictionary<*, string> → text (tag)
//   Timestamp (not the time column) → timestamptz, exact to the µs
//   Date32, Date64 → timestamptz at 00:00 UTC
//   Duration, Time32, Time64 → int8 in the column's own unit (the unit is recorded)
//   Decimal → float8 (nearest double)  Null → column skipped (recorded as a warning)
//   Binary, FixedSizeBinary, Interval, List, Struct, Map, Union, RunEndEncoded, ListView → refused
import { type Data, type DataType, type Field, type Vector, DateUnit, TimeUnit, Type } from 'apache-arrow';
import type { ColumnRole, ColumnType, ColumnValues, Validity } from '../../domain/types.ts';
import { type TimeUnitName, toMicros } from './timestamps.ts';

export interface ArrowColumnPlan {
  name: string;
  arrowType: string;
  storeAs: ColumnType;
  role: ColumnRole;
  unit: string | null;
  /**
   * Converts one batch's data for this column, once arrow-validate.ts has checked it; `offsets`
   * are a text column's checked offsets (LargeUtf8's already converted to numbers).
   */
  convert(data: Data, ctx: ConvertContext, offsets?: Int32Array | Float64Array | null): { values: ColumnValues; validity: Validity | null };
}

export interface ConvertContext {
  /** Caches UTF-8 encoded dictionaries by dictionary vector, across batches. */
  dictionaries: WeakMap<Vector, (Uint8Array | null)[]>;
  subMicro: number;
}

export type TypeDecision =
  | { kind: 'store'; plan: ArrowColumnPlan }
  | { kind: 'skip'; reason: string }
  | { kind: 'reject'; reason: string };

export function timeUnitName(unit: TimeUnit): TimeUnitName {
  switch (unit) {
    case TimeUnit.SECOND: return 's';
    case TimeUnit.MILLISECOND: return 'ms';
    case TimeUnit.MICROSECOND: return 'us';
    default: return 'ns';
  }
}

export function validityOf(data: Data): Validity | null {
  if (data.nullCount === 0 || !data.nullBitmap || data.nullBitmap.length === 0) return null;
  return { bitmap: data.nullBitmap, offset: data.offset };
}

const utf8 = new TextEncoder();

function isStringType(t: DataType): boolean {
  return t.typeId === Type.Utf8 || t.typeId === Type.LargeUtf8 || t.typeId === Type.Utf8View;
}

function textValues(data: Data, ctx: ConvertContext, checked: Int32Array | Float64Array | null | undefined): ColumnValues {
  const t = data.type;
  if (t.typeId === Type.Utf8 || t.typeId === Type.LargeUtf8) {
    if (!checked) throw new Error(`text column of type ${String(t)} converted before its offsets were checked`);
    return { kind: 'utf8', offsets: checked, data: data.values as Uint8Array };
  }
  if (t.typeId === Type.Utf8View) return { kind: 'utf8view', views: data.values as Uint8Array, buffers: data.variadicBuffers };
  // Dictionary
  const dict = data.dictionary as Vector;
  let entries = ctx.dictionaries.get(dict);
  if (!entries) {
    entries = new Array(dict.length);
    for (let i = 0; i < dict.length; i++) {
      const s = dict.get(i) as string | null;
      entries[i] = s === null ? null : utf8.encode(s);
    }
    ctx.dictionaries.set(dict, entries);
  }
  return { kind: 'dictionary', entries, indices: data.values as Int32Array };
}

export function halfToFloat(h: number): number {
  const s = (h & 0x8000) ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function decimalToFloat(words: Uint32Array, i: number, wordsPer: number, scale: number): number {
  let v = 0n;
  for (let w = wordsPer - 1; w >= 0; w--) v = (v << 32n) | BigInt(words[i * wordsPer + w]);
  v = BigInt.asIntN(wordsPer * 32, v);
  return Number(scale > 0 ? `${v}e-${scale}` : `${v}e${-scale}`);
}

function plan(name: string, type: DataType, storeAs: ColumnType, role: ColumnRole, unit: string | null,
  convert: ArrowColumnPlan['convert']): TypeDecision {
  return { kind: 'store', plan: { name, arrowType: String(type), storeAs, role, unit, convert } };
}

const numeric = (data: Data): { values: ColumnValues; validity: Validity | null } =>
  ({ values: { kind: 'number', values: data.values as Int32Array }, validity: validityOf(data) });

/** Decides how a non-time Arrow column is stored. */
export function decideColumn(field: Field): TypeDecision {
  const t = field.type as DataType & { bitWidth?: number; isSigned?: boolean; unit?: number; precision?: number; scale?: number; timezone?: string | null };
  const name = field.name;
  switch (t.typeId) {
    case Type.Float: {
      if (t.precision === 0) {
        return plan(name, t, 'float4', 'field', null, (data) => {
          const src = data.values as Uint16Array;
          const out = new Float32Array(src.length);
          for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]);
          return { values: { kind: 'number', values: out }, validity: validityOf(data) };
        });
      }
      return plan(name, t, t.precision === 1 ? 'float4' : 'float8', 'field', null, numeric);
    }
    case Type.Int: {
      const bits = t.bitWidth as number;
      if (bits === 64) {
        return plan(name, t, 'int8', 'field', null, (data) => ({
          values: { kind: 'bigint', values: new BigInt64Array((data.values as BigInt64Array).buffer, (data.values as BigInt64Array).byteOffset, data.length), unsigned: !t.isSigned },
          validity: validityOf(data),
        }));
      }
      const storeAs: ColumnType = bits === 8 ? 'int2' : bits === 16 ? (t.isSigned ? 'int2' : 'int4') : (t.isSigned ? 'int4' : 'int8');
      return plan(name, t, storeAs, 'field', null, numeric);
    }
    case Type.Bool:
      return plan(name, t, 'bool', 'field', null, (data) => ({
        values: { kind: 'bits', bitmap: data.values as Uint8Array, offset: data.offset }, validity: validityOf(data),
      }));
    case Type.Utf8: case Type.LargeUtf8: case Type.Utf8View:
      return plan(name, t, 'text', 'tag', null, (data, ctx, offsets) => ({ values: textValues(data, ctx, offsets), validity: validityOf(data) }));
    case Type.Dictionary: {
      const dt = (t as unknown as { dictionary: DataType }).dictionary;
      if (!isStringType(dt)) return { kind: 'reject', reason: `dictionary of ${String(dt)} (only string dictionaries are stored)` };
      return plan(name, t, 'text', 'tag', null, (data, ctx) => ({ values: textValues(data, ctx, null), validity: validityOf(data) }));
    }
    case Type.Timestamp: {
      const unit = timeUnitName(t.unit as TimeUnit);
      return plan(name, t, 'timestamptz', 'field', null, (data, ctx) => {
        const validity = validityOf(data);
        const r = toMicros(data.values as BigInt64Array, unit, validity, name, false);
        ctx.subMicro += r.subMicro;
        return { values: { kind: 'bigint', values: r.micros }, validity };
      });
    }
    case Type.Date: {
      const isDay = t.unit === DateUnit.DAY;
      return plan(name, t, 'timestamptz', 'field', null, (data) => {
        const out = new BigInt64Array(data.length);
        if (isDay) {
          const src = data.values as Int32Array;
          for (let i = 0; i < data.length; i++) out[i] = BigInt(src[i]) * 86_400_000_000n;
        } else {
          const src = data.values as unknown as ArrayLike<number | bigint>;
          const stride = src.length === data.length * 2 ? 2 : 1;
          for (let i = 0; i < data.length; i++) {
            const ms = stride === 2 ? BigInt((src as Int32Array)[2 * i + 1]) * 4294967296n + BigInt((src as Int32Array)[2 * i] >>> 0) : BigInt(src[i]);
            out[i] = ms * 1000n;
          }
        }
        return { values: { kind: 'bigint', values: out }, validity: validityOf(data) };
      });
    }
    case Type.Duration: case Type.Time: {
      const unit = timeUnitName(t.unit as TimeUnit);
      const label = t.typeId === Type.Duration ? unit : `${unit} since midnight`;
      return plan(name, t, 'int8', 'field', label, (data) => {
        const v = data.values as Int32Array | BigInt64Array;
        if (v instanceof BigInt64Array) return { values: { kind: 'bigint', values: v }, validity: validityOf(data) };
        return { values: { kind: 'number', values: v }, validity: validityOf(data) };
      });
    }
    case Type.Decimal: {
      const bits = (t.bitWidth as number) ?? 128;
      const scale = t.scale as number;
      return plan(name, t, 'float8', 'field', null, (data) => {
        const words = data.values as Uint32Array;
        const out = new Float64Array(data.length);
        for (let i = 0; i < data.length; i++) out[i] = decimalToFloat(words, i, bits / 32, scale);
        return { values: { kind: 'number', values: out }, validity: validityOf(data) };
      });
    }
    case Type.Null:
      return { kind: 'skip', reason: `column ${JSON.stringify(name)} has type Null (no values); it was skipped` };
    default:
      return { kind: 'reject', reason: String(t) };
  }
}
