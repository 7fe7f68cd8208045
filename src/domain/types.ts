// Pure types shared by every stage: what a stream column is, and what the decoders hand to the
// COPY encoder.

/** PostgreSQL column types a stream can hold. */
export type ColumnType = 'float8' | 'float4' | 'int2' | 'int4' | 'int8' | 'bool' | 'text' | 'timestamptz';
export const columnTypes: readonly ColumnType[] = ['float8', 'float4', 'int2', 'int4', 'int8', 'bool', 'text', 'timestamptz'];

export type ColumnRole = 'tag' | 'field';

/** A stream column as the catalog holds it. */
export interface StreamColumn {
  /** The name as the user or the file gave it. */
  name: string;
  /** The safe SQL identifier it is stored under (≤ 63 bytes, unique within the stream). */
  columnName: string;
  role: ColumnRole;
  type: ColumnType;
  unit: string | null;
  description: string | null;
}

/**
 * Validity of a column's rows: a bitmap with an offset in bits (Arrow's layout), or null when
 * every row holds a value.
 */
export interface Validity {
  bitmap: Uint8Array;
  offset: number;
}

export type NumericArray =
  | Float64Array | Float32Array | Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array;

/** Column values, by how they are laid out in memory. */
export type ColumnValues =
  /** float8, float4, int2, int4, and lossless numeric sources for wider targets. */
  | { kind: 'number'; values: NumericArray }
  /** int8 and timestamptz (µs since the Unix epoch); also uint64 sources, checked ≤ 2^63−1. */
  | { kind: 'bigint'; values: BigInt64Array; unsigned?: boolean }
  /** bool: Arrow's bit-packed layout, with a bit offset. */
  | { kind: 'bits'; bitmap: Uint8Array; offset: number }
  /** text from Utf8 / LargeUtf8: offsets into UTF-8 bytes. */
  | { kind: 'utf8'; offsets: Int32Array | Float64Array; data: Uint8Array }
  /** text from Utf8View: 16-byte views plus variadic data buffers. */
  | { kind: 'utf8view'; views: Uint8Array; buffers: readonly Uint8Array[] }
  /** text from a dictionary: UTF-8 encoded dictionary entries and per-row indices. */
  | { kind: 'dictionary'; entries: readonly (Uint8Array | null)[]; indices: NumericArray | BigInt64Array }
  /** text from anything else (HDF5 strings, converted values). */
  | { kind: 'strings'; values: readonly (string | null)[] };

export interface ColumnData {
  /** Index into the stream's columns (the target column). */
  column: StreamColumn;
  values: ColumnValues;
  validity: Validity | null;
}

/** What decoders yield: rows of one record batch (or HDF5 slice) in columnar form. */
export interface ColumnBatch {
  length: number;
  /** Microseconds since 1970-01-01T00:00:00Z; never null. */
  time: BigInt64Array;
  /** Smallest and largest value of `time` (exact). */
  minTime: bigint;
  maxTime: bigint;
  columns: ColumnData[];
  /**
   * Lets the decoder reuse the memory the batch's values are views into. The ingest calls it once
   * the batch's rows are written and every observer has seen them; nothing may read the batch after.
   */
  release?: () => void;
}

/** A stream's definition as the catalog holds it (strata.streams and its columns). */
export interface Stream {
  id: number;
  name: string;
  description: string | null;
  labels: Record<string, unknown>;
  tableName: string;
  timeColumn: string | null;
  chunkIntervalUs: bigint;
  columns: StreamColumn[];
  /** Feature settings by key (see streams/settings.ts), normalised. */
  settings: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}
