// pandas DataFrame.to_hdf. Nothing pandas pickles is ever unpickled; only what is readable as
// plain HDF5 is used.
//   format="fixed": a group (pandas_type "frame") with the index in axis1 (a DatetimeIndex is
//     int64 ns, kind "datetime64"; without one, the one datetime64 column is time) and blocks of same-typed columns: block<i>_items (the column
//     names, plain strings) and block<i>_values (rows × columns). Object (string) columns are
//     stored as pickled Python objects (a VLARRAY): refused, naming them.
//   format="table": a compound dataset <key>/table read by the compound rules, the DatetimeIndex
//     as member "index" (index_kind "datetime64"). With data_columns=True every column is a member
//     under its own name; without, columns share values_block_<i> array members whose names are in
//     values_block_<i>_kind as a pickled list of str, read by a strict reader of that grammar
//     (pickle0.ts, never an unpickler); anything else there is refused (pickled_only).
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
import { PickleRefused, attributeBytes, readPickledNames } from './pickle0.ts';

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

/** One values_block_<i> array member of a pandas table, split into its columns. */
export interface PandasBlock { source: string; columns: string[]; names_from: string }

export interface PandasMembers {
  /** The compound's members with every values_block_<i> replaced by one member per column. */
  members: CompoundMember[];
  /** Units of the columns pandas marks as datetime64 (int64 ns since the epoch). */
  units: Map<CompoundMember, string>;
  blocks: PandasBlock[];
}

function pickledOnly(d: DatasetInfo, block: CompoundMember, why: string): AppError {
  return new AppError(422, 'pickled_only',
    `${d.path} is a pandas to_hdf(format="table") table whose member ${block.name} carries its column names in ${block.name}_kind in a form Strata does not read (${why}); Strata reads a pickled list of names without unpickling it and never unpickles anything else; ${READABLE}`,
    { detail: { dataset: d.path, member: block.name, fix: 'to_hdf(..., format="table", data_columns=True)' } });
}

/**
 * A pandas to_hdf(format="table") table without data_columns keeps same-typed columns together in
 * array members values_block_<i>, their names in the attribute values_block_<i>_kind as a
 * protocol-0 pickle of a list of str. That list is read by a strict reader of that one grammar
 * (pickle0.ts: never an unpickler); each block becomes one member per column, at its offset in
 * the row. Anything else in the attribute, or a block whose values are themselves pickled or
 * categorical codes, is refused with pickled_only naming the to_hdf arguments that work.
 */
export function pandasTableMembers(ins: Inspector, d: DatasetInfo, members: CompoundMember[]): PandasMembers {
  const none = { members, units: new Map<CompoundMember, string>(), blocks: [] };
  const group = d.path.slice(0, d.path.lastIndexOf('/')) || '/';
  if (pandasType(ins, group) !== 'frame_table' && ins.stringAttr(d.path, 'index_kind') === null) return none;
  if (!members.some((x) => /^values_block_\d+$/.test(x.name))) return none;
  const out: CompoundMember[] = [];
  const units = new Map<CompoundMember, string>();
  const blocks: PandasBlock[] = [];
  for (const x of members) {
    if (!/^values_block_\d+$/.test(x.name)) { out.push(x); continue; }
    const kindText = ins.stringAttr(d.path, `${x.name}_kind`);
    if (kindText === null) throw pickledOnly(d, x, `the attribute ${x.name}_kind is missing`);
    const bytes = attributeBytes(kindText);
    if (!bytes) throw pickledOnly(d, x, `${x.name}_kind is not byte text`);
    let names: string[];
    try {
      names = readPickledNames(bytes);
    } catch (err) {
      if (err instanceof PickleRefused) throw pickledOnly(d, x, `it is not a pickled list of names: ${err.message}`);
      throw err;
    }
    const meta = ins.stringAttr(d.path, `${x.name}_meta`);
    if (meta !== null && meta !== 'N.') {
      throw pickledOnly(d, x, `${x.name}_meta says its values are not plain (${JSON.stringify(meta.slice(0, 40))}, e.g. categorical codes)`);
    }
    const base = x.type === 10 ? x.array_type : (x.shape ?? []).length === 0 ? x : undefined;
    const width = base && x.type === 10 ? (base.shape ?? [1]).reduce((a, b) => a * b, 1) : 1;
    if (!base || base.type === 10 || base.type === 6 || base.vlen || names.length !== width || base.size * width !== x.size) {
      throw pickledOnly(d, x, `its ${width} values per row do not match the ${names.length} names in ${x.name}_kind`);
    }
    const dtype = ins.stringAttr(d.path, `${x.name}_dtype`) ?? '';
    names.forEach((name, j) => {
      const col: CompoundMember = { ...base, shape: [], name, offset: x.offset + j * base.size, size: base.size };
      if (/^datetime64/.test(dtype)) units.set(col, NS_SINCE_EPOCH);
      out.push(col);
    });
    blocks.push({ source: x.name, columns: names, names_from: `${x.name}_kind (a pickled list of names, read without unpickling)` });
  }
  return { members: out, units, blocks };
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
