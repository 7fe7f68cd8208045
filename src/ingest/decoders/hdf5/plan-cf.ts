// Read plan for netCDF-4 files following CF "featureType: timeSeries": the time coordinate, and
// every variable whose only dimension is time (or station × time, one segment per station, with
// the station's id from the cf_role=timeseries_id variable as a tag). xarray's grid — variables
// over (time, station) or (station, time) with a 1-D "station" coordinate and no featureType —
// is read the same way, the coordinate's values as the tag. _FillValue / missing_value
// become NULL and scale_factor / add_offset are applied (values.ts); dimension-only helper
// datasets and other coordinates are skipped.
import { AppError } from '../../../errors/index.ts';
import { type DatasetInfo, type Inspector, describeType, joinPath, normalizePath } from './inspect.ts';
import type { ColumnSpec, Mapping, MappingOrigin } from './mapping.ts';
import type { OpenLimits } from './protocol.ts';
import type { Unmapped } from './plan-table.ts';
import { nullRules } from './missing.ts';
import {
  type ColumnRead, ancestors, checkNames, type ReadPlan, type Segment, type SegmentColumn, checkChunk, checkFilters, checkTotal, columnRead, describeTime,
  checkCalendar, isDimensionHelper, kindOrThrow, listed, mappingError, mappingNulls, reportColumn, reportTime, segmentRowBytes, sliceRowsFor, timeEncoding, unitAttr,
} from './plan.ts';
import { type TimeEncoding, parseSinceUnits } from './time.ts';
import { type ValueKind, valueKindOf } from './values.ts';

function scales(ins: Inspector, d: DatasetInfo, dim: number): string[] {
  try {
    return d.dataset.get_attached_scales(dim);
  } catch {
    ins.h5.noteError();
    return [];
  }
}

function findTime(ins: Inspector, all: DatasetInfo[], group: string, source: string | undefined): DatasetInfo {
  if (source !== undefined) {
    const d = ins.get(source.startsWith('/') ? normalizePath(source) : joinPath(group, source));
    if (!d || d.kind !== 'dataset') throw mappingError(`the mapping's time variable ${source} does not exist in ${group}`);
    return d;
  }
  const since = all.filter((d) => d.shape.length === 1 && parseSinceUnits(ins.stringAttr(d.path, 'units') ?? '') !== null);
  const coord = since.filter((d) => ins.stringAttr(d.path, 'CLASS') === 'DIMENSION_SCALE'
    || ins.stringAttr(d.path, 'standard_name') === 'time' || ins.stringAttr(d.path, 'axis') === 'T');
  for (const list of [coord, since]) {
    if (list.length === 1) return list[0];
    const named = list.filter((d) => d.name === 'time');
    if (named.length === 1) return named[0];
  }
  throw new AppError(422, 'no_time_column',
    `the netCDF file says featureType timeSeries but ${group} has ${since.length > 1 ? 'several' : 'no'} time coordinate(s) with units "<unit> since <instant>" (${since.map((d) => d.path).join(', ') || 'none'}); name it with a mapping's time.source`,
    { detail: { group, candidates: since.map((d) => d.path) } });
}

/** Station ids: one per station (S of them), or a single one for the whole file. */
function stationIds(ins: Inspector, d: DatasetInfo): string[] {
  const kind = valueKindOf(d.meta);
  const joinChars = (xs: string[]): string => xs.join('').replace(/\0+$/, '').trim();
  if (kind.kind === 'fixed-string' && kind.size === 1 && d.shape.length >= 1) {
    // netCDF char(…, name_strlen): characters along the last dimension
    const chars = d.dataset.value as string[];
    const len = d.shape[d.shape.length - 1];
    const out: string[] = [];
    for (let i = 0; i < chars.length; i += len) out.push(joinChars(chars.slice(i, i + len)));
    return d.shape.length === 1 ? [out[0] ?? ''] : out;
  }
  if (d.shape.length > 1) throw new AppError(422, 'unsupported_shape', `station id variable ${d.path} has shape [${d.shape.join(', ')}]`);
  if (d.shape.length === 1 && d.shape[0] > 100_000) throw mappingError(`station id variable ${d.path} has ${d.shape[0]} stations; at most 100000 are read`);
  const v = d.dataset.value as unknown;
  const list = Array.isArray(v) || ArrayBuffer.isView(v) ? Array.from(v as ArrayLike<unknown>) : [v];
  return list.map((x) => (typeof x === 'bigint' ? x.toString() : String(x)));
}

/** Where a variable's station dimension is: first (station, time), second (time, station), or none. */
type StationDim = 'row' | 'column' | null;
interface Var { spec: ColumnSpec; d: DatasetInfo; stationDim: StationDim }
interface CfTime { time: DatasetInfo; n: number; kind: ValueKind; enc: TimeEncoding; name: string }
interface Station { variable: DatasetInfo | null; spec: ColumnSpec | null; ids: string[] }

function cfTime(ins: Inspector, all: DatasetInfo[], group: string, m: Mapping): CfTime {
  const time = findTime(ins, all, group, m.time?.source);
  if (time.shape.length !== 1) throw new AppError(422, 'unsupported_shape', `time coordinate ${time.path} has shape [${time.shape.join(', ')}]; Strata reads a 1-D time coordinate`);
  checkCalendar(ins, time.path);
  const kind = kindOrThrow(valueKindOf(time.meta), `time coordinate ${time.path}`);
  const enc = timeEncoding(kind, m.time, ins.stringAttr(time.path, 'units'), `time coordinate ${time.path}`);
  return { time, n: time.shape[0], kind, enc, name: m.time?.name ?? m.time?.source ?? time.name };
}

const isSinceCoordinate = (ins: Inspector, d: DatasetInfo): boolean => d.shape.length === 1 && parseSinceUnits(ins.stringAttr(d.path, 'units') ?? '') !== null;

/**
 * xarray's grid coordinate: the one 1-D coordinate variable (not time) that 2-D variables have as
 * their other dimension beside a time coordinate, e.g. "station" of temp(time, station). Null when
 * there is none, or more than one (a mapping must choose).
 */
export function gridCoordinate(ins: Inspector, all: DatasetInfo[]): DatasetInfo | null {
  const found = new Set<string>();
  for (const d of all) {
    if (d.shape.length !== 2 || ins.stringAttr(d.path, 'CLASS') === 'DIMENSION_SCALE') continue;
    const dims = [scales(ins, d, 0)[0], scales(ins, d, 1)[0]].map((p) => (p === undefined ? undefined : all.find((x) => x.path === p)));
    if (dims[0] === undefined || dims[1] === undefined) continue;
    const timeAt = dims.findIndex((x) => x !== undefined && isSinceCoordinate(ins, x));
    const other = dims[1 - timeAt];
    if (timeAt >= 0 && other !== undefined && other.shape.length === 1 && !isSinceCoordinate(ins, other)) found.add(other.path);
  }
  return found.size === 1 ? (all.find((x) => found.has(x.path)) ?? null) : null;
}

/** The station id variable (cf_role = timeseries_id, the mapping's one tag, or xarray's grid coordinate) and its ids. */
function cfStation(ins: Inspector, all: DatasetInfo[], group: string, m: Mapping): Station {
  const roles = all.filter((d) => ins.stringAttr(d.path, 'cf_role') === 'timeseries_id');
  const grid = roles.length === 0 && !listed(m.tags) ? gridCoordinate(ins, all) : null;
  const specs: ColumnSpec[] = listed(m.tags) ?? (grid ? [grid] : roles).slice(0, 1).map((d) => ({ source: d.name }));
  if (specs.length > 1) throw mappingError('cf_timeseries takes one station id tag (the cf_role=timeseries_id variable)');
  if (specs.length === 0) return { variable: null, spec: null, ids: [] };
  const v = ins.get(specs[0].source.startsWith('/') ? normalizePath(specs[0].source) : joinPath(group, specs[0].source));
  if (!v || v.kind !== 'dataset') throw mappingError(`the station id variable ${specs[0].source} does not exist in ${group}`);
  return { variable: v, spec: specs[0], ids: stationIds(ins, v) };
}

/** Variables over (time) or (station, time); with explicit fields, exactly those. */
function cfVariables(ins: Inspector, all: DatasetInfo[], m: Mapping, t: CfTime, station: Station): { vars: Var[]; unmapped: Unmapped[] } {
  const isTimeDim = (d: DatasetInfo, dim: number): boolean => {
    const s = scales(ins, d, dim);
    return s.length > 0 ? s.includes(t.time.path) : d.shape[dim] === t.n;
  };
  // the station dimension of a CF file is often a bare netCDF dimension, not the id variable
  const isStationDim = (d: DatasetInfo, dim: number): boolean => d.shape[dim] === Math.max(station.ids.length, 1)
    || (station.variable !== null && scales(ins, d, dim).includes(station.variable.path));
  const unmapped: Unmapped[] = [];
  const vars: Var[] = [];
  const explicit = listed(m.fields);
  const used = new Set([t.time.path, station.variable?.path]);
  for (const d of all) {
    if (used.has(d.path) || ins.stringAttr(d.path, 'CLASS') === 'DIMENSION_SCALE') continue;
    const spec = explicit ? explicit.find((c) => c.source === d.name || c.source === d.path) : { source: d.name };
    if (!spec) continue;
    const oneD = d.shape.length === 1 && isTimeDim(d, 0);
    const twoD = d.shape.length === 2 && isTimeDim(d, 1) && isStationDim(d, 0);
    const twoDByColumn = !twoD && station.variable !== null && d.shape.length === 2 && isTimeDim(d, 0) && isStationDim(d, 1);
    if (oneD || twoD || twoDByColumn) vars.push({ spec, d, stationDim: twoD ? 'row' : twoDByColumn ? 'column' : null });
    else if (explicit) {
      throw new AppError(422, 'unsupported_shape', `variable ${d.path} has shape [${d.shape.join(', ')}]; a timeSeries variable has dimensions (time), (station, time) or (time, station)`,
        { detail: { dataset: d.path, shape: d.shape } });
    } else unmapped.push({ path: d.path, shape: d.shape, type: describeType(d.meta), reason: 'not a variable over time' });
  }
  for (const c of explicit ?? []) if (!vars.some((v) => v.spec === c)) throw mappingError(`the mapping's field ${c.source} is not a variable over time in the file`);
  return { vars, unmapped };
}

export function planCfTimeSeries(ins: Inspector, m: Mapping, origin: MappingOrigin, limits: OpenLimits): ReadPlan & { unmapped: Unmapped[] } {
  const group = normalizePath(m.group ?? '/');
  const all = ins.datasets(group).filter((d) => !isDimensionHelper(ins, d));
  const t = cfTime(ins, all, group, m);
  const station = cfStation(ins, all, group, m);
  const { vars, unmapped } = cfVariables(ins, all, m, t, station);
  const ids = station.ids;
  const stations = vars.some((v) => v.stationDim) ? ids.length : 1;
  if (stations > 1 && ids.length !== stations) throw mappingError(`variables have a station dimension but ${station.variable?.path ?? 'no cf_role=timeseries_id variable'} does not give one id per station`);

  const reads: ColumnRead[] = vars.map((v) => {
    const kind = kindOrThrow(valueKindOf(v.d.meta), `variable ${v.d.path} (${describeType(v.d.meta)})`);
    return columnRead(v.spec, v.d.name, 'field', kind, describeType(v.d.meta), unitAttr(ins, v.d.path), nullRules(ins, v.d.path, kind, mappingNulls(m, v.spec)), `variable ${v.d.path}`);
  });
  const sv = station.variable;
  const tagName = sv ? (station.spec?.name ?? sv.name) : null;
  if (sv && tagName !== null) reads.push({ out: { name: tagName, sourceType: describeType(sv.meta), type: 'text', role: 'tag', unit: null }, kind: { kind: 'vlen-string' }, packing: null, nullWhen: null });
  checkNames(reads, t.name);
  for (const d of [t.time, ...vars.map((v) => v.d)]) { checkFilters(d); checkChunk(d, limits); }
  const chunkRows = Math.max(t.time.meta.chunks?.[0] ?? 1, ...vars.map((v) => v.d.meta.chunks?.[v.stationDim === 'row' ? 1 : 0] ?? 1));
  const segments: Segment[] = [];
  for (let s = 0; s < stations; s++) {
    const columns: SegmentColumn[] = vars.map((v, i) => ({
      from: 'dataset', info: v.d, read: reads[i], stationRow: v.stationDim === 'row' ? s : null, ...(v.stationDim === 'column' ? { column: s } : {}),
    }));
    if (tagName !== null) columns.push({ from: 'constant', value: ids[s] ?? ids[0] ?? '' });
    segments.push({
      label: stations > 1 ? `${group} station ${ids[s]}` : group, rows: t.n, time: { from: 'dataset', info: t.time, kind: t.kind }, enc: t.enc,
      compound: null, columns, sliceRows: sliceRowsFor(chunkRows, segmentRowBytes(t.kind, columns, null), limits),
    });
  }
  checkTotal(segments, limits);
  return {
    columns: reads.map((r) => r.out),
    time: { name: t.name, sourceType: describeTime(t.kind, describeType(t.time.meta), t.enc) },
    segments,
    mapping: {
      origin, layout: 'cf_timeseries', group, time: reportTime(t.time.name, t.name, t.enc),
      fields: vars.map((v, i) => reportColumn({ source: v.d.name }, reads[i])),
      tags: sv && tagName !== null ? [{ source: sv.name, name: tagName, unit: null }] : [],
    },
    provenancePaths: [...ancestors(group), t.time.path, ...(sv ? [sv.path] : []), ...vars.map((v) => v.d.path)],
    warnings: [],
    unmapped,
  };
}
