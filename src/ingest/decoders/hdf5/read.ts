// Executes a read plan slice by slice (worker thread only). Slices are whole chunks along the
// row axis (plan.ts), read straight from disk through h5wasm. Numbers, enums, bitfields and
// fixed-length strings are read as raw bytes (one copy out of the wasm heap, no per-value JS
// objects); compound rows are decoded from their raw bytes with a DataView; vlen strings go
// through h5wasm's slice(), which frees their heap memory.
import type { CompoundMember } from 'h5wasm/node';
import { AppError } from '../../../errors/index.ts';
import type { NumericArray } from '../../../domain/types.ts';
import type { ValueRange } from '../epoch-units.ts';
import type { H5 } from './h5.ts';
import type { DatasetInfo } from './inspect.ts';
import { type ReadContext, readError } from './errors.ts';
import type { ColumnRead, ReadPlan, Segment } from './plan.ts';
import type { WireBatch, WireColumn } from './protocol.ts';
import { type RawTimes, convertTimes } from './time.ts';
import {
  type Packing, type ValueKind, bigintColumn, constantColumn, fixedStringColumn, labelColumn, nullColumn, numberColumn, stringColumn,
} from './values.ts';

type Raw = NumericArray | BigInt64Array | BigUint64Array | Uint8Array;

/**
 * Raw bytes of rows [lo, hi), little-endian: of one station row for station × time datasets, or
 * of one column for time × column datasets (pandas' block values).
 */
function readBytes(h5: H5, d: DatasetInfo, lo: number, hi: number, stationRow: number | null, column: number | null = null): Uint8Array {
  const m = h5.module;
  const count = stationRow !== null ? [1n, BigInt(hi - lo)] : column !== null ? [BigInt(hi - lo), 1n] : [BigInt(hi - lo)];
  const offset = stationRow !== null ? [BigInt(stationRow), BigInt(lo)] : column !== null ? [BigInt(lo), BigInt(column)] : [BigInt(lo)];
  const nbytes = d.meta.size * (hi - lo);
  if (nbytes === 0) return new Uint8Array(0);
  const ptr = m._malloc(nbytes);
  if (ptr === 0) throw new Error(`malloc(${nbytes}) failed`);
  try {
    m.get_dataset_data(d.dataset.file_id, d.path, count, offset, count.map(() => 1n), BigInt(ptr));
    return m.HEAPU8.slice(ptr, ptr + nbytes);
  } finally {
    m._free(ptr);
  }
}

/** A typed view of raw little-endian values of a numeric, enum or bitfield kind. */
function typed(k: ValueKind, bytes: Uint8Array, n: number): Raw {
  const b = bytes.buffer;
  const o = bytes.byteOffset;
  switch (k.kind) {
    case 'float': return k.size === 4 ? new Float32Array(b, o, n) : new Float64Array(b, o, n);
    case 'int64': return k.signed ? new BigInt64Array(b, o, n) : new BigUint64Array(b, o, n);
    case 'int': case 'bool': case 'label':
      if (k.kind === 'bool' && k.from === 'bitfield') return new Uint8Array(b, o, n);
      if (k.size === 1) return k.signed ? new Int8Array(b, o, n) : new Uint8Array(b, o, n);
      if (k.size === 2) return k.signed ? new Int16Array(b, o, n) : new Uint16Array(b, o, n);
      return k.signed ? new Int32Array(b, o, n) : new Uint32Array(b, o, n);
    default: return bytes;
  }
}

/**
 * Copies one member's bytes out of interleaved compound rows (offset, size per row), aligned.
 * The member's offset and size come from the file: they must lie within the row, and the rows
 * within what was read, or a damaged type would be read as zeros from past the buffer.
 */
function memberBytes(raw: Uint8Array, rowSize: number, m: CompoundMember, n: number, path: string): Uint8Array {
  if (!(m.offset >= 0) || !(m.size > 0) || m.offset + m.size > rowSize || raw.byteLength < rowSize * n) {
    throw new AppError(422, 'corrupt_data',
      `dataset ${path}: compound member ${JSON.stringify(m.name)} claims bytes ${m.offset}–${m.offset + m.size} of a ${rowSize}-byte row; the file's type information is damaged, nothing was stored`,
      { detail: { dataset: path, member: m.name } });
  }
  const out = new Uint8Array(m.size * n);
  for (let i = 0, src = m.offset, dst = 0; i < n; i++, src += rowSize, dst += m.size) {
    for (let j = 0; j < m.size; j++) out[dst + j] = raw[src + j];
  }
  return out;
}

function toColumn(k: ValueKind, packing: Packing | null, raw: Raw | readonly (string | null)[], n: number): WireColumn {
  const texts = packing?.texts ?? [];
  if (Array.isArray(raw)) return stringColumn(raw as string[], texts);
  switch (k.kind) {
    case 'fixed-string': return fixedStringColumn(raw as Uint8Array, n, k.size, k.strpad, texts);
    case 'label': return labelColumn(raw as NumericArray, k.labels, texts);
    case 'int64': return bigintColumn(raw as BigInt64Array | BigUint64Array, packing);
    default: return numberColumn(raw as NumericArray, packing);
  }
}

export class PlanReader {
  subMicro = 0;
  readonly naive = { count: 0 };

  constructor(private readonly h5: H5, readonly plan: ReadPlan) {}

  noteError(): void {
    this.h5.noteError();
  }

  /** Batches of the whole plan, one per slice. */
  *batches(): Generator<WireBatch> {
    for (const seg of this.plan.segments) {
      for (let lo = 0; lo < seg.rows; lo += seg.sliceRows) {
        const hi = Math.min(seg.rows, lo + seg.sliceRows);
        yield this.slice(seg, lo, hi);
      }
    }
  }

  private ctx(d: DatasetInfo, lo: number, hi: number): ReadContext {
    return { dataset: d.path, rows: [lo, hi], filters: d.filters };
  }

  /** Runs a read, turning HDF5 failures into errors naming the dataset and rows. */
  private guarded<T>(d: DatasetInfo, lo: number, hi: number, read: () => T, stationRow: number | null = null): T {
    try {
      return read();
    } catch (err) {
      this.h5.noteError();
      const e = readError(err, this.ctx(d, lo, hi));
      if (e.code !== 'corrupt_data') throw e;
      const bad = this.locate(d, lo, hi, stationRow);
      throw bad ? readError(err, this.ctx(d, bad[0], bad[1])) : e;
    }
  }

  /** The rows of the first chunk in [lo, hi) that fails to read on its own (to name the corrupt chunk). */
  private locate(d: DatasetInfo, lo: number, hi: number, stationRow: number | null): [number, number] | null {
    const c = d.meta.chunks?.[stationRow === null ? 0 : 1];
    if (!c || d.meta.vlen || hi - lo <= c) return null;
    for (let s = Math.floor(lo / c) * c; s < hi; s += c) {
      const a = Math.max(lo, s);
      const b = Math.min(hi, s + c);
      try {
        readBytes(this.h5, d, a, b, stationRow);
      } catch {
        this.h5.noteError();
        return [a, b];
      }
    }
    return null;
  }

  private datasetValues(d: DatasetInfo, k: ValueKind, lo: number, hi: number, stationRow: number | null, column: number | null = null): Raw | string[] {
    return this.guarded(d, lo, hi, () => {
      if (k.kind === 'vlen-string') {
        const ranges: [number, number][] = stationRow !== null ? [[stationRow, stationRow + 1], [lo, hi]]
          : column !== null ? [[lo, hi], [column, column + 1]] : [[lo, hi]];
        return d.dataset.slice(ranges) as string[];
      }
      const bytes = readBytes(this.h5, d, lo, hi, stationRow, column);
      return k.kind === 'fixed-string' ? bytes : typed(k, bytes, hi - lo);
    }, stationRow);
  }

  /** Reads rows [lo, hi) of a segment's compound dataset; returns a member reader. */
  private compoundReader(seg: Segment, lo: number, hi: number): (m: CompoundMember, k: ValueKind) => Raw | string[] {
    const compound = seg.compound as DatasetInfo;
    const n = hi - lo;
    const members = compound.meta.compound_type?.members ?? [];
    const hasVlen = members.some((m) => m.vlen || m.type === 9);
    if (hasVlen) {
      const rows = this.guarded(compound, lo, hi, () => compound.dataset.slice([[lo, hi]]) as unknown[][]);
      return (m, k) => {
        const idx = members.indexOf(m);
        return k.kind === 'vlen-string' || k.kind === 'fixed-string' ? rows.map((r) => r[idx] as string) : rowsToTyped(rows, idx, k);
      };
    }
    const raw = this.guarded(compound, lo, hi, () => readBytes(this.h5, compound, lo, hi, null));
    return (m, k) => {
      const bytes = memberBytes(raw, compound.meta.size, m, n, compound.path);
      return k.kind === 'fixed-string' ? bytes : typed(k, bytes, n);
    };
  }

  private timeRaw(seg: Segment, lo: number, hi: number, member: ((m: CompoundMember, k: ValueKind) => Raw | string[]) | null): Raw | string[] {
    const t = seg.time;
    if (t.from === 'dataset') return this.datasetValues(t.info, t.kind, lo, hi, null, t.column ?? null);
    return (member ?? this.compoundReader(seg, lo, hi))(t.member, t.kind);
  }

  /** Smallest and largest time value of a segment as stored (one pass over its time source), or null for no rows. */
  timeRange(seg: Segment): ValueRange | null {
    let min: number | bigint | null = null;
    let max: number | bigint | null = null;
    for (let lo = 0; lo < seg.rows; lo += seg.sliceRows) {
      const raw = timeValues(this.timeRaw(seg, lo, Math.min(seg.rows, lo + seg.sliceRows), null), seg.time.kind);
      if (Array.isArray(raw)) return null;
      const values = raw as ArrayLike<number | bigint>;
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (v !== v) continue;
        if (min === null || v < min) min = v;
        if (max === null || v > max) max = v;
      }
    }
    return min === null || max === null ? null : { min, max };
  }

  /** Rows [lo, hi) of a variable that has only `records` rows: those it has, then NULL. */
  private shortRecords(d: DatasetInfo, read: ColumnRead, records: number, lo: number, hi: number): WireColumn {
    const n = hi - lo;
    const have = Math.max(0, Math.min(records, hi) - lo);
    const k = read.kind;
    let raw: Raw | (string | null)[];
    if (k.kind === 'vlen-string') {
      raw = new Array<string | null>(n).fill(null);
      if (have > 0) (this.datasetValues(d, k, lo, lo + have, null) as string[]).forEach((x, i) => { (raw as (string | null)[])[i] = x; });
    } else {
      const width = k.kind === 'fixed-string' ? k.size : 1;
      const part = have > 0 ? this.datasetValues(d, k, lo, lo + have, null) as Raw : null;
      const Ctor = (part ?? typed(k, new Uint8Array(0), 0)).constructor as new (len: number) => Raw & { set(a: ArrayLike<unknown>): void };
      const full = new Ctor(n * width);
      if (part) full.set(part as ArrayLike<unknown>);
      raw = full;
    }
    const col = toColumn(k, read.packing, raw, n);
    const bits = col.validity ?? new Uint8Array(Math.ceil(n / 8)).fill(0xff);
    for (let i = have; i < n; i++) bits[i >> 3] &= ~(1 << (i & 7));
    return { ...col, validity: bits };
  }

  private slice(seg: Segment, lo: number, hi: number): WireBatch {
    const n = hi - lo;
    const member = seg.compound ? this.compoundReader(seg, lo, hi) : null;
    const t = seg.time;
    const timeRaw = this.timeRaw(seg, lo, hi, member);
    const timePath = t.from === 'dataset' ? t.info.path : `${t.path} member ${t.member.name}`;
    const times = convertTimes(timeValues(timeRaw, t.kind), seg.enc, timePath, lo, this.naive);
    this.subMicro += times.subMicro;

    const columns: WireColumn[] = seg.columns.map((c, i) => {
      switch (c.from) {
        case 'null': return nullColumn(n, this.plan.columns[i].type);
        case 'constant': return constantColumn(n, c.value);
        case 'member': {
          const v = (member as NonNullable<typeof member>)(c.member, c.read.kind);
          return toColumn(c.read.kind, c.read.packing, v, n);
        }
        case 'dataset': {
          if (c.records !== undefined && hi > c.records) return this.shortRecords(c.info, c.read, c.records, lo, hi);
          const v = this.datasetValues(c.info, c.read.kind, lo, hi, c.stationRow, c.column ?? null);
          return toColumn(c.read.kind, c.read.packing, v, n);
        }
      }
    });
    return { length: n, time: times.micros, minTime: times.min, maxTime: times.max, columns };
  }
}

/** Time values as convertTimes takes them (fixed strings decoded to JS strings). */
function timeValues(raw: Raw | string[], k: ValueKind): RawTimes {
  if (k.kind === 'fixed-string') {
    const bytes = raw as Uint8Array;
    const out: string[] = new Array(bytes.length / k.size);
    const dec = new TextDecoder();
    for (let i = 0; i < out.length; i++) {
      const s = bytes.subarray(i * k.size, (i + 1) * k.size);
      const z = s.indexOf(0);
      out[i] = dec.decode(z < 0 ? s : s.subarray(0, z)).trim();
    }
    return out;
  }
  if (raw instanceof BigUint64Array) return new BigInt64Array(raw.buffer, raw.byteOffset, raw.length);
  return raw as RawTimes;
}

/** Values of member `idx` from h5wasm's row arrays (compounds with vlen members only). */
function rowsToTyped(rows: unknown[][], idx: number, k: ValueKind): Raw {
  const n = rows.length;
  if (k.kind === 'int64') {
    const out = new BigInt64Array(n);
    for (let i = 0; i < n; i++) out[i] = BigInt(rows[i][idx] as bigint);
    return out;
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = rows[i][idx];
    out[i] = v instanceof Uint8Array ? v[0] : Number(v);
  }
  return out;
}
