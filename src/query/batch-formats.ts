// Writes ColumnBatches (raw rows, whatever their source) as JSON, CSV, Arrow or Parquet. Values go
// from the column buffers to the output without a lossy step: floats print as the shortest text
// that reads back to the same double (float4: the same float), int8 exactly, times as RFC 3339
// with microseconds. Arrow record batches are built on the batch's buffers without copying them.
import {
  Bool, Field, Float32, Float64, Int16, Int32, Int64, RecordBatch, Schema, Struct, Table, TimestampMicrosecond, Utf8,
  makeData, tableToIPC, type Data, type DataType,
} from 'apache-arrow';
import type { ColumnBatch, ColumnData, NumericArray } from '../domain/types.ts';
import { formatMicros } from '../domain/time.ts';
import type { ResultColumn, ResultType } from './result-formats.ts';

export interface BatchFormatter {
  contentType: string;
  begin(columns: readonly ResultColumn[], meta: Record<string, unknown>): Uint8Array;
  batch(batch: ColumnBatch): Uint8Array;
  end(meta: Record<string, unknown>): Uint8Array;
}

const enc = new TextEncoder();

// ---- text cells -------------------------------------------------------------------------------

let lastSecond = NaN;
let lastPrefix = '';

/** RFC 3339 UTC with six fractional digits; fast for instants within ±285 years of 1970. */
function timeText(words: Int32Array, r: number, big: BigInt64Array): string {
  const us = words[2 * r + 1] * 4294967296 + (words[2 * r] >>> 0);
  if (!Number.isSafeInteger(us)) return formatMicros(big[r]);
  const second = Math.floor(us / 1e6);
  if (second !== lastSecond) {
    const d = new Date(second * 1000);
    if (Number.isNaN(d.getTime())) return formatMicros(big[r]);
    lastSecond = second;
    lastPrefix = d.toISOString().slice(0, -4);
  }
  const micro = us - second * 1e6;
  return `${lastPrefix}${micro < 100000 ? String(micro + 1000000).slice(1) : micro}Z`;
}

function float8Text(x: number): string {
  return x === 0 && 1 / x < 0 ? '-0' : String(x);
}

/** The shortest decimal that reads back to the same float4 (as PostgreSQL prints it). */
function float4Text(x: number): string {
  if (!Number.isFinite(x) || x === 0) return float8Text(x);
  for (let p = 1; p < 9; p++) {
    const v = Number(x.toPrecision(p));
    if (Math.fround(v) === x) return String(v);
  }
  return String(Number(x.toPrecision(9)));
}

type CellText = (r: number) => string | null;

function isNull(validity: ColumnData['validity'], r: number): boolean {
  if (!validity) return false;
  const i = validity.offset + r;
  return (validity.bitmap[i >> 3] & (1 << (i & 7))) === 0;
}

/** A function from row to the value's text (unquoted), or null for null. */
function cellText(col: ColumnData): CellText {
  const { values, validity } = col;
  const guard = (f: (r: number) => string): CellText => (validity ? (r) => (isNull(validity, r) ? null : f(r)) : f);
  switch (values.kind) {
    case 'number': {
      const v = values.values;
      return guard(col.column.type === 'float4' ? (r) => float4Text(v[r]) : (r) => float8Text(v[r]));
    }
    case 'bigint': {
      const v = values.values;
      if (col.column.type === 'timestamptz') {
        const words = new Int32Array(v.buffer, v.byteOffset, v.length * 2);
        return guard((r) => timeText(words, r, v));
      }
      return guard((r) => String(v[r]));
    }
    case 'bits': {
      const { bitmap, offset } = values;
      return guard((r) => ((bitmap[(offset + r) >> 3] & (1 << ((offset + r) & 7))) !== 0 ? 'true' : 'false'));
    }
    case 'utf8': {
      const { offsets, data } = values;
      const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      return guard((r) => b.toString('utf8', offsets[r], offsets[r + 1]));
    }
    case 'strings': {
      const v = values.values;
      return (r) => (isNull(validity, r) ? null : v[r]);
    }
    default:
      throw new Error(`raw export: column ${col.column.name} arrives as ${values.kind}, which the writers do not take`);
  }
}

function timeColumn(batch: ColumnBatch): CellText {
  const words = new Int32Array(batch.time.buffer, batch.time.byteOffset, batch.length * 2);
  return (r) => timeText(words, r, batch.time);
}

function csvQuote(s: string): string {
  return s === '' || /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvBatchFormatter(): BatchFormatter {
  return {
    contentType: 'text/csv; charset=utf-8',
    begin: (cols) => enc.encode(`${cols.map((c) => csvQuote(c.name)).join(',')}\n`),
    batch(batch) {
      const cells = [timeColumn(batch), ...batch.columns.map((c) => {
        const f = cellText(c);
        return c.column.type === 'text' ? (r: number) => { const s = f(r); return s === null ? null : csvQuote(s); } : f;
      })];
      let out = '';
      for (let r = 0; r < batch.length; r++) {
        let line = cells[0](r) as string;
        for (let i = 1; i < cells.length; i++) line += `,${cells[i](r) ?? ''}`;
        out += `${line}\n`;
      }
      return enc.encode(out);
    },
    end: () => new Uint8Array(0),
  };
}

const NON_FINITE = new Set(['NaN', 'Infinity', '-Infinity']);

function jsonCell(type: ResultType, f: CellText): CellText {
  switch (type) {
    case 'timestamptz': case 'text': return (r) => { const s = f(r); return s === null ? 'null' : JSON.stringify(s); };
    case 'float8': case 'float4': return (r) => { const s = f(r); return s === null ? 'null' : NON_FINITE.has(s) ? `"${s}"` : s; };
    default: return (r) => f(r) ?? 'null';
  }
}

export function jsonBatchFormatter(): BatchFormatter {
  let first = true;
  return {
    contentType: 'application/json',
    begin(cols, meta) {
      const head = JSON.stringify({ ...meta, columns: cols.map((c) => ({ name: c.name, type: c.type === 'time' ? 'timestamptz' : c.type })) });
      return enc.encode(`${head.slice(0, -1)},"rows":[`);
    },
    batch(batch) {
      const time = timeColumn(batch);
      const cells = batch.columns.map((c) => jsonCell(c.column.type, cellText(c)));
      let out = '';
      for (let r = 0; r < batch.length; r++) {
        let line = `${first ? '\n' : ',\n'}["${time(r)}"`;
        first = false;
        for (const cell of cells) line += `,${cell(r)}`;
        out += `${line}]`;
      }
      return enc.encode(out);
    },
    end(meta) {
      const tail = JSON.stringify(meta);
      return enc.encode(tail === '{}' ? '\n]}\n' : `\n],${tail.slice(1)}\n`);
    },
  };
}

// ---- Arrow ------------------------------------------------------------------------------------

export function arrowType(t: ResultType): DataType {
  switch (t) {
    case 'time': case 'timestamptz': return new TimestampMicrosecond('UTC');
    case 'float8': return new Float64();
    case 'float4': return new Float32();
    case 'int2': return new Int16();
    case 'int4': return new Int32();
    case 'int8': return new Int64();
    case 'bool': return new Bool();
    default: return new Utf8();
  }
}

function nullCount(validity: ColumnData['validity'], n: number): number {
  if (!validity) return 0;
  let nulls = 0;
  for (let r = 0; r < n; r++) if (isNull(validity, r)) nulls++;
  return nulls;
}

/** Arrow data over the column's own buffers (values whose layout differs are converted). */
function arrowData(col: ColumnData, n: number): Data {
  const type = arrowType(col.column.type);
  const nulls = nullCount(col.validity, n);
  // Arrow wants the validity at bit 0; decoders may hand it at an offset.
  const nullBitmap = nulls === 0 ? undefined : col.validity!.offset === 0 ? col.validity!.bitmap : shiftBits(col.validity!.bitmap, col.validity!.offset, n);
  const v = col.values;
  switch (v.kind) {
    case 'bigint': return makeData({ type: type as Int64, length: n, nullCount: nulls, nullBitmap, data: v.values as unknown as Int32Array });
    case 'number': return makeData({ type: type as Float64, length: n, nullCount: nulls, nullBitmap, data: converted(v.values, col.column.type) as Float64Array });
    case 'bits': return makeData({ type: type as Bool, length: n, nullCount: nulls, nullBitmap, data: v.offset === 0 ? v.bitmap : shiftBits(v.bitmap, v.offset, n) });
    case 'utf8': {
      if (v.offsets instanceof Int32Array) return makeData({ type: type as Utf8, length: n, nullCount: nulls, nullBitmap, valueOffsets: v.offsets, data: v.data });
      return makeData({ type: type as Utf8, length: n, nullCount: nulls, nullBitmap, valueOffsets: Int32Array.from(v.offsets, (o) => o - v.offsets[0]), data: v.data.subarray(v.offsets[0]) });
    }
    default: {
      const cell = cellText(col);
      const strings: string[] = [];
      for (let r = 0; r < n; r++) strings.push(cell(r) ?? '');
      const bytes = strings.map((s) => enc.encode(s));
      const offsets = new Int32Array(n + 1);
      for (let r = 0; r < n; r++) offsets[r + 1] = offsets[r] + bytes[r].length;
      const data = new Uint8Array(offsets[n]);
      bytes.forEach((b, r) => data.set(b, offsets[r]));
      return makeData({ type: type as Utf8, length: n, nullCount: nulls, nullBitmap, valueOffsets: offsets, data });
    }
  }
}

function converted(values: NumericArray, type: string): NumericArray {
  const want = type === 'float8' ? Float64Array : type === 'float4' ? Float32Array : type === 'int2' ? Int16Array : Int32Array;
  return values instanceof want ? values : want.from(values as ArrayLike<number>);
}

function shiftBits(bitmap: Uint8Array, offset: number, n: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(n / 8));
  for (let r = 0; r < n; r++) {
    const i = offset + r;
    if (bitmap[i >> 3] & (1 << (i & 7))) out[r >> 3] |= 1 << (r & 7);
  }
  return out;
}

/** What the answer declares about its sources, as schema metadata (JSON values): strata.served, strata.gaps. */
export function schemaMetadata(meta: Record<string, unknown>): Map<string, string> {
  const out = new Map<string, string>();
  for (const key of ['served', 'gaps']) if (meta[key] !== undefined) out.set(`strata.${key}`, JSON.stringify(meta[key]));
  return out;
}

export const ARROW_EOS = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

/** Arrow IPC stream: the schema once, one record batch per ColumnBatch, then the end-of-stream marker. */
export function arrowBatchFormatter(): BatchFormatter {
  let schema: Schema;
  let schemaBytes = 0;
  return {
    contentType: 'application/vnd.apache.arrow.stream',
    begin(cols, meta) {
      schema = new Schema(cols.map((c) => new Field(c.name, arrowType(c.type), true)), schemaMetadata(meta));
      const empty = tableToIPC(new Table(schema), 'stream');
      schemaBytes = 8 + new DataView(empty.buffer, empty.byteOffset, empty.byteLength).getInt32(4, true);
      return empty.subarray(0, schemaBytes);
    },
    batch(batch) {
      const n = batch.length;
      if (n === 0) return new Uint8Array(0);
      const time = makeData({ type: new TimestampMicrosecond('UTC'), length: n, nullCount: 0, data: batch.time as unknown as Int32Array });
      const children = [time, ...batch.columns.map((c) => arrowData(c, n))];
      const data = makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children });
      const bytes = tableToIPC(new Table([new RecordBatch(schema, data)]), 'stream');
      // Drop the schema message and the end-of-stream marker: only the record batch is new.
      return bytes.subarray(schemaBytes, bytes.byteLength - 8);
    },
    end: () => ARROW_EOS,
  };
}
