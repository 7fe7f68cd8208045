// Messages between the HDF5 decoder worker and the server thread, and the batch layout that
// crosses between them: typed arrays only, so every buffer is transferred, never copied.
// Text travels dictionary-encoded (packed UTF-8 entries plus per-row indices).
import type { ColumnBatch, ColumnRole, ColumnType, ColumnValues, NumericArray, Validity } from '../../../domain/types.ts';
import type { WireError } from './errors.ts';
import type { Mapping, MappingOrigin, ResolvedMapping } from './mapping.ts';
import type { TimeWindow } from '../epoch-units.ts';
import type { TimeUnit } from './time.ts';

export type WireValues =
  | { kind: 'number'; values: NumericArray }
  | { kind: 'bigint'; values: BigInt64Array; unsigned: boolean }
  | { kind: 'dict'; bytes: Uint8Array; offsets: Int32Array; indices: Int32Array };

export interface WireColumn {
  values: WireValues;
  /** Bit i set = row i holds a value; null = every row does. */
  validity: Uint8Array | null;
}

export interface WireBatch {
  length: number;
  time: BigInt64Array;
  minTime: bigint;
  maxTime: bigint;
  /** In the order of OpenedSchema.columns. */
  columns: WireColumn[];
}

export interface WireSourceColumn {
  name: string;
  sourceType: string;
  type: ColumnType;
  role: ColumnRole;
  unit: string | null;
}

export interface OpenedSchema {
  columns: WireSourceColumn[];
  time: { name: string; sourceType: string };
  mapping: ResolvedMapping;
  metadata: Record<string, unknown>;
  warnings: string[];
  rows: number;
}

export interface OpenLimits {
  /** Bytes of decoded values per batch (slices are whole chunks within this budget). */
  batchBytes: number;
  /** Largest decoded size of one chunk of any dataset read. */
  maxChunkBytes: number;
  /** Largest decoded size of everything the mapping reads. */
  maxDecodedBytes: number;
  /** Request options for times the file does not declare (not limits; carried with them to every planner). */
  time: { unit: TimeUnit | null; window: TimeWindow };
}

export type ToWorker =
  | { type: 'open'; path: string; bytes: number; mapping: Mapping | null; origin: MappingOrigin; limits: OpenLimits }
  | { type: 'credit'; n: number }
  | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; versions: Record<string, string> }
  | { type: 'opened'; schema: OpenedSchema }
  | { type: 'batch'; batch: WireBatch }
  | { type: 'end'; subMicro: number; warnings: string[] }
  | { type: 'error'; error: WireError }
  | { type: 'closed'; heapBytes: number; errors: number };

/** The buffers of a batch, for postMessage's transfer list. */
export function transferables(b: WireBatch): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>([b.time.buffer as ArrayBuffer]);
  for (const c of b.columns) {
    if (c.validity) out.add(c.validity.buffer as ArrayBuffer);
    const v = c.values;
    if (v.kind === 'dict') {
      out.add(v.bytes.buffer as ArrayBuffer);
      out.add(v.offsets.buffer as ArrayBuffer);
      out.add(v.indices.buffer as ArrayBuffer);
    } else {
      out.add(v.values.buffer as ArrayBuffer);
    }
  }
  return [...out];
}

/** A wire column as the COPY encoder reads it. */
export function toColumnValues(c: WireColumn): { values: ColumnValues; validity: Validity | null } {
  const validity = c.validity ? { bitmap: c.validity, offset: 0 } : null;
  const v = c.values;
  if (v.kind === 'number') return { values: { kind: 'number', values: v.values }, validity };
  if (v.kind === 'bigint') return { values: { kind: 'bigint', values: v.values, unsigned: v.unsigned }, validity };
  const entries: Uint8Array[] = new Array(v.offsets.length - 1);
  for (let i = 0; i < entries.length; i++) entries[i] = v.bytes.subarray(v.offsets[i], v.offsets[i + 1]);
  return { values: { kind: 'dictionary', entries, indices: v.indices }, validity };
}

function sliceValues(v: ColumnValues, a: number, b: number): ColumnValues {
  switch (v.kind) {
    case 'number': return { kind: 'number', values: v.values.subarray(a, b) };
    case 'bigint': return { ...v, values: v.values.subarray(a, b) };
    case 'dictionary': return { kind: 'dictionary', entries: v.entries, indices: v.indices.subarray(a, b) };
    case 'strings': return { kind: 'strings', values: v.values.slice(a, b) };
    default: throw new Error(`cannot slice ${v.kind} values`);
  }
}

/** Rows [a, b) of a batch, sharing its buffers (validity keeps its bitmap with a bit offset). */
export function sliceBatch(batch: ColumnBatch, a: number, b: number): ColumnBatch {
  const time = batch.time.subarray(a, b);
  let min = time[0];
  let max = time[0];
  for (let i = 1; i < time.length; i++) {
    const t = time[i];
    if (t < min) min = t;
    else if (t > max) max = t;
  }
  return {
    length: b - a, time, minTime: min, maxTime: max,
    columns: batch.columns.map((c) => ({
      column: c.column,
      values: sliceValues(c.values, a, b),
      validity: c.validity ? { bitmap: c.validity.bitmap, offset: c.validity.offset + a } : null,
    })),
  };
}
