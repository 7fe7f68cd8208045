// A read plan: what the worker reads, slice by slice, for one mapping. Every layout resolves to
// segments (runs of rows read from the same datasets: the whole group, one NXlog, one CF
// station) over a fixed list of output columns; a column a segment does not have is NULL there.
// The checks that need no data — shapes, lengths, types, filters, chunk and total sizes — are
// made here, before anything is read.
import type { CompoundMember } from 'h5wasm/node';
import { AppError } from '../../../errors/index.ts';
import { formatMicros } from '../../../domain/time.ts';
import type { DatasetInfo, Inspector } from './inspect.ts';
import type { ColumnSpec, Mapping, NullWhen, ResolvedMapping } from './mapping.ts';
import type { OpenLimits, WireSourceColumn } from './protocol.ts';
import { type PendingTime, type TimeEncoding, type TimeUnit, parseEpoch, parseSinceUnits, parseTimeUnit } from './time.ts';
import { type KindOrReason, type Packing, type ValueKind, columnTypeOf, valueBytes } from './values.ts';

export interface ColumnRead {
  out: WireSourceColumn;
  kind: ValueKind;
  packing: Packing | null;
  /** Which values become NULL and why (missing.ts), as reported. */
  nullWhen: NullWhen | null;
}

export type SegmentColumn =
  | { from: 'dataset'; info: DatasetInfo; read: ColumnRead; stationRow: number | null; column?: number;
    /** A netCDF-4 variable with fewer records than its unlimited dimension: rows from here on are NULL (netCDF reads them as fill). */
    records?: number }
  | { from: 'member'; member: CompoundMember; read: ColumnRead }
  | { from: 'constant'; value: string }
  | { from: 'null' };

export type TimeSource =
  | { from: 'dataset'; info: DatasetInfo; kind: ValueKind; column?: number }
  | { from: 'member'; member: CompoundMember; kind: ValueKind; path: string };

export interface Segment {
  label: string;
  rows: number;
  sliceRows: number;
  time: TimeSource;
  enc: TimeEncoding;
  /** Set when the columns are members of this compound dataset. */
  compound: DatasetInfo | null;
  columns: SegmentColumn[];
}

export interface ReadPlan {
  columns: WireSourceColumn[];
  time: { name: string; sourceType: string };
  segments: Segment[];
  mapping: ResolvedMapping;
  /** Objects whose attributes go into the ingest's provenance. */
  provenancePaths: string[];
  warnings: string[];
}

export { isTimeLikeName } from '../epoch-units.ts';
/** netCDF-4 writes dimensions without a variable as datasets with this NAME: helpers, not data. */
export const NETCDF_DIM_ONLY = 'This is a netCDF dimension but not a netCDF variable';

export function mappingError(message: string, detail?: Record<string, unknown>): AppError {
  return new AppError(422, 'mapping_failed', message, { detail });
}

export function isDimensionHelper(ins: Inspector, d: DatasetInfo): boolean {
  return (ins.stringAttr(d.path, 'NAME') ?? '').startsWith(NETCDF_DIM_ONLY);
}

export function kindOrThrow(k: KindOrReason, what: string): ValueKind {
  if (k.kind === 'unsupported') {
    throw new AppError(422, 'unsupported_type', `${what} cannot be stored: ${k.reason}; leave it out with a mapping that lists the fields to take`,
      { detail: { source: what } });
  }
  return k;
}

export function isStringKind(k: ValueKind): boolean {
  return k.kind === 'fixed-string' || k.kind === 'vlen-string';
}

/** Builds a column for a source: its stream name, type, role and unit. */
export function columnRead(spec: ColumnSpec, defaultName: string, role: 'tag' | 'field', kind: ValueKind,
  sourceType: string, unit: string | null, rules: { packing: Packing | null; report: NullWhen | null }, what: string): ColumnRead {
  const packing = rules.packing;
  if (role === 'tag' && !(isStringKind(kind) || kind.kind === 'label')) {
    throw mappingError(`${what} (${sourceType}) cannot be a tag: tags hold text (strings or enum labels); list it under fields`);
  }
  return {
    out: {
      name: spec.name ?? defaultName, sourceType, type: columnTypeOf(kind, packing !== null && (packing.scale !== null || packing.offset !== null)),
      role, unit: role === 'tag' ? null : (spec.unit !== undefined ? spec.unit : unit),
    },
    kind, packing, nullWhen: rules.report,
  };
}

/** A column as the resolved mapping reports it. */
export function reportColumn(spec: ColumnSpec, read: ColumnRead): ColumnSpec {
  const c: ColumnSpec = { source: spec.source, name: read.out.name, unit: read.out.unit };
  if (read.nullWhen) c.null_when = read.nullWhen;
  return c;
}

/** The mapping's null values for one column: its own and the mapping-wide ones. */
export function mappingNulls(m: Mapping, spec: ColumnSpec): (number | string)[] {
  return [...(m.null_values ?? []), ...(spec.null_values ?? [])];
}

/** The explicit list, or null when the mapping leaves the choice to the rules. */
export function listed(list: (string | ColumnSpec)[] | undefined): ColumnSpec[] | null {
  return list === undefined ? null : list.map((c) => (typeof c === 'string' ? { source: c } : c));
}

/** What the planners know for a time whose file may not declare its unit (time-inference.ts). */
export interface InferOptions {
  name: string;
  start: PendingTime['start'];
  /** ?time_unit= of the request. */
  requested: TimeUnit | null;
}

/**
 * Reads how a numeric or string time source becomes instants, from the mapping and then the file.
 * With `infer`, a unit or epoch the file does not declare is left pending (decided from the values).
 */
export function timeEncoding(kind: ValueKind, spec: Mapping['time'], unitsText: string | null, what: string, extra?: {
  start?: string | null; scale?: number | null; infer?: InferOptions;
}): TimeEncoding {
  if (isStringKind(kind)) {
    if (spec?.encoding === 'number') throw mappingError(`${what} holds strings, but the mapping reads it as numbers`);
    return { encoding: 'iso8601', unit: 'us', epochUs: 0n, scale: 1 };
  }
  if (kind.kind !== 'float' && kind.kind !== 'int' && kind.kind !== 'int64') {
    throw mappingError(`${what} has type ${kind.kind}; a time must be numbers with a unit, or ISO 8601 strings`);
  }
  if (spec?.encoding === 'iso8601') throw mappingError(`${what} holds numbers, but the mapping reads it as ISO 8601 strings`);
  const since = unitsText ? parseSinceUnits(unitsText) : null;
  const plainUnit = unitsText && !since ? parseTimeUnit(unitsText) : null;
  const requested = extra?.infer?.requested ?? null;
  const unit: TimeUnit | null = spec?.unit ?? requested ?? since?.unit ?? plainUnit;
  let epochUs: bigint | null = null;
  let epochSubNs = 0;
  if (spec?.epoch !== undefined) {
    epochUs = parseEpoch(spec.epoch);
    if (epochUs === null) throw new AppError(400, 'invalid_mapping', `time.epoch ${JSON.stringify(spec.epoch)} is not an ISO 8601 instant`);
  } else if (since) {
    epochUs = since.epochUs;
    epochSubNs = since.epochSubNs;
  } else if (extra?.start) {
    epochUs = parseEpoch(extra.start);
    if (epochUs === null) throw mappingError(`${what}: its start ${JSON.stringify(extra.start)} is not an ISO 8601 instant`);
  }
  const scale = spec?.scale ?? extra?.scale ?? 1;
  const undeclared = unitsText === null || plainUnit !== null;
  if ((unit === null || epochUs === null) && extra?.infer && undeclared) {
    const unitFrom = spec?.unit ? 'mapping' : requested ? 'request' : plainUnit ? 'units' : null;
    if (unit !== null && epochUs !== null) return { encoding: 'number', unit, epochUs, scale };
    return {
      encoding: 'number', unit: unit ?? 's', epochUs: 0n, scale,
      pending: { name: extra.infer.name, unit, unitFrom, start: extra.infer.start },
    };
  }
  if (unit === null || epochUs === null) {
    const found = unitsText ? `its units are ${JSON.stringify(unitsText)}` : 'it has no units attribute';
    throw mappingError(`${what} holds numbers, but ${found}; Strata needs units "<unit> since <instant>" (e.g. "seconds since 2024-01-01T00:00:00Z") or a mapping giving time.unit and time.epoch`,
      { time: what, units: unitsText });
  }
  return { encoding: 'number', unit, epochUs, scale, ...(epochSubNs && unit === 'ns' ? { epochSubNs } : {}) };
}

const CALENDARS = ['standard', 'gregorian', 'proleptic_gregorian'];

/** CF calendars whose days are the proleptic Gregorian calendar's; any other (noleap, 360_day …) is refused. */
export function checkCalendar(ins: Inspector, path: string): void {
  const calendar = ins.stringAttr(path, 'calendar');
  if (calendar && !CALENDARS.includes(calendar.trim().toLowerCase())) {
    throw new AppError(422, 'unsupported_calendar',
      `time ${path} uses calendar ${JSON.stringify(calendar)}, whose dates are not real instants; Strata reads the calendars ${CALENDARS.join(', ')}; convert the times (e.g. xarray's convert_calendar("standard")) before uploading`,
      { detail: { dataset: path, calendar } });
  }
}

export function describeTime(kind: ValueKind, sourceType: string, enc: TimeEncoding): string {
  if (enc.encoding === 'iso8601') return `${sourceType} (ISO 8601)`;
  const scale = enc.scale !== 1 ? ` × ${enc.scale}` : '';
  return `${sourceType}${scale} ${enc.unit} since ${formatMicros(enc.epochUs)}`;
}

/** The resolved time part of a mapping, as reported. */
export function reportTime(source: string, name: string, enc: TimeEncoding): ResolvedMapping['time'] {
  if (enc.encoding === 'iso8601') return { source, name, encoding: 'iso8601' };
  const t: ResolvedMapping['time'] = { source, name, encoding: 'number', unit: enc.unit, epoch: formatMicros(enc.epochUs) };
  if (enc.scale !== 1) t.scale = enc.scale;
  if (enc.inferred) t.inferred = enc.inferred;
  return t;
}

const BLOSC_CODECS = ['blosclz', 'lz4', 'lz4hc', 'snappy', 'zlib', 'zstd'];

/**
 * Refuses, before reading, filter settings known to crash the decoder (blosc with zlib aborts
 * the wasm module; with snappy it fails). A filter with no plugin at all (lzo …) is reported
 * by HDF5 itself on the first read (errors.ts), naming the filter.
 */
export function checkFilters(d: DatasetInfo): void {
  for (const f of d.filters) {
    if (f.id === 32001 && f.cd_values.length > 6 && (f.cd_values[6] === 3 || f.cd_values[6] === 4)) {
      const codec = BLOSC_CODECS[f.cd_values[6]];
      throw new AppError(422, 'missing_filter', `dataset ${d.path} is compressed with blosc:${codec}, which Strata's blosc plugin cannot decode; use blosc with blosclz, lz4, lz4hc or zstd`,
        { detail: { dataset: d.path, filter: `blosc:${codec}`, filter_id: f.id } });
    }
  }
}

/** Refuses chunks whose decoded size exceeds the limit (a 1 KB file can declare a 1 GB chunk). */
export function checkChunk(d: DatasetInfo, limits: OpenLimits): void {
  const chunks = d.meta.chunks;
  if (!chunks) return;
  const bytes = chunks.reduce((a, b) => a * b, 1) * d.meta.size;
  if (bytes > limits.maxChunkBytes) {
    throw new AppError(413, 'chunk_too_large',
      `dataset ${d.path} has chunks of ${bytes} bytes decoded; the limit is ${limits.maxChunkBytes} (64 MiB, or STRATA_MAX_BATCH_BYTES if smaller)`,
      { detail: { dataset: d.path, chunk_bytes: bytes, limit: limits.maxChunkBytes } });
  }
}

/** Rows per slice: whole chunks along the row axis, within the batch byte budget. */
export function sliceRowsFor(chunkRows: number, rowBytes: number, limits: OpenLimits): number {
  const chunk = Math.max(1, chunkRows);
  const fit = Math.floor(limits.batchBytes / Math.max(1, rowBytes));
  const rows = Math.max(chunk, Math.floor(fit / chunk) * chunk);
  return Math.min(rows, Math.max(chunk, 1 << 20));
}

export function segmentRowBytes(time: ValueKind, columns: SegmentColumn[], compound: DatasetInfo | null): number {
  if (compound) return compound.meta.size + columns.length * 4;
  let bytes = valueBytes(time) + 8;
  for (const c of columns) bytes += c.from === 'dataset' ? valueBytes(c.read.kind) + 1 : 1;
  return bytes;
}

/** Checks the plan's total decoded size against the limit (declared shapes can be enormous). */
export function checkTotal(segments: Segment[], limits: OpenLimits): void {
  let total = 0;
  for (const s of segments) total += s.rows * segmentRowBytes(s.time.kind, s.columns, s.compound);
  if (total > limits.maxDecodedBytes) {
    throw new AppError(413, 'body_too_large',
      `the mapped datasets declare ${segments.reduce((a, s) => a + s.rows, 0)} rows, about ${total} bytes decoded; the limit is ${limits.maxDecodedBytes} (STRATA_MAX_INFLATED_BYTES)`,
      { detail: { decoded_bytes: total, limit: limits.maxDecodedBytes } });
  }
}

/** Unit of a column from the file: a `units` attribute that is not a "since" time unit. */
export function unitAttr(ins: Inspector, path: string, name = 'units'): string | null {
  const u = ins.stringAttr(path, name);
  return u === null || u.length > 256 ? null : u;
}

export function checkNames(reads: ColumnRead[], timeName: string): void {
  const seen = new Set([timeName]);
  for (const r of reads) {
    if (seen.has(r.out.name)) throw mappingError(`two columns would be named ${JSON.stringify(r.out.name)}; rename one with a mapping ({"source": …, "name": …})`);
    seen.add(r.out.name);
  }
}

/** A path and every group above it, root first (their attributes go into provenance). */
export function ancestors(path: string): string[] {
  const parts = path.split('/').filter(Boolean);
  return ['/', ...parts.map((_, i) => `/${parts.slice(0, i + 1).join('/')}`)];
}
