// Binds an upload's columns to its stream: picks the time column, checks each column's type
// against the stream's declared type, and lists the columns the stream must gain.
import { AppError } from '../errors/index.ts';
import type { ColumnType, StreamColumn } from '../domain/types.ts';
import type { Stream, NewColumn } from '../streams/catalog.ts';
import { assertColumnName } from '../streams/identifiers.ts';
import type { DecodedSchema, SourceColumn } from './decoders/decoder.ts';

/** Lossless widenings an upload may rely on: a column declared int8 accepts int2 and int4 data. */
const WIDENS_TO: Record<ColumnType, readonly ColumnType[]> = {
  int2: ['int2', 'int4', 'int8', 'float4', 'float8'],
  int4: ['int4', 'int8', 'float8'],
  int8: ['int8'],
  float4: ['float4', 'float8'],
  float8: ['float8'],
  bool: ['bool'],
  text: ['text'],
  timestamptz: ['timestamptz'],
};

export function canStore(source: ColumnType, target: ColumnType): boolean {
  return WIDENS_TO[source].includes(target);
}

/** Chooses the time column: ?time_column=, the stream's, the only timestamp, time/timestamp, the only zoned one. */
export function chooseTimeColumn(schema: DecodedSchema, requested: string | undefined, stream: Stream | null): string {
  const candidates = schema.timeCandidates;
  const list = (): string => candidates.length === 0 ? 'none' : candidates.map((c) => `${JSON.stringify(c.name)} (${c.type})`).join(', ');
  if (requested !== undefined) {
    const found = candidates.find((c) => c.name === requested);
    if (!found) {
      throw new AppError(422, 'no_time_column',
        `time_column ${JSON.stringify(requested)} is not a timestamp column of this upload; timestamp columns: ${list()}`,
        { detail: { candidates: candidates.map((c) => c.name) } });
    }
    return requested;
  }
  if (stream?.timeColumn && candidates.some((c) => c.name === stream.timeColumn)) return stream.timeColumn;
  if (candidates.length === 1) return candidates[0].name;
  if (candidates.length === 0) {
    throw new AppError(422, 'no_time_column',
      `the upload has no timestamp column; columns: ${schema.columns.map((c) => `${JSON.stringify(c.name)} (${c.sourceType})`).join(', ') || 'none'}`,
      { detail: { columns: schema.columns.map((c) => c.name) } });
  }
  const named = candidates.filter((c) => c.name === 'time' || c.name === 'timestamp');
  if (named.length === 1) return named[0].name;
  const zoned = candidates.filter((c) => c.timezone);
  if (zoned.length === 1) return zoned[0].name;
  throw new AppError(422, 'ambiguous_time_column',
    `several columns could be the time column: ${list()}; choose one with ?time_column=`,
    { detail: { candidates: candidates.map((c) => c.name) } });
}

export interface Binding {
  /** Source column name → stream column, for columns already in the stream. */
  bound: Map<string, StreamColumn>;
  /** Columns the stream must gain before the upload can be stored. */
  added: NewColumn[];
}

/** Checks the upload's columns against the stream's, naming the first clash. */
export function bindColumns(schema: DecodedSchema, timeColumn: string, stream: Stream | null, streamName: string): Binding {
  if (schema.rejected.length > 0) {
    throw new AppError(422, 'unsupported_type',
      `cannot store column ${schema.rejected.join(', ')}; README.md "Arrow types" lists what Strata stores`,
      { detail: { columns: schema.rejected } });
  }
  assertColumnName(timeColumn, `stream ${JSON.stringify(streamName)}`);
  const existing = new Map((stream?.columns ?? []).map((c) => [c.name, c]));
  const bound = new Map<string, StreamColumn>();
  const added: NewColumn[] = [];
  const clashes: string[] = [];
  for (const col of schema.columns) {
    if (col.name === timeColumn) continue;
    assertColumnName(col.name, `stream ${JSON.stringify(streamName)}`);
    const have = existing.get(col.name);
    if (!have) {
      added.push({ name: col.name, role: col.role, type: col.type, unit: col.unit });
      continue;
    }
    if (!canStore(col.type, have.type) || (have.type === 'int8' && col.unit !== null && have.unit !== null && col.unit !== have.unit)) {
      clashes.push(describeClash(col, have));
      continue;
    }
    bound.set(col.name, have);
  }
  if (clashes.length > 0) {
    throw new AppError(409, 'schema_clash',
      `the upload does not match stream ${JSON.stringify(streamName)}: ${clashes.join('; ')}`,
      { detail: { clashes } });
  }
  return { bound, added };
}

function describeClash(col: SourceColumn, have: StreamColumn): string {
  const unit = (u: string | null): string => (u ? ` in ${u}` : '');
  return `column ${JSON.stringify(col.name)} is ${col.type}${unit(col.unit)} (${col.sourceType}) in the upload but ${have.type}${unit(have.unit)} in the stream`;
}
