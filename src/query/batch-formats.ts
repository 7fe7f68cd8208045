// Writes ColumnBatches (raw rows, whatever their source) as JSON, CSV, Arrow or Parquet. Values go
// from the column buffers to the output without a lossy step: floats print as the shortest text
// that reads back to the same double (float4: the same float), int8 exactly, times as RFC 3339
// with microseconds. Arrow record batches are built on the batch's buffers without copying them.
import {
  Bool, Field, Float64, Int64, RecordBatch, Schema, Struct, Table, TimestampMicrosecond, Utf8,
  makeData, tableToIPC, type Data,
} from 'apache-arrow';
import type { ColumnBatch, ColumnData, NumericArray } from '../domain/types.ts';
import { formatMicros } from '../domain/time.ts';
import { type ResultColumn, arrowType } from './result-formats.ts';

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

function isNull(validity: ColumnData['validity'], r: number): boolean {
  if (!validity) return false;
  const i = validity.offset + r;
  return (validity.bitmap[i >> 3] & (1 << (i & 7))) === 0;
}

/**
 * The text of every value of a column (unquoted), or null for nulls: one tight loop per column
 * and value layout, which is where the time of CSV and JSON goes.
 */
function columnTexts(col: ColumnData, n: number): (string | null)[] {
  const out: (string | null)[] = new Array<string | null>(n);
  const { values } = col;
  switch (values.kind) {
    case 'number': {
      const v = values.values;
      if (col.column.type === 'float4') for (let r = 0; r < n; r++) out[r] = float4Text(v[r]);
      else if (col.column.type === 'float8') for (let r = 0; r < n; r++) out[r] = float8Text(v[r]);
      else for (let r = 0; r < n; r++) out[r] = String(v[r]);
      break;
    }
    case 'bigint': {
      const v = values.values;
      if (col.column.type === 'timestamptz') {
        const words = new Int32Array(v.buffer, v.byteOffset, v.length * 2);
        for (let r = 0; r < n; r++) out[r] = timeText(words, r, v);
      } else {
        for (let r = 0; r < n; r++) out[r] = String(v[r]);
      }
      break;
    }
    case 'bits': {
      const { bitmap, offset } = values;
      for (let r = 0; r < n; r++) out[r] = (bitmap[(offset + r) >> 3] & (1 << ((offset + r) & 7))) !== 0 ? 'true' : 'false';
      break;
    }
    case 'utf8': {
      const { offsets, data } = values;
      const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      // Tags repeat: the previous value's bytes are compared before a new string is made.
      let prev = '';
      let prevStart = -1;
      let prevLen = -1;
      for (let r = 0; r < n; r++) {
        const a = offsets[r];
        const len = offsets[r + 1] - a;
        if (len !== prevLen || b.compare(b, prevStart, prevStart + prevLen, a, a + len) !== 0) {
          prev = b.toString('utf8', a, a + len);
          prevStart = a;
          prevLen = len;
        }
        out[r] = prev;
      }
      break;
    }
    case 'strings': {
      const v = values.values;
      for (let r = 0; r < n; r++) out[r] = v[r];
      break;
    }
    default:
      throw new Error(`raw export: column ${col.column.name} arrives as ${values.kind}, which the writers do not take`);
  }
  if (col.validity) for (let r = 0; r < n; r++) if (isNull(col.validity, r)) out[r] = null;
  return out;
}

/** Output bytes of one batch, filled slice by slice: no batch-sized string is ever built. */
class Sink {
  buf = Buffer.allocUnsafe(1 << 20);
  pos = 0;

  ensure(more: number): void {
    if (this.pos + more <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + more));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  utf8(s: string): void {
    this.ensure(s.length * 3);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  take(): Uint8Array {
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(1 << 20);
    this.pos = 0;
    return out;
  }
}

/** The text of row r's value (known not null), as CSV or JSON writes it. */
type CellText = (r: number) => string;

function cellText(col: ColumnData, style: 'csv' | 'json'): CellText {
  const { values } = col;
  const type = col.column.type;
  switch (values.kind) {
    case 'number': {
      const v = values.values;
      if (type === 'float8') return style === 'json' ? (r) => { const x = v[r]; return Number.isFinite(x) ? float8Text(x) : `"${x}"`; } : (r) => float8Text(v[r]);
      if (type === 'float4') return style === 'json' ? (r) => { const x = v[r]; return Number.isFinite(x) ? float4Text(x) : `"${x}"`; } : (r) => float4Text(v[r]);
      return (r) => String(v[r]);
    }
    case 'bigint': {
      const v = values.values;
      if (type === 'timestamptz') {
        const words = new Int32Array(v.buffer, v.byteOffset, v.length * 2);
        return style === 'json' ? (r) => `"${timeText(words, r, v)}"` : (r) => timeText(words, r, v);
      }
      return (r) => String(v[r]);
    }
    case 'bits': {
      const { bitmap, offset } = values;
      return (r) => ((bitmap[(offset + r) >> 3] & (1 << ((offset + r) & 7))) !== 0 ? 'true' : 'false');
    }
    case 'utf8': {
      const { offsets, data } = values;
      const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      const render = style === 'json' ? (s: string) => JSON.stringify(s) : csvQuote;
      // Tags repeat: the last value's bytes are compared before a new string is made.
      let last = '';
      let lastStart = 0;
      let lastLen = -1;
      return (r) => {
        const start = offsets[r];
        const len = offsets[r + 1] - start;
        if (len !== lastLen || b.compare(b, lastStart, lastStart + lastLen, start, start + len) !== 0) {
          last = render(b.toString('utf8', start, start + len));
          lastStart = start;
          lastLen = len;
        }
        return last;
      };
    }
    case 'strings': {
      const v = values.values;
      return style === 'json' ? (r) => JSON.stringify(v[r]) : (r) => csvQuote(v[r] as string);
    }
    default:
      throw new Error(`raw export: column ${col.column.name} arrives as ${values.kind}, which the writers do not take`);
  }
}

/** Rows per string handed to the output buffer: one native call per slice, not per cell. */
const SLICE_ROWS = 256;

/** Writes the rows of a batch: `[` / `]` and `null` for JSON, nothing for CSV's nulls. */
function writeRows(batch: ColumnBatch, style: 'csv' | 'json', out: Sink, first: boolean): void {
  const words = new Int32Array(batch.time.buffer, batch.time.byteOffset, batch.length * 2);
  const cells = batch.columns.map((c) => cellText(c, style));
  const validity = batch.columns.map((c) => c.validity);
  const width = cells.length;
  const json = style === 'json';
  const nullText = json ? 'null' : '';
  let slice = '';
  for (let r = 0; r < batch.length; r++) {
    let line = json ? `${first && r === 0 ? '\n' : ',\n'}["${timeText(words, r, batch.time)}"` : timeText(words, r, batch.time);
    for (let i = 0; i < width; i++) line += `,${validity[i] !== null && isNull(validity[i], r) ? nullText : cells[i](r)}`;
    slice += json ? `${line}]` : `${line}\n`;
    if ((r + 1) % SLICE_ROWS === 0) { out.utf8(slice); slice = ''; }
  }
  if (slice) out.utf8(slice);
}

function csvQuote(s: string): string {
  return s === '' || /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvBatchFormatter(): BatchFormatter {
  const out = new Sink();
  return {
    contentType: 'text/csv; charset=utf-8',
    begin: (cols) => enc.encode(`${cols.map((c) => csvQuote(c.name)).join(',')}\n`),
    batch(batch) {
      writeRows(batch, 'csv', out, false);
      return out.take();
    },
    end: () => new Uint8Array(0),
  };
}

export function jsonBatchFormatter(): BatchFormatter {
  let first = true;
  const out = new Sink();
  return {
    contentType: 'application/json',
    begin(cols, meta) {
      const head = JSON.stringify({ ...meta, columns: cols.map((c) => ({ name: c.name, type: c.type === 'time' ? 'timestamptz' : c.type })) });
      return enc.encode(`${head.slice(0, -1)},"rows":[`);
    },
    batch(batch) {
      writeRows(batch, 'json', out, first);
      if (batch.length > 0) first = false;
      return out.take();
    },
    end(meta) {
      const tail = JSON.stringify(meta);
      return enc.encode(tail === '{}' ? '\n]}\n' : `\n],${tail.slice(1)}\n`);
    },
  };
}

// ---- Arrow ------------------------------------------------------------------------------------

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
      const bytes = columnTexts(col, n).map((s) => enc.encode(s ?? ''));
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
