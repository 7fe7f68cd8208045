// What a rollup row holds, and the SQL that builds, combines and reads it.
//
// A level row is one bucket of one tag set: "time" (the bucket start), the stream's tag columns,
// "rows" (raw rows aggregated), "all_tags" (false), and per field — named c<position>_<part> —
// the parts that combine exactly into coarser buckets:
//   numbers (float8, float4, int2, int4, int8, timestamptz as µs): n, sum, min, max, first and
//     last with their times;
//   float8 and float4 also: nan (how many NaN), nanfirst and nanlast (µs of the earliest and the
//     latest NaN); their n, sum, min, max, first and last are over the values other than NaN;
//   bool: n and the count of true;
//   text: n, first and last with their times.
// So both answers a query can ask for come from the parts exactly: NaN skipped (the parts as they
// are) and NaN propagated (NaN wherever nan > 0; first and last NaN where a NaN comes first or
// last; count n + nan) — see nanOutputs in query/downsample/reader.ts.
// Beside them, each bucket has one combined row, all_tags = true and the tag columns null: the same
// parts over every tag set, written in the same transaction as the rows it combines. Queries with
// neither a tag filter nor group_by read those, one row per bucket instead of one per tag set.
// Times inside a level row are µs since the Unix epoch (bigint).
//
// Partial aggregates travel between the steps as "parts": for first and last a two-element array
// [time, value], so that the built-in min() and max() over arrays pick the value together with
// its time; ties are broken by the value: first is the smallest value at the earliest time, last
// the largest value at the latest time. M4 also needs the time of the min and the max; those
// parts ("minat", "maxat": [value, time], the earliest occurrence of the smallest value and the
// latest of the largest) come from raw rows only, since arrays cost a rollup refresh most of its
// time.
import { ident } from '../db/sql.ts';
import type { StreamColumn } from '../domain/types.ts';
import type { Stream } from '../streams/catalog.ts';

export type FieldKind = 'number' | 'int8' | 'bool' | 'text';

export interface RollupField {
  column: StreamColumn;
  /** Column prefix in level tables: c<position>. */
  prefix: string;
  kind: FieldKind;
}

export function fieldKind(c: StreamColumn): FieldKind {
  if (c.type === 'int8') return 'int8';
  if (c.type === 'bool') return 'bool';
  if (c.type === 'text') return 'text';
  return 'number';
}

/** Whether a field can hold NaN, and so keeps the NaN parts (nan, nanfirst, nanlast). */
export function holdsNaN(f: Pick<RollupField, 'column'>): boolean {
  return f.column.type === 'float8' || f.column.type === 'float4';
}

export function rollupFields(stream: Pick<Stream, 'columns'>): RollupField[] {
  return stream.columns
    .map((column, i) => ({ column, prefix: `c${i}`, kind: fieldKind(column) }))
    .filter((f) => f.column.role === 'field');
}

export function tagColumns(stream: Pick<Stream, 'columns'>): StreamColumn[] {
  return stream.columns.filter((c) => c.role === 'tag');
}

const NUMBER_PARTS = ['n', 'sum', 'min', 'max', 'first', 'last'];
const FLOAT_PARTS = [...NUMBER_PARTS, 'nan', 'nanfirst', 'nanlast'];

/** The parts a field keeps (those in `only`, when given, by their partName). */
export function partsOf(f: RollupField, only?: ReadonlySet<string>): string[] {
  const all = f.kind === 'bool' ? ['n', 'true'] : f.kind === 'text' ? ['n', 'first', 'last'] : holdsNaN(f) ? FLOAT_PARTS : NUMBER_PARTS;
  return only ? all.filter((p) => only.has(partName(f, p))) : all;
}

const ARRAY_PARTS = new Set(['first', 'last']);
/** Parts that count (summed when combined). */
const COUNT_PARTS = new Set(['n', 'true', 'nan']);

function valueType(kind: FieldKind): string {
  return kind === 'int8' ? 'numeric' : kind === 'text' ? 'text' : 'float8';
}

/** Columns of a level table, in order. */
export function levelColumnsDdl(stream: Pick<Stream, 'columns'>): [string, string][] {
  const cols: [string, string][] = [
    ['time', 'timestamptz NOT NULL'], ...tagColumns(stream).map((c): [string, string] => [c.columnName, 'text']),
    ['rows', 'bigint NOT NULL'], ['all_tags', 'boolean NOT NULL DEFAULT false'],
  ];
  for (const f of rollupFields(stream)) {
    for (const part of partsOf(f)) {
      if (COUNT_PARTS.has(part) || part === 'nanfirst' || part === 'nanlast') cols.push([`${f.prefix}_${part}`, 'bigint']);
      else if (part === 'sum') cols.push([`${f.prefix}_sum`, f.kind === 'int8' ? 'numeric' : 'float8']);
      else if (part === 'min' || part === 'max') cols.push([`${f.prefix}_${part}`, valueType(f.kind)]);
      else cols.push([`${f.prefix}_${part}`, valueType(f.kind)], [`${f.prefix}_${part}_t`, 'bigint']);
    }
  }
  return cols;
}

/** µs since the epoch of a timestamptz expression, as bigint. */
export const micros = (expr: string): string => `((extract(epoch FROM ${expr}) * 1000000)::bigint)`;

/** A sortable text key for a µs time (fixed width, non-negative), for text-valued arrays. */
const timeKey = (t: string): string => `lpad((${t} + 4611686018427387904)::text, 20, '0')`;

/**
 * A part's array from a value and a time (both SQL expressions), in the order its min()/max()
 * must compare them.
 */
export function partArray(kind: FieldKind, part: string, value: string, time: string): string {
  const timeFirst = part === 'first' || part === 'last';
  if (kind === 'text') return `ARRAY[${timeKey(time)}, ${value}] COLLATE "C"`;
  const cast = kind === 'int8' ? 'numeric' : 'float8';
  const v = `${value}::${cast}`;
  const t = `${time}::${cast}`;
  return timeFirst ? `ARRAY[${t}, ${v}]` : `ARRAY[${v}, ${t}]`;
}

const pickFn = (part: string): string => (part === 'min' || part === 'first' || part === 'minat' || part === 'nanfirst' ? 'min' : 'max');

/** Output name of a part in partial results. */
export const partName = (f: RollupField, part: string): string => `${f.prefix}_${part}`;

/**
 * Within ±2^32 s of the epoch (1833–2106), date_part('epoch', t) — float8 seconds — keeps every
 * microsecond apart (doubles there are closer than 1 µs), so it orders [time, value] pairs as the
 * exact µs do, at a fraction of the cost of extract() (numeric).
 */
export const FAST_ORDER_LIMIT_US = 2n ** 32n * 1_000_000n;

/**
 * Partial aggregates over raw rows (table alias r); times from the raw "time" column.
 * `fastOrder` (a refresh writing level rows, within FAST_ORDER_LIMIT_US): first/last of float
 * fields pick their value from [date_part('epoch', time), value] pairs and take their time from a
 * separate min()/max() of "time" (part name + "_at"); see levelValuesFromParts.
 * A field that can hold NaN has its parts over the values other than NaN (PostgreSQL's NaN equals
 * NaN and sorts above every number, so `<> 'NaN'` keeps the rest), and NaN counted apart.
 */
export function partsFromRaw(fields: readonly RollupField[], only?: ReadonlySet<string>, fastOrder = false): string[] {
  const out = ['count(*)::bigint AS "rows"', 'count(*)::bigint AS src_rows'];
  for (const f of fields) {
    const col = `r.${ident(f.column.columnName)}`;
    const value = f.column.type === 'timestamptz' ? micros(col) : col;
    const nan = holdsNaN(f);
    // The rows whose value a part takes.
    const used = nan ? `${col} <> 'NaN'` : `${col} IS NOT NULL`;
    const usedOnly = nan ? ` FILTER (WHERE ${used})` : '';
    for (const part of partsOf(f, only)) {
      const name = ident(partName(f, part));
      if (part === 'n') out.push(`count(*) FILTER (WHERE ${used})::bigint AS ${name}`);
      else if (part === 'true') out.push(`count(*) FILTER (WHERE ${col})::bigint AS ${name}`);
      else if (part === 'nan') out.push(`count(*) FILTER (WHERE ${col} = 'NaN')::bigint AS ${name}`);
      else if (part === 'nanfirst' || part === 'nanlast') out.push(`${micros(`${pickFn(part)}(r."time") FILTER (WHERE ${col} = 'NaN')`)} AS ${name}`);
      else if (part === 'sum') out.push(`sum(${value})${usedOnly}${f.kind === 'int8' ? '::numeric' : '::float8'} AS ${name}`);
      else if (part === 'min' || part === 'max') out.push(`${part}(${value})${usedOnly}::${valueType(f.kind)} AS ${name}`);
      else if (fastOrder && f.kind === 'number') {
        out.push(`${pickFn(part)}(ARRAY[date_part('epoch', r."time"), ${value}::float8]) FILTER (WHERE ${used}) AS ${name}`,
          `${pickFn(part)}(r."time") FILTER (WHERE ${used}) AS ${ident(`${partName(f, part)}_at`)}`);
      } else out.push(`${pickFn(part)}(${partArray(f.kind, part, value, micros('r."time"'))}) FILTER (WHERE ${used}) AS ${name}`);
    }
    for (const part of ['minat', 'maxat']) {
      if (only?.has(partName(f, part))) {
        out.push(`${pickFn(part)}(${partArray(f.kind, part, value, micros('r."time"'))}) FILTER (WHERE ${used}) AS ${ident(partName(f, part))}`);
      }
    }
  }
  return out;
}

/** Partial aggregates combining level rows (table alias l). */
export function partsFromLevel(fields: readonly RollupField[], only?: ReadonlySet<string>): string[] {
  const out = ['sum(l."rows")::bigint AS "rows"', 'count(*)::bigint AS src_rows'];
  for (const f of fields) {
    for (const part of partsOf(f, only)) {
      const name = ident(partName(f, part));
      const col = `l.${ident(partName(f, part))}`;
      if (COUNT_PARTS.has(part)) out.push(`coalesce(sum(${col}), 0)::bigint AS ${name}`);
      else if (part === 'sum') out.push(`sum(${col}) AS ${name}`);
      else if (part === 'min' || part === 'max' || part === 'nanfirst' || part === 'nanlast') out.push(`${pickFn(part)}(${col}) AS ${name}`);
      else {
        const t = `l.${ident(`${partName(f, part)}_t`)}`;
        out.push(`${pickFn(part)}(${partArray(f.kind, part, col, t)}) FILTER (WHERE ${t} IS NOT NULL) AS ${name}`);
      }
    }
  }
  return out;
}

/** Partial aggregates combining partial results (table alias p, columns named by partName). */
export function partsFromParts(fields: readonly RollupField[], only?: ReadonlySet<string>): string[] {
  const out = ['sum(p."rows")::bigint AS "rows"'];
  for (const f of fields) {
    for (const part of [...partsOf(f, only), ...['minat', 'maxat'].filter((p) => only?.has(partName(f, p)))]) {
      const name = ident(partName(f, part));
      const col = `p.${name}`;
      if (COUNT_PARTS.has(part)) out.push(`coalesce(sum(${col}), 0)::bigint AS ${name}`);
      else if (part === 'sum') out.push(`sum(${col}) AS ${name}`);
      else out.push(`${pickFn(part)}(${col}) AS ${name}`);
    }
  }
  return out;
}

/**
 * Partial aggregates combining rows shaped as partsFromRaw's (alias p) — raw rows' and those made
 * from segment statistics (segment-parts.ts) — into the same columns, src_rows and the "_at" times
 * of `fastOrder` included.
 */
export function partsFromRawParts(fields: readonly RollupField[], fastOrder = false): string[] {
  const out = ['sum(p."rows")::bigint AS "rows"', 'sum(p.src_rows)::bigint AS src_rows'];
  for (const f of fields) {
    for (const part of partsOf(f)) {
      const name = ident(partName(f, part));
      if (COUNT_PARTS.has(part)) out.push(`coalesce(sum(p.${name}), 0)::bigint AS ${name}`);
      else if (part === 'sum') out.push(`sum(p.${name}) AS ${name}`);
      else out.push(`${pickFn(part)}(p.${name}) AS ${name}`);
      if (fastOrder && f.kind === 'number' && ARRAY_PARTS.has(part)) {
        const at = ident(`${partName(f, part)}_at`);
        out.push(`${pickFn(part)}(p.${at}) AS ${at}`);
      }
    }
  }
  return out;
}

/**
 * Level-table column values from partial results (alias p), in levelColumnsDdl order after "rows";
 * `fastOrder` when the parts came from partsFromRaw(…, fastOrder).
 */
export function levelValuesFromParts(fields: readonly RollupField[], fastOrder = false): { columns: string[]; values: string[] } {
  const columns: string[] = ['"rows"'];
  const values: string[] = ['p."rows"'];
  for (const f of fields) {
    for (const part of partsOf(f)) {
      const name = partName(f, part);
      if (!ARRAY_PARTS.has(part)) {
        columns.push(ident(name));
        values.push(`p.${ident(name)}`);
        continue;
      }
      const timeFirst = part === 'first' || part === 'last';
      const [vi, ti] = timeFirst ? [2, 1] : [1, 2];
      columns.push(ident(name), ident(`${name}_t`));
      const arr = `p.${ident(name)}`;
      const t = fastOrder && f.kind === 'number' ? micros(`p.${ident(`${name}_at`)}`)
        : f.kind === 'text' ? `((${arr})[${ti}]::numeric - 4611686018427387904)::bigint` : `((${arr})[${ti}])::bigint`;
      values.push(`(${arr})[${vi}]`, t);
    }
  }
  return { columns, values };
}
