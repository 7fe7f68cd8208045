// What every decoder (Arrow, HDF5) offers the ingest pipeline.
import type { ColumnBatch, ColumnRole, ColumnType, StreamColumn } from '../../domain/types.ts';

/** A column as the file describes it, with the type and role Strata would give it. */
export interface SourceColumn {
  name: string;
  /** The type as the file names it, for messages ("Float64", "Timestamp<NANOSECOND, UTC>"). */
  sourceType: string;
  type: ColumnType;
  role: ColumnRole;
  unit: string | null;
}

export interface DecodedSchema {
  /** Storable columns, excluding nothing: the time column is among them if it is storable. */
  columns: SourceColumn[];
  /** Columns that could be the time column. */
  timeCandidates: { name: string; type: string; timezone: string | null }[];
  /** Metadata the file carries (schema metadata, attributes), stored with the ingest. */
  metadata: Record<string, unknown>;
  warnings: string[];
  /** Columns whose types cannot be stored: "name (type)". */
  rejected: string[];
}

export interface Decoder {
  readonly format: string;
  readonly schema: DecodedSchema;
  readonly subMicrosecondCount: number;
  batches(timeColumn: string, bound: ReadonlyMap<string, StreamColumn>): AsyncGenerator<ColumnBatch>;
  close(): Promise<void>;
}
