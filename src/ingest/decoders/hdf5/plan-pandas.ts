// pandas DataFrame.to_hdf. Nothing pandas pickles is ever unpickled; only what is readable as
// plain HDF5 is used.
//   format="fixed": a group (pandas_type "frame") with the index in axis1 (a DatetimeIndex is
//     int64 ns, kind "datetime64"; without one, the one datetime64 column is time) and blocks of same-typed columns: block<i>_items (the column
//     names, plain strings) and block<i>_values (rows × columns). Object (string) columns are
//     stored as pickled Python objects (a VLARRAY): refused, naming them.
//   format="table": a compound dataset <key>/table read by the compound rules, the DatetimeIndex
//     as member "index" (index_kind "datetime64"). With data_columns=True every column is a member
//     under its own name; without, columns share values_block_<i> array members whose names exist
//     only pickled (values_block_<i>_kind): refused, naming the to_hdf arguments that work.
import type { CompoundMember } from 'h5wasm/node';
import { AppError } from '../../../errors/index.ts';
import { type DatasetInfo, type Inspector, describeType, joinPath, normalizePath } from './inspect.ts';
import type { ColumnSpec, Mapping, MappingOrigin } from './mapping.ts';
import { nullRules } from './missing.ts';
import type { OpenLimits } from './protocol.ts';
import {
  type ColumnRead, ancestors, checkNames, type ReadPlan, type SegmentColumn, checkChunk, checkFilters, checkTotal, columnRead, describeTime, isStringKind,
  kindOrThrow, listed, mappingError, mappingNulls, reportColumn, reportTime, segmentRowBytes, sliceRowsFor, timeEncoding,
} from './plan.ts';
import { findStart } from './time-inference.ts';
import { valueKindOf } from './values.ts';

const NS_SINCE_EPOCH = 'nanoseconds since 1970-01-01T00:00:00Z';
const READABLE = 'write it with df.to_hdf(path, key=…, format="table", data_columns=True), or format="fixed" with only numeric and boolean columns';

/** The pandas_type attribute of a group (frame, frame_table, series …), or null. */
export function pandasType(ins: Inspector, group: string): string | null {
  return ins.stringAttr(group, 'pandas_type');
}

/** pandas writes a name it could not store as a plain string pickled: such text is not a name. */
function plainName(text: string | null): string | null {
  if (text === null || text === '' || /^(N\.|\(|c[a-z_]|[IVS][^\n]*\n)/.test(text) || /\n/.test(text)) return null;
  return text;
}

/** Refuses a pandas table whose columns live in values_block_<i> members (names only pickled). */
export function checkPandasTable(ins: Inspector, d: DatasetInfo, members: CompoundMember[], m: Mapping): void {
  const group = d.path.slice(0, d.path.lastIndexOf('/')) || '/';
  if (pandasType(ins, group) !== 'frame_table' && ins.stringAttr(d.path, 'index_kind') === null) return;
  const blocks = members.filter((x) => /^values_block_\d+$/.test(x.name));
  const listedFields = listed(m.fields);
  if (blocks.length === 0 || (listedFields && !listedFields.some((f) => blocks.some((b) => b.name === f.source)))) return;
  const width = (x: CompoundMember): number => (x.array_type?.shape ?? [1]).reduce((a, b) => a * b, 1);
  throw new AppError(422, 'pickled_only',
    `${d.path} is a pandas to_hdf(format="table") table whose columns ${blocks.map((b) => `${b.name} (${width(b)} column${width(b) > 1 ? 's' : ''})`).join(', ')} carry their names only as pickled Python objects, which Strata never unpickles; ${READABLE}`,
    { detail: { dataset: d.path, members: blocks.map((b) => b.name), fix: 'to_hdf(..., format="table", data_columns=True)' } });
}

interface Block { index: number; items: string[]; values: DatasetInfo }

function blocks(ins: Inspector, group: string): Block[] {
  const n = ins.numberAttr(group, 'nblocks') ?? 0;
  const out: Block[] = [];
  for (let i = 0; i < n && i < 10_000; i++) {
    const items = ins.get(joinPath(group, `block${i}_items`));
    const values = ins.get(joinPath(group, `block${i}_values`));
    if (!items || items.kind !== 'dataset' || !values || values.kind !== 'dataset') {
      throw mappingError(`pandas frame ${group} says it has ${n} blocks, but block${i}_items or block${i}_values is missing`);
    }
    if (items.shape.length !== 1 || items.shape[0] > 100_000 || items.meta.type !== 3) {
      throw mappingError(`pandas frame ${group}: ${items.path} is not a list of column names`);
    }
    const names = (items.dataset.value as unknown[]).map((x) => String(x).replace(/\0+$/, ''));
    out.push({ index: i, items: names, values });
  }
  return out;
}

/**
 * The time of a frame without a DatetimeIndex: the mapping's time.source among the columns, else
 * the one column pandas marks as datetime64 (block values with value_type "datetime64", int64 ns
 * since the epoch, UTC instants also for tz-aware columns). Null when there is none or several.
 */
function datetimeColumn(ins: Inspector, all: Block[], m: Mapping): { block: Block; column: number; name: string } | null {
  const found: { block: Block; column: number; name: string }[] = [];
  for (const b of all) {
    if (ins.stringAttr(b.values.path, 'value_type') !== 'datetime64' && m.time?.source === undefined) continue;
    b.items.forEach((name, column) => {
      if (m.time?.source !== undefined ? name === m.time.source : true) found.push({ block: b, column, name });
    });
  }
  return found.length === 1 ? found[0] : null;
}

function isPickled(ins: Inspector, d: DatasetInfo): boolean {
  return ins.stringAttr(d.path, 'CLASS') === 'VLARRAY' || d.meta.type === 9 || d.meta.type === 5;
}

export function planPandasFixed(ins: Inspector, m: Mapping, origin: MappingOrigin, limits: OpenLimits): ReadPlan {
  const group = normalizePath(m.group ?? '/');
  if (pandasType(ins, group) !== 'frame') throw mappingError(`group ${group} is not a pandas to_hdf(format="fixed") DataFrame (its pandas_type is not "frame")`, { group });
  const axis1 = ins.get(joinPath(group, 'axis1'));
  if (!axis1 || axis1.kind !== 'dataset' || axis1.shape.length !== 1) throw mappingError(`pandas frame ${group} has no 1-D index (axis1)`, { group });
  const n = axis1.shape[0];
  const indexKind = ins.stringAttr(axis1.path, 'kind') ?? '';
  const indexName = plainName(ins.stringAttr(axis1.path, 'name'));
  const timeKind = kindOrThrow(valueKindOf(axis1.meta), `the index ${axis1.path}`);
  const datetime = /^datetime64/.test(indexKind);
  const all = blocks(ins, group);
  const timeBlock = datetime ? null : datetimeColumn(ins, all, m);
  if (!datetime && !timeBlock && !(indexName && /^(float|integer)/.test(indexKind) && /^(t|time|timestamp|epoch|datetime)([_\- ]|$)/i.test(indexName))) {
    throw new AppError(422, 'no_time_column',
      `pandas frame ${group} has a ${indexKind || 'non-time'} index${indexName ? ` named ${JSON.stringify(indexName)}` : ''} and not exactly one datetime column; Strata takes the time from a DatetimeIndex or the one datetime64 column: write df.set_index("time").to_hdf(…)`,
      { detail: { group, index_kind: indexKind } });
  }
  const timeInfo = timeBlock ? timeBlock.block.values : axis1;
  const timeLabel = timeBlock ? `column ${JSON.stringify(timeBlock.name)} (${timeInfo.path})` : `the index ${axis1.path}`;
  const timeName = m.time?.name ?? timeBlock?.name ?? indexName ?? 'time';
  const tKind = timeBlock ? kindOrThrow(valueKindOf(timeInfo.meta), timeLabel) : timeKind;
  const enc = timeEncoding(tKind, m.time, datetime || timeBlock ? NS_SINCE_EPOCH : null, timeLabel,
    { infer: { name: indexName ?? 'time', start: findStart(ins, axis1.path), requested: limits.time.unit } });

  const wanted = listed(m.fields);
  const tags = listed(m.tags) ?? [];
  const reads: ColumnRead[] = [];
  const columns: SegmentColumn[] = [];
  const specs: ColumnSpec[] = [];
  const pickled: string[] = [];
  for (const b of all) {
    b.items.forEach((name, j) => {
      if (timeBlock && timeBlock.block === b && timeBlock.column === j) return;
      const tag = tags.find((c) => c.source === name);
      const spec = tag ?? (wanted ? wanted.find((c) => c.source === name) : { source: name });
      if (!spec) return;
      if (isPickled(ins, b.values)) { pickled.push(name); return; }
      if (b.values.shape.length !== 2 || b.values.shape[0] !== n || b.values.shape[1] !== b.items.length) {
        throw new AppError(422, 'shape_mismatch', `pandas frame ${group}: ${b.values.path} has shape [${b.values.shape.join(', ')}], not [${n}, ${b.items.length}] (rows × its columns)`,
          { detail: { dataset: b.values.path, shape: b.values.shape } });
      }
      const kind = kindOrThrow(valueKindOf(b.values.meta), `column ${JSON.stringify(name)} (${b.values.path})`);
      const role = tag ? 'tag' : isStringKind(kind) && !wanted ? 'tag' : 'field';
      const read = columnRead(spec, name, role, kind, describeType(b.values.meta), null, nullRules(null, null, kind, mappingNulls(m, spec)), `column ${name}`);
      reads.push(read);
      specs.push(spec);
      columns.push({ from: 'dataset', info: b.values, read, stationRow: null, column: j });
    });
  }
  if (pickled.length > 0) {
    throw new AppError(422, 'pickled_only',
      `pandas frame ${group} stores the columns ${pickled.map((c) => JSON.stringify(c)).join(', ')} as pickled Python objects (object dtype in format="fixed"), which Strata never unpickles; ${READABLE}; or leave them out with a mapping that lists the fields`,
      { detail: { group, columns: pickled, fix: 'to_hdf(..., format="table", data_columns=True)' } });
  }
  for (const c of [...(wanted ?? []), ...tags]) if (!specs.includes(c)) throw mappingError(`pandas frame ${group} has no column ${JSON.stringify(c.source)}`);
  checkNames(reads, timeName);
  const read = [timeInfo, ...new Set(columns.map((c) => (c as { info: DatasetInfo }).info))];
  for (const d of read) { checkFilters(d); checkChunk(d, limits); }
  const chunkRows = Math.max(1, ...read.map((d) => d.meta.chunks?.[0] ?? 1));
  const segment = {
    label: group, rows: n, enc, compound: null, columns,
    time: { from: 'dataset' as const, info: timeInfo, kind: tKind, ...(timeBlock ? { column: timeBlock.column } : {}) },
    sliceRows: sliceRowsFor(chunkRows, segmentRowBytes(tKind, columns, null), limits),
  };
  checkTotal([segment], limits);
  return {
    columns: reads.map((r) => r.out),
    time: { name: timeName, sourceType: describeTime(tKind, describeType(timeInfo.meta), enc) },
    segments: [segment],
    mapping: {
      origin, layout: 'pandas_fixed', group, time: reportTime(timeBlock ? timeBlock.name : 'axis1', timeName, enc),
      fields: reads.flatMap((r, i) => (r.out.role === 'field' ? [reportColumn(specs[i], r)] : [])),
      tags: reads.flatMap((r, i) => (r.out.role === 'tag' ? [reportColumn(specs[i], r)] : [])),
    },
    provenancePaths: [...ancestors(group)],
    warnings: [],
  };
}
