// Read plan for NeXus NXlog groups: each NXlog is one series (a field named after its group),
// `time` relative to its `start` attribute in its `units`, times `scaling_factor`. NXlogs of
// different lengths or rates are stored as rows of their own, with the other fields NULL.
// NXDL puts `start` and `scaling_factor` on the time field; a group-level `start` is accepted too.
import { AppError } from '../../../errors/index.ts';
import { type DatasetInfo, type Inspector, describeType, joinPath, normalizePath } from './inspect.ts';
import type { ColumnSpec, Mapping, MappingOrigin } from './mapping.ts';
import type { OpenLimits } from './protocol.ts';
import { nullRules } from './missing.ts';
import {
  type ColumnRead, ancestors, type ReadPlan, type Segment, checkChunk, checkFilters, checkTotal, columnRead, describeTime, kindOrThrow,
  listed, mappingError, mappingNulls, reportColumn, reportTime, segmentRowBytes, sliceRowsFor, timeEncoding, unitAttr,
} from './plan.ts';
import { valueKindOf } from './values.ts';

export function nxlogGroups(ins: Inspector): string[] {
  return ins.groups().filter((g) => g.path !== '/' && ins.stringAttr(g.path, 'NX_class') === 'NXlog').map((g) => g.path);
}

function dataset(ins: Inspector, p: string, what: string): DatasetInfo {
  const d = ins.get(p);
  if (!d || d.kind !== 'dataset') throw mappingError(`NXlog ${what}: ${p} does not exist`, { path: p });
  return d;
}

interface Series { spec: ColumnSpec; group: string; time: DatasetInfo; value: DatasetInfo }

function series(ins: Inspector, spec: ColumnSpec, timeSource: string): Series {
  const group = normalizePath(spec.source);
  const g = ins.get(group);
  if (!g || g.kind !== 'group') throw mappingError(`the mapping's NXlog ${group} is not a group in the file`, { group });
  const time = dataset(ins, joinPath(group, timeSource), group);
  const value = dataset(ins, joinPath(group, 'value'), group);
  for (const d of [time, value]) {
    if (d.shape.length !== 1) {
      throw new AppError(422, 'unsupported_shape', `NXlog dataset ${d.path} has shape [${d.shape.join(', ')}]; Strata stores NXlogs with 1-D time and value`,
        { detail: { dataset: d.path, shape: d.shape } });
    }
  }
  if (time.shape[0] !== value.shape[0]) {
    throw new AppError(422, 'shape_mismatch', `NXlog ${group}: ${value.path} has ${value.shape[0]} rows but ${time.path} has ${time.shape[0]}`,
      { detail: { group, rows: value.shape[0], time_rows: time.shape[0] } });
  }
  return { spec, group, time, value };
}

export function planNxlog(ins: Inspector, m: Mapping, origin: MappingOrigin, limits: OpenLimits): ReadPlan {
  const specs = listed(m.fields) ?? nxlogGroups(ins).map((source) => ({ source }));
  if (specs.length === 0) throw mappingError('the file has no NXlog groups (groups with NX_class = "NXlog")');
  const timeSource = m.time?.source ?? 'time';
  const timeName = m.time?.name ?? 'time';
  const all = specs.map((s) => series(ins, s, timeSource));
  const reads: ColumnRead[] = [];
  const names = new Set([timeName]);
  for (const s of all) {
    const kind = kindOrThrow(valueKindOf(s.value.meta), `dataset ${s.value.path} (${describeType(s.value.meta)})`);
    const name = s.spec.name ?? s.group.split('/').pop() as string;
    if (names.has(name)) throw mappingError(`two NXlogs would both be the column ${JSON.stringify(name)}; name them with a mapping ({"source": "${s.group}", "name": …})`);
    names.add(name);
    reads.push(columnRead({ ...s.spec, name }, name, 'field', kind, describeType(s.value.meta), unitAttr(ins, s.value.path), nullRules(ins, s.value.path, kind, mappingNulls(m, s.spec)), `dataset ${s.value.path}`));
  }
  const segments: Segment[] = all.map((s, i) => {
    const what = `NXlog time ${s.time.path}`;
    const timeKind = kindOrThrow(valueKindOf(s.time.meta), what);
    const spec = { ...m.time, ...s.spec.time };
    const start = ins.stringAttr(s.time.path, 'start') ?? ins.stringAttr(s.group, 'start');
    const scale = ins.numberAttr(s.time.path, 'scaling_factor') ?? ins.numberAttr(s.group, 'scaling_factor');
    const enc = timeEncoding(timeKind, spec, ins.stringAttr(s.time.path, 'units'), what, { start, scale });
    for (const d of [s.time, s.value]) { checkFilters(d); checkChunk(d, limits); }
    const columns = reads.map((r, j) => (j === i ? { from: 'dataset' as const, info: s.value, read: r, stationRow: null } : { from: 'null' as const }));
    const chunkRows = Math.max(s.time.meta.chunks?.[0] ?? 1, s.value.meta.chunks?.[0] ?? 1);
    return {
      label: s.group, rows: s.time.shape[0], time: { from: 'dataset' as const, info: s.time, kind: timeKind }, enc, compound: null, columns,
      sliceRows: sliceRowsFor(chunkRows, segmentRowBytes(timeKind, columns, null), limits),
    };
  });
  checkTotal(segments, limits);
  const first = segments[0];
  return {
    columns: reads.map((r) => r.out),
    time: { name: timeName, sourceType: describeTime(first.time.kind, describeType((first.time as { info: DatasetInfo }).info.meta), first.enc) },
    segments,
    mapping: {
      origin, layout: 'nxlog', time: { source: timeSource, name: timeName, encoding: first.enc.encoding },
      fields: all.map((s, i) => ({ ...reportColumn({ source: s.group }, reads[i]), time: reportTime(timeSource, timeName, segments[i].enc) })),
      tags: [],
    },
    provenancePaths: [...new Set(all.flatMap((s) => [...ancestors(s.group), s.time.path, s.value.path]))],
    warnings: [],
  };
}
