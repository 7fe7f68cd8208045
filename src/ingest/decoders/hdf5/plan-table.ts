// Read plans for the two table-like layouts: a group of equal-length 1-D datasets (one of them
// time), and a 1-D compound dataset (one row per sample, PyTables tables included) with a time
// member. Field names are the dataset or member names.
import type { CompoundMember } from 'h5wasm/node';
import { AppError } from '../../../errors/index.ts';
import { type DatasetInfo, type Inspector, describeType, joinPath, normalizePath } from './inspect.ts';
import type { ColumnSpec, Mapping, MappingOrigin } from './mapping.ts';
import type { OpenLimits } from './protocol.ts';
import {
  type ColumnRead, type ReadPlan, type SegmentColumn, ancestors, checkCalendar, checkChunk, checkNames, checkFilters, checkTotal, columnRead, describeTime,
  isDimensionHelper, isStringKind, isTimeLikeName, kindOrThrow, listed, mappingError, mappingNulls, reportColumn, reportTime, segmentRowBytes, sliceRowsFor, timeEncoding, unitAttr,
} from './plan.ts';
import { type TimeEncoding, parseSinceUnits } from './time.ts';
import { type ValueKind, valueKindOf } from './values.ts';
import { nullRules } from './missing.ts';
import { findStart } from './time-inference.ts';
import { pandasTableMembers } from './plan-pandas.ts';

export interface Unmapped { path: string; shape: number[]; type: string; reason: string }

/** Preference among several time candidates: time or timestamp, other time names, units. */
function nameRank(name: string): number {
  const n = name.toLowerCase();
  if (n === 'time' || n === 'timestamp') return 0;
  return isTimeLikeName(name) ? 1 : 2;
}

/** pandas' to_hdf table: the DatetimeIndex is member "index", int64 ns, with index_kind "datetime64". */
export function isPandasIndex(ins: Inspector, path: string, member: string): boolean {
  return member === 'index' && /^datetime64/.test(ins.stringAttr(path, 'index_kind') ?? '');
}

function isTimeCandidate(ins: Inspector, d: DatasetInfo): boolean {
  if (d.shape.length !== 1) return false;
  if (isTimeLikeName(d.name)) return true;
  const units = ins.stringAttr(d.path, 'units');
  return units !== null && parseSinceUnits(units) !== null;
}

/** The single time dataset of a group, by the mapping, by name, or by a "since" unit. */
export function findTimeDataset(ins: Inspector, group: string, all: DatasetInfo[], source: string | undefined): DatasetInfo {
  if (source !== undefined) {
    const p = source.startsWith('/') ? normalizePath(source) : joinPath(group, source);
    const d = ins.get(p);
    if (!d || d.kind !== 'dataset') throw mappingError(`the mapping's time dataset ${p} does not exist`, { time: p });
    return d;
  }
  const candidates = all.filter((d) => isTimeCandidate(ins, d));
  if (candidates.length === 1) return candidates[0];
  for (const rank of [0, 1, 2]) {
    const named = candidates.filter((d) => nameRank(d.name) === rank);
    if (named.length === 1) return named[0];
    if (named.length > 1) break;
  }
  if (candidates.length > 1) {
    throw mappingError(`group ${group} has several time datasets (${candidates.map((d) => d.path).join(', ')}); choose one with a mapping's time.source`);
  }
  throw new AppError(422, 'no_time_column',
    `group ${group} has no time dataset: none is named time, timestamp, t, epoch or datetime (or time_s, time_ms …), and none has units "<unit> since <instant>"; datasets: ${all.map((d) => `${d.path} [${d.shape.join('×')}] ${describeType(d.meta)}`).join(', ') || 'none'}; name the time dataset with a mapping`,
    { detail: { group, datasets: all.map((d) => d.path) } });
}

/** Most columns one 2-D dataset is split into. */
const MAX_SPLIT = 1024;
/** Dataset attributes that may name the columns of a 2-D dataset, in order of preference. */
const NAME_ATTRS = ['channel_names', 'column_names', 'columns', 'labels', 'names', 'channels', 'legend'];

/** The k names of a 2-D dataset's columns: from an attribute listing them, else <name>_<i>. */
function splitNames(ins: Inspector, d: DatasetInfo, k: number): { names: string[]; from: string } {
  const attrs = ins.attrs(d.path);
  for (const a of NAME_ATTRS) {
    const v = attrs[a];
    let list: unknown[] | null = Array.isArray(v) ? v : null;
    if (typeof v === 'string') list = v.includes(',') ? v.split(',') : v.split(/\s+/);
    if (!list || list.length !== k || !list.every((x) => typeof x === 'string')) continue;
    const names = (list as string[]).map((x) => x.replace(/\0+$/, '').trim());
    if (names.some((x) => x === '' || x.length > 200) || new Set(names).size !== k) continue;
    return { names, from: `attribute ${a}` };
  }
  return { names: Array.from({ length: k }, (_, i) => `${d.name}_${i}`), from: `generated (${d.name}_<i>): no attribute ${NAME_ATTRS.slice(0, 3).join(', ')} … lists ${k} names` };
}

/**
 * A 2-D dataset beside a 1-D time of n rows (h5py's channels[n×k] without dimension scales): one
 * column per channel, time along the axis of length n (the first when both are). Null when the
 * dataset is not 2-D.
 */
function splitChannels(ins: Inspector, d: DatasetInfo, n: number, timePath: string): { k: number; byRow: boolean; names: string[]; from: string } | null {
  if (d.shape.length !== 2) return null;
  const [a, b] = d.shape;
  if (a !== n && b !== n) {
    throw new AppError(422, 'shape_mismatch',
      `dataset ${d.path} has shape [${a}, ${b}], and neither axis has the ${n} rows of the time dataset ${timePath}; a 2-D dataset is read as one field per column along the time axis`,
      { detail: { dataset: d.path, shape: d.shape, time: timePath, time_rows: n } });
  }
  const byRow = a !== n; // [k, n]: channel j is row j
  const k = byRow ? a : b;
  if (k > MAX_SPLIT || k < 1) {
    throw new AppError(422, 'unsupported_shape', `dataset ${d.path} has shape [${a}, ${b}]: ${k} columns, more than the ${MAX_SPLIT} Strata splits a 2-D dataset into; leave it out with a mapping that lists the fields`,
      { detail: { dataset: d.path, shape: d.shape } });
  }
  return { k, byRow, ...splitNames(ins, d, k) };
}

const unlimited = (d: DatasetInfo): boolean => (d.meta.maxshape?.[0] ?? 0) >= 2 ** 63;

function firstNumber(v: unknown): number | null {
  const x = Array.isArray(v) || ArrayBuffer.isView(v) ? (v as ArrayLike<unknown>)[0] : v;
  return typeof x === 'number' ? x : typeof x === 'bigint' ? Number(x) : null;
}

/**
 * A netCDF-4 variable on the time's unlimited dimension with fewer records than the time (its
 * later records were never written): netCDF reads the missing records as fill, so they are NULL.
 */
function shortRecords(ins: Inspector, d: DatasetInfo, n: number, time: DatasetInfo): boolean {
  if (d.shape.length !== 1 || d.shape[0] >= n || !unlimited(d) || !unlimited(time) || !ins.isNetcdf4Variable(d.path)) return false;
  const dim = firstNumber(ins.attrs(d.path)._Netcdf4Coordinates);
  const timeDim = firstNumber(ins.attrs(time.path)._Netcdf4Dimid) ?? firstNumber(ins.attrs(time.path)._Netcdf4Coordinates);
  return dim === null || timeDim === null || dim === timeDim;
}

function checkSeries(d: DatasetInfo, n: number, timePath: string): void {
  if (d.shape.length !== 1) {
    throw new AppError(422, 'unsupported_shape',
      `dataset ${d.path} has shape [${d.shape.join(', ')}]; Strata stores 1-D datasets of one value per time in ${timePath} (${n} rows); leave it out with a mapping that lists the fields`,
      { detail: { dataset: d.path, shape: d.shape } });
  }
  if (d.shape[0] !== n) {
    throw new AppError(422, 'shape_mismatch',
      `dataset ${d.path} has ${d.shape[0]} rows but the time dataset ${timePath} has ${n}; every field needs one value per time`,
      { detail: { dataset: d.path, rows: d.shape[0], time: timePath, time_rows: n } });
  }
}

interface Chosen { spec: ColumnSpec; role: 'tag' | 'field' }

/** Which sources become fields and tags: the mapping's lists, else every eligible source by type. */
function chooseSources<T>(m: Mapping, all: T[], nameOf: (t: T) => string, isString: (t: T) => boolean): Chosen[] {
  const fields = listed(m.fields);
  const tags = listed(m.tags);
  const out: Chosen[] = [];
  const used = new Set([...(fields ?? []), ...(tags ?? [])].map((c) => c.source));
  for (const c of fields ?? []) out.push({ spec: c, role: 'field' });
  for (const c of tags ?? []) out.push({ spec: c, role: 'tag' });
  for (const t of all) {
    const name = nameOf(t);
    if (used.has(name)) continue;
    if (isString(t) ? tags === null : fields === null) out.push({ spec: { source: name }, role: isString(t) ? 'tag' : 'field' });
  }
  return out;
}


function flatTime(ins: Inspector, group: string, all: DatasetInfo[], m: Mapping, limits: OpenLimits): { time: DatasetInfo; n: number; timeKind: ValueKind; enc: TimeEncoding; timeName: string } {
  const time = findTimeDataset(ins, group, all, m.time?.source);
  if (time.shape.length !== 1) {
    throw new AppError(422, 'unsupported_shape', `time dataset ${time.path} has shape [${time.shape.join(', ')}]; a time dataset must be 1-D`, { detail: { dataset: time.path, shape: time.shape } });
  }
  const timeKind = kindOrThrow(valueKindOf(time.meta), `time dataset ${time.path}`);
  checkCalendar(ins, time.path);
  const enc = timeEncoding(timeKind, m.time, ins.stringAttr(time.path, 'units'), `time dataset ${time.path}`,
    { infer: { name: time.name, start: findStart(ins, time.path), requested: limits.time.unit } });
  return { time, n: time.shape[0], timeKind, enc, timeName: m.time?.name ?? m.time?.source ?? time.name };
}

export function planFlatGroup(ins: Inspector, m: Mapping, origin: MappingOrigin, limits: OpenLimits): ReadPlan & { unmapped: Unmapped[] } {
  const group = normalizePath(m.group ?? '/');
  const g = ins.get(group);
  if (!g || g.kind !== 'group') throw mappingError(`the mapping's group ${group} does not exist in the file`, { group });
  const all = ins.datasets(group).filter((d) => !isDimensionHelper(ins, d));
  const { time, n, timeKind, enc, timeName } = flatTime(ins, group, all, m, limits);
  const unmapped: Unmapped[] = [];
  const candidates = all.filter((d) => d.path !== time.path && (d.shape.length > 0 || (unmapped.push({ path: d.path, shape: d.shape, type: describeType(d.meta), reason: 'scalar' }), false)));
  const kinds = new Map(candidates.map((d) => [d.name, valueKindOf(d.meta)]));
  const chosen = chooseSources(m, candidates, (d) => d.name, (d) => {
    const k = kinds.get(d.name);
    return k !== undefined && k.kind !== 'unsupported' && isStringKind(k);
  });
  const columns: SegmentColumn[] = [];
  const reads: ColumnRead[] = [];
  const reported: { role: 'tag' | 'field'; spec: ColumnSpec; read: ColumnRead }[] = [];
  const splits: NonNullable<ReadPlan['mapping']['split']> = [];
  const warnings: string[] = [];
  const rel = (p: string): string => (p.startsWith(`${group === '/' ? '' : group}/`) ? p.slice(group === '/' ? 1 : group.length + 1) : p);
  for (const { spec, role } of chosen) {
    const p = spec.source.startsWith('/') ? normalizePath(spec.source) : joinPath(group, spec.source);
    const d = ins.get(p);
    if (!d || d.kind !== 'dataset') {
      throw mappingError(`the mapping's ${role} ${p} is not a dataset in the file; datasets in ${group}: ${all.map((x) => x.name).join(', ')}`, { source: p });
    }
    const split = splitChannels(ins, d, n, time.path);
    if (split) {
      const kind = kindOrThrow(valueKindOf(d.meta), `dataset ${d.path} (${describeType(d.meta)})`);
      split.names.forEach((name, j) => {
        const one = { ...spec, name: undefined };
        const read = columnRead(one, name, role, kind, describeType(d.meta), unitAttr(ins, d.path), nullRules(ins, d.path, kind, mappingNulls(m, spec)), `dataset ${d.path} column ${j}`);
        reads.push(read);
        columns.push(split.byRow ? { from: 'dataset', info: d, read, stationRow: j } : { from: 'dataset', info: d, read, stationRow: null, column: j });
        reported.push({ role, spec: one, read });
      });
      splits.push({ source: rel(d.path), columns: split.names, names_from: split.from });
      continue;
    }
    const short = shortRecords(ins, d, n, time);
    if (!short) checkSeries(d, n, time.path);
    const kind = kindOrThrow(valueKindOf(d.meta), `dataset ${d.path} (${describeType(d.meta)})`);
    const read = columnRead(spec, d.name, role, kind, describeType(d.meta), unitAttr(ins, d.path), nullRules(ins, d.path, kind, mappingNulls(m, spec)), `dataset ${d.path}`);
    if (short) {
      read.nullWhen = { ...(read.nullWhen ?? { from: [] }), from: [...(read.nullWhen?.from ?? []), 'records never written'], after_record: d.shape[0] };
      warnings.push(`${d.path} has ${d.shape[0]} records where ${time.path} has ${n}: netCDF reads the others as fill, stored as NULL`);
    }
    reads.push(read);
    columns.push(short ? { from: 'dataset', info: d, read, stationRow: null, records: d.shape[0] } : { from: 'dataset', info: d, read, stationRow: null });
    reported.push({ role, spec, read });
  }
  checkNames(reads, timeName);
  const read = [time, ...columns.map((c) => (c as { info: DatasetInfo }).info)];
  for (const d of read) { checkFilters(d); checkChunk(d, limits); }
  const chunkRows = Math.max(1, ...read.map((d) => d.meta.chunks?.[0] ?? 1));
  const segment = {
    label: group, rows: n, time: { from: 'dataset' as const, info: time, kind: timeKind }, enc, compound: null, columns,
    sliceRows: sliceRowsFor(chunkRows, segmentRowBytes(timeKind, columns, null), limits),
  };
  checkTotal([segment], limits);
  return {
    columns: reads.map((r) => r.out),
    time: { name: timeName, sourceType: describeTime(timeKind, describeType(time.meta), enc) },
    segments: [segment],
    mapping: {
      origin, layout: 'flat_group', group, time: reportTime(rel(time.path), timeName, enc),
      fields: reported.filter((c) => c.role === 'field').map((c) => reportColumn(c.spec, c.read)),
      tags: reported.filter((c) => c.role === 'tag').map((c) => reportColumn(c.spec, c.read)),
      ...(splits.length > 0 ? { split: splits } : {}),
    },
    provenancePaths: [...ancestors(group), ...read.map((d) => d.path)],
    warnings,
    unmapped,
  };
}

const PANDAS_NS = 'nanoseconds since 1970-01-01T00:00:00Z';

function memberUnits(ins: Inspector, path: string, member: string): string | null {
  return ins.stringAttr(path, `${member}_units`) ?? ins.stringAttr(path, `${member}_unit`);
}

function findTimeMember(ins: Inspector, d: DatasetInfo, members: CompoundMember[], source: string | undefined,
  unitsOf: (x: CompoundMember) => string | null): CompoundMember {
  if (source !== undefined) {
    const found = members.find((x) => x.name === source);
    if (!found) throw mappingError(`compound dataset ${d.path} has no member ${JSON.stringify(source)}; members: ${members.map((x) => x.name).join(', ')}`);
    return found;
  }
  const pandas = members.filter((x) => isPandasIndex(ins, d.path, x.name));
  if (pandas.length === 1) return pandas[0];
  const byName = members.filter((x) => isTimeLikeName(x.name));
  if (byName.length === 1) return byName[0];
  const bare = byName.filter((x) => nameRank(x.name) === 0);
  if (bare.length === 1) return bare[0];
  const bySince = members.filter((x) => { const u = unitsOf(x); return u !== null && parseSinceUnits(u) !== null; });
  if (bySince.length === 1) return bySince[0];
  throw new AppError(422, 'no_time_column',
    `compound dataset ${d.path} has ${byName.length + bySince.length > 1 ? 'several time members' : 'no time member'} (named time or timestamp, or with a "<member>_units" attribute "<unit> since <instant>"); members: ${members.map((x) => `${x.name} (${describeType(x)})`).join(', ')}; name it with a mapping's time.source`,
    { detail: { dataset: d.path, members: members.map((x) => x.name) } });
}

export function planCompound(ins: Inspector, m: Mapping, origin: MappingOrigin, limits: OpenLimits): ReadPlan & { unmapped: Unmapped[] } {
  const path = normalizePath(m.dataset ?? '/');
  const d = ins.get(path);
  if (!d || d.kind !== 'dataset') throw mappingError(`the mapping's dataset ${path} does not exist in the file`, { dataset: path });
  if (d.meta.type !== 6) throw mappingError(`dataset ${path} is ${describeType(d.meta)}, not a compound (table) dataset; use layout flat_group for its group`, { dataset: path });
  if (d.shape.length !== 1) {
    throw new AppError(422, 'unsupported_shape', `compound dataset ${path} has shape [${d.shape.join(', ')}]; one row per sample needs a 1-D dataset`, { detail: { dataset: path, shape: d.shape } });
  }
  const pandas = pandasTableMembers(ins, d, d.meta.compound_type?.members ?? []);
  const members = pandas.members;
  const unitsOf = (x: CompoundMember): string | null => pandas.units.get(x) ?? memberUnits(ins, path, x.name);
  const tm = findTimeMember(ins, d, members, m.time?.source, unitsOf);
  const what = `time member ${JSON.stringify(tm.name)} of ${path}`;
  const timeKind = kindOrThrow(valueKindOf(tm), what);
  const units = isPandasIndex(ins, path, tm.name) ? PANDAS_NS : unitsOf(tm);
  const enc = timeEncoding(timeKind, m.time, units, what, { infer: { name: tm.name, start: findStart(ins, path), requested: limits.time.unit } });
  // pandas' index member is "index": the stream calls it time (unless a column already is).
  const pandasTime = isPandasIndex(ins, path, tm.name) && !members.some((x) => x.name === 'time');
  const timeName = m.time?.name ?? (pandasTime ? 'time' : tm.name);
  const others = members.filter((x) => x !== tm);
  const chosen = chooseSources(m, others, (x) => x.name, (x) => { const k = valueKindOf(x); return k.kind !== 'unsupported' && isStringKind(k); });
  const columns: SegmentColumn[] = [];
  const reads: ColumnRead[] = [];
  for (const { spec, role } of chosen) {
    const member = members.find((x) => x.name === spec.source);
    if (!member || member === tm) throw mappingError(`compound dataset ${path} has no member ${JSON.stringify(spec.source)} to use as a ${role}; members: ${others.map((x) => x.name).join(', ')}`);
    const kind = kindOrThrow(valueKindOf(member), `member ${JSON.stringify(member.name)} of ${path} (${describeType(member)})`);
    const read = columnRead(spec, member.name, role, kind, describeType(member), pandas.units.has(member) ? null : memberUnits(ins, path, member.name), nullRules(null, null, kind, mappingNulls(m, spec)), `member ${member.name} of ${path}`);
    reads.push(read);
    columns.push({ from: 'member', member, read });
  }
  checkNames(reads, timeName);
  checkFilters(d);
  checkChunk(d, limits);
  const segment = {
    label: path, rows: d.shape[0], time: { from: 'member' as const, member: tm, kind: timeKind, path }, enc, compound: d, columns,
    sliceRows: sliceRowsFor(d.meta.chunks?.[0] ?? 1, segmentRowBytes(timeKind, columns, d), limits),
  };
  checkTotal([segment], limits);
  return {
    columns: reads.map((r) => r.out),
    time: { name: timeName, sourceType: describeTime(timeKind, describeType(tm), enc) },
    segments: [segment],
    mapping: {
      origin, layout: 'compound', dataset: path, time: reportTime(tm.name, timeName, enc),
      ...(pandas.blocks.length > 0 ? { split: pandas.blocks } : {}),
      fields: chosen.filter((c) => c.role === 'field').map((c, i) => reportColumn(c.spec, reads.filter((r) => r.out.role === 'field')[i])),
      tags: chosen.filter((c) => c.role === 'tag').map((c, i) => reportColumn(c.spec, reads.filter((r) => r.out.role === 'tag')[i])),
    },
    provenancePaths: [...ancestors(path)],
    warnings: [],
    unmapped: [],
  };
}

