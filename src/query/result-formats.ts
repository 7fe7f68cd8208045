// Streams query results as JSON, CSV or Arrow from pages of PostgreSQL text values. Cells arrive
// as the text PostgreSQL prints (exact: shortest round-trip floats, full int8), with times as
// integer microseconds since the epoch; each format renders them without going through lossy
// conversions.
import {
  Bool, Field, Float32, Float64, Int16, Int32, Int64, RecordBatch, Schema, Struct, Table, TimestampMicrosecond, Utf8,
  makeData, tableToIPC, vectorFromArray, type DataType,
} from 'apache-arrow';
import type { ColumnType } from '../domain/types.ts';
import { formatMicros } from '../domain/time.ts';

export type ResultType = ColumnType | 'time';

export interface ResultColumn {
  name: string;
  type: ResultType;
}

export type Cell = string | null;

export interface ResultFormatter {
  contentType: string;
  /** Bytes before the first row. `meta` is shown in JSON; Arrow keeps what it declares (served, gaps) as schema metadata. */
  begin(columns: readonly ResultColumn[], meta: Record<string, unknown>): Uint8Array;
  page(rows: readonly Cell[][]): Uint8Array;
  /** Bytes after the last row; `meta` is merged into the JSON envelope. */
  end(meta: Record<string, unknown>): Uint8Array;
}

const enc = new TextEncoder();
const NON_FINITE = new Set(['NaN', 'Infinity', '-Infinity']);

const DAY_US = 86_400_000_000;
const two = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
/** The last day formatted ("YYYY-MM-DDT"): a query's times fall on few days, one after another. */
let lastDay = NaN;
let lastDayText = '';

function timeText(cell: string): string {
  // Within ±9·10^15 µs of the epoch (1684–2255) µs are exact as a Number: the day's date once,
  // the time of day by arithmetic — no BigInt and no Date per cell.
  const us = Number(cell);
  if (Number.isSafeInteger(us) && us > -9e15 && us < 9e15) {
    let day = Math.floor(us / DAY_US);
    let rest = us - day * DAY_US;
    // us / DAY_US is rounded: the floor may be one off next to midnight.
    if (rest < 0) { day -= 1; rest += DAY_US; } else if (rest >= DAY_US) { day += 1; rest -= DAY_US; }
    if (day !== lastDay) {
      lastDay = day;
      lastDayText = new Date(day * 86_400_000).toISOString().slice(0, 11);
    }
    const s = Math.floor(rest / 1_000_000);
    const micro = rest - s * 1_000_000;
    return `${lastDayText}${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}.${String(micro).padStart(6, '0')}Z`;
  }
  return formatMicros(BigInt(cell));
}

function jsonCell(cell: Cell, type: ResultType): string {
  if (cell === null) return 'null';
  switch (type) {
    case 'time': case 'timestamptz': return `"${timeText(cell)}"`;
    case 'float8': case 'float4': return NON_FINITE.has(cell) ? `"${cell}"` : cell;
    case 'int2': case 'int4': case 'int8': return cell;
    case 'bool': return cell === 't' || cell === 'true' ? 'true' : 'false';
    default: return JSON.stringify(cell);
  }
}

function csvQuote(s: string): string {
  return /[",\r\n]/.test(s) || s === '' ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvCell(cell: Cell, type: ResultType): string {
  if (cell === null) return '';
  switch (type) {
    case 'time': case 'timestamptz': return timeText(cell);
    case 'bool': return cell === 't' || cell === 'true' ? 'true' : 'false';
    case 'text': return csvQuote(cell);
    default: return cell;
  }
}

export function jsonFormatter(): ResultFormatter {
  let columns: readonly ResultColumn[] = [];
  let first = true;
  return {
    contentType: 'application/json',
    begin(cols, meta) {
      columns = cols;
      const head = JSON.stringify({ ...meta, columns: cols.map((c) => ({ name: c.name, type: c.type === 'time' ? 'timestamptz' : c.type })) });
      return enc.encode(`${head.slice(0, -1)},"rows":[`);
    },
    page(rows) {
      let out = '';
      for (const row of rows) {
        let line = first ? '\n[' : ',\n[';
        first = false;
        for (let i = 0; i < row.length; i++) line += (i ? ',' : '') + jsonCell(row[i], columns[i].type);
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

export function csvFormatter(): ResultFormatter {
  let columns: readonly ResultColumn[] = [];
  return {
    contentType: 'text/csv; charset=utf-8',
    begin(cols) {
      columns = cols;
      return enc.encode(`${cols.map((c) => csvQuote(c.name)).join(',')}\n`);
    },
    page(rows) {
      let out = '';
      for (const row of rows) {
        let line = '';
        for (let i = 0; i < row.length; i++) line += (i ? ',' : '') + csvCell(row[i], columns[i].type);
        out += `${line}\n`;
      }
      return enc.encode(out);
    },
    end: () => new Uint8Array(0),
  };
}

/** The Arrow type a result column is written as (also by batch-formats.ts). */
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

function validityBitmap(rows: readonly Cell[][], col: number): { bitmap: Uint8Array; nulls: number } {
  const bitmap = new Uint8Array(Math.ceil(rows.length / 8));
  let nulls = 0;
  for (let r = 0; r < rows.length; r++) {
    if (rows[r][col] === null) nulls++;
    else bitmap[r >> 3] |= 1 << (r & 7);
  }
  return { bitmap, nulls };
}

function arrowColumn(rows: readonly Cell[][], col: number, t: ResultType) {
  const type = arrowType(t);
  const n = rows.length;
  const { bitmap, nulls } = validityBitmap(rows, col);
  const nullBitmap = nulls > 0 ? bitmap : undefined;
  switch (t) {
    case 'time': case 'timestamptz': case 'int8': {
      const data = new BigInt64Array(n);
      for (let r = 0; r < n; r++) { const c = rows[r][col]; if (c !== null) data[r] = BigInt(c); }
      return makeData({ type: type as TimestampMicrosecond, length: n, nullCount: nulls, nullBitmap, data: data as unknown as Int32Array });
    }
    case 'float8': case 'float4': case 'int2': case 'int4': {
      const Arr = t === 'float8' ? Float64Array : t === 'float4' ? Float32Array : t === 'int2' ? Int16Array : Int32Array;
      const data = new Arr(n);
      for (let r = 0; r < n; r++) { const c = rows[r][col]; if (c !== null) data[r] = Number(c); }
      return makeData({ type: type as Float64, length: n, nullCount: nulls, nullBitmap, data: data as Float64Array });
    }
    case 'bool':
      return vectorFromArray(rows.map((row) => (row[col] === null ? null : row[col] === 't' || row[col] === 'true')), type as Bool).data[0];
    default:
      return vectorFromArray(rows.map((row) => row[col]), type as Utf8).data[0];
  }
}

/** What the answer declares about its sources, as schema metadata (JSON values): strata.served, strata.gaps. */
function schemaMetadata(meta: Record<string, unknown>): Map<string, string> {
  const out = new Map<string, string>();
  for (const key of ['served', 'gaps']) if (meta[key] !== undefined) out.set(`strata.${key}`, JSON.stringify(meta[key]));
  return out;
}

/** Arrow IPC stream: the schema once, one record batch per page, then the end-of-stream marker. */
export function arrowFormatter(): ResultFormatter {
  let columns: readonly ResultColumn[] = [];
  let schema: Schema;
  let schemaBytes = 0;
  return {
    contentType: 'application/vnd.apache.arrow.stream',
    begin(cols, meta) {
      columns = cols;
      schema = new Schema(cols.map((c) => new Field(c.name, arrowType(c.type), true)), schemaMetadata(meta));
      const empty = tableToIPC(new Table(schema), 'stream');
      const dv = new DataView(empty.buffer, empty.byteOffset, empty.byteLength);
      schemaBytes = 8 + dv.getInt32(4, true);
      return empty.subarray(0, schemaBytes);
    },
    page(rows) {
      if (rows.length === 0) return new Uint8Array(0);
      const children = columns.map((c, i) => arrowColumn(rows, i, c.type));
      const data = makeData({ type: new Struct(schema.fields), length: rows.length, nullCount: 0, children });
      const bytes = tableToIPC(new Table([new RecordBatch(schema, data)]), 'stream');
      // Drop the schema message and the end-of-stream marker: only the record batch is new.
      return bytes.subarray(schemaBytes, bytes.byteLength - 8);
    },
    end: () => Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
  };
}

export function formatterFor(format: string): ResultFormatter {
  if (format === 'csv') return csvFormatter();
  if (format === 'arrow') return arrowFormatter();
  return jsonFormatter();
}
