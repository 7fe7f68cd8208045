// The HDF5 mapping: which group or dataset of a file holds the series, which dataset or member
// is time (unit, epoch), and which become fields and tags. Given per request (?mapping=), stored
// on the stream (setting "hdf5_mapping"), or detected; the complete mapping used is reported.
// Validated by schemas/hdf5-mapping.schema.json.
import { AppError } from '../../../errors/index.ts';
import { validate } from '../../../validation/json-schemas.ts';
import type { TimeInference, TimeUnit } from './time.ts';

export type Layout = 'flat_group' | 'compound' | 'nxlog' | 'cf_timeseries' | 'pandas_fixed';
export type MappingOrigin = 'auto' | 'request' | 'stream';

export interface TimeSpec {
  source?: string;
  name?: string;
  encoding?: 'number' | 'iso8601';
  unit?: TimeUnit;
  epoch?: string;
  scale?: number;
}

/** Which values of a column were stored as NULL, and by which rule (reported, ignored on input). */
export interface NullWhen {
  /** _FillValue, missing_value, valid_range, valid_min, valid_max, mapping null_values. */
  from: string[];
  /** Exact values ("NaN" for NaN). */
  values?: (number | string)[];
  /** Raw values below this or above that. */
  below?: number;
  above?: number;
  /** A netCDF-4 variable with fewer records than its dimension: rows from this one on are NULL. */
  after_record?: number;
}

export interface ColumnSpec {
  source: string;
  name?: string;
  unit?: string | null;
  time?: TimeSpec;
  /** Values stored as NULL in this column (numbers, "NaN", or text for tags). */
  null_values?: (number | string)[];
  null_when?: NullWhen;
}

export interface Mapping {
  origin?: MappingOrigin;
  layout: Layout;
  group?: string;
  dataset?: string;
  time?: TimeSpec;
  fields?: (string | ColumnSpec)[];
  tags?: (string | ColumnSpec)[];
  /** Values stored as NULL in every field and tag (a column's own null_values are added). */
  null_values?: (number | string)[];
}

/** A mapping with every choice made: what the ingest record shows. */
export interface ResolvedMapping {
  origin: MappingOrigin;
  layout: Layout;
  group?: string;
  dataset?: string;
  time: Required<Pick<TimeSpec, 'source' | 'name' | 'encoding'>> & Pick<TimeSpec, 'unit' | 'epoch' | 'scale'> & { inferred?: TimeInference };
  fields: ColumnSpec[];
  tags: ColumnSpec[];
  /** Multi-column sources split into one column each (pandas values_block_<i>, 2-D datasets). */
  split?: { source: string; columns: string[]; names_from: string }[];
}

/** Checks a mapping against its JSON Schema; `what` names where it came from in messages. */
export function checkMapping(value: unknown, what: string): Mapping {
  const m = validate<Mapping>('hdf5-mapping', value, what, 'invalid_mapping', 400);
  const { origin: _ignored, ...rest } = m;
  return rest;
}

/** The ?mapping= query parameter (URL-decoded JSON). */
export function mappingFromQuery(raw: string | undefined): Mapping | null {
  if (raw === undefined || raw.trim() === '') return null;
  if (raw.length > 65536) throw new AppError(400, 'invalid_mapping', 'the mapping query parameter is longer than 65536 characters');
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new AppError(400, 'invalid_mapping', `the mapping query parameter is not JSON: ${(err as Error).message}`);
  }
  return checkMapping(json, 'the mapping query parameter');
}
