// Level parts from segment statistics. A refresh that rebuilds a level from raw rows takes a
// compressed segment whose rows all fall into one bucket of the level from its statistics
// (compression/store.ts, findSegmentSummaries: count, NaN count, min, max, sum, first and last
// with their times, NaN times, count of true) instead of decoding it — one row of parts per
// segment, combined with the parts of the raw rows (plain and decoded) by bucket and tag set.
// A segment is decoded as before when it crosses a bucket edge or the range, or when its
// statistics lack a part the level keeps:
//  - segments written before first, last and the NaN times were kept;
//  - float4 fields with values: PostgreSQL adds float4 in float4, row by row, and a sum per
//    segment would round otherwise;
//  - text fields whose first or last value is long (not kept, segment-stats.ts).
// Float8 sums are added per segment, then across segments: they may differ from one addition
// over all rows in the last digits, as sums do between PostgreSQL's plans (hash or sort,
// parallel or not).
import { ident } from '../db/sql.ts';
import { floorDiv } from '../domain/interval.ts';
import { pgTimestamp } from '../domain/time.ts';
import type { Stream } from '../streams/catalog.ts';
import type { FieldSummary, SegmentRef, SegmentSummary } from '../compression/store.ts';
import { type RollupField, holdsNaN, partArray, partName, partsOf, tagColumns } from './layout.ts';
import type { TagValues } from './tag-sets.ts';

export interface SegmentSplit {
  /** Answered from their statistics. */
  summarised: SegmentSummary[];
  /** To be decoded. */
  decoded: SegmentRef[];
}

/** Whether a segment's statistics give every part the level keeps for the field. */
function answerable(f: RollupField, s: FieldSummary | undefined): boolean {
  // A field added after the segment was written: NULL in every row of it.
  if (s === undefined || (s.count === 0 && s.nan === 0)) return true;
  if (f.kind === 'bool') return s.trues !== undefined;
  if (s.count > 0 && (s.first === undefined || s.last === undefined)) return false;
  if (f.kind === 'text') return true;
  if (s.count > 0 && (f.column.type === 'float4' || s.sum === null)) return false;
  return !holdsNaN(f) || s.nan === 0 || (s.nanFirst !== undefined && s.nanLast !== undefined);
}

/**
 * Sorts the segments overlapping [from, to) that a rebuild of the level reads (those of the tag
 * set `tags`, or all) into those its statistics answer and those to decode.
 */
export function splitSegments(segs: readonly SegmentSummary[], stream: Stream, fields: readonly RollupField[], intervalUs: bigint,
  from: bigint, to: bigint, tags: TagValues | null): SegmentSplit {
  const tagCols = tagColumns(stream);
  const out: SegmentSplit = { summarised: [], decoded: [] };
  for (const s of segs) {
    if (tags !== null && !tagCols.every((c, i) => (s.tags[c.columnName] ?? null) === (tags[i] ?? null))) continue;
    const inOneBucket = s.timeMin >= from && s.timeMax < to && floorDiv(s.timeMin, intervalUs) === floorDiv(s.timeMax, intervalUs);
    if (inOneBucket && fields.every((f) => answerable(f, s.fields.get(f.column.columnName)))) out.summarised.push(s);
    else out.decoded.push(s);
  }
  return out;
}

const VALUE_TYPE = { number: 'float8', int8: 'numeric', bool: 'float8', text: 'text' } as const;

/**
 * SQL for the parts of `segs` (each inside one bucket), one row per segment with partsFromRaw's
 * columns (`fastOrder` as there) after "time" and the tag columns; pushes its arrays onto `params`.
 */
export function segmentPartsSql(stream: Stream, fields: readonly RollupField[], intervalUs: bigint, segs: readonly SegmentSummary[], fastOrder: boolean, params: unknown[]): string {
  const arrays: { type: string; values: (string | null)[] }[] = [];
  const column = (type: string, values: (string | null)[]): string => {
    arrays.push({ type, values });
    return `s.s${arrays.length - 1}`;
  };
  const str = (v: number | bigint | null | undefined): string | null => (v === null || v === undefined ? null : String(v));
  const select = [`${column('timestamptz', segs.map((s) => pgTimestamp(floorDiv(s.timeMin, intervalUs) * intervalUs)))} AS "time"`];
  for (const t of tagColumns(stream)) select.push(`${column('text', segs.map((s) => s.tags[t.columnName] ?? null))} AS ${ident(t.columnName)}`);
  const rows = column('int8', segs.map((s) => String(s.rowCount)));
  select.push(`${rows} AS "rows"`, `${rows} AS src_rows`);
  for (const f of fields) {
    const stats = segs.map((s) => s.fields.get(f.column.columnName));
    const valueType = VALUE_TYPE[f.kind];
    for (const part of partsOf(f)) {
      const name = ident(partName(f, part));
      if (part === 'n') select.push(`${column('int8', stats.map((x) => String(x?.count ?? 0)))} AS ${name}`);
      else if (part === 'nan') select.push(`${column('int8', stats.map((x) => String(x?.nan ?? 0)))} AS ${name}`);
      else if (part === 'true') select.push(`${column('int8', stats.map((x) => String(x?.trues ?? 0)))} AS ${name}`);
      else if (part === 'sum') select.push(`${column(f.kind === 'int8' ? 'numeric' : 'float8', stats.map((x) => x?.sum ?? null))} AS ${name}`);
      else if (part === 'min') select.push(`${column(valueType, stats.map((x) => x?.min ?? null))} AS ${name}`);
      else if (part === 'max') select.push(`${column(valueType, stats.map((x) => x?.max ?? null))} AS ${name}`);
      else if (part === 'nanfirst') select.push(`${column('int8', stats.map((x) => str(x?.nanFirst)))} AS ${name}`);
      else if (part === 'nanlast') select.push(`${column('int8', stats.map((x) => str(x?.nanLast)))} AS ${name}`);
      else {
        const edge = stats.map((x) => (part === 'first' ? x?.first : x?.last) ?? null);
        const v = column(valueType, edge.map((e) => e?.value ?? null));
        if (fastOrder && f.kind === 'number') {
          const t = column('timestamptz', edge.map((e) => (e ? pgTimestamp(e.at) : null)));
          select.push(`CASE WHEN ${t} IS NOT NULL THEN ARRAY[date_part('epoch', ${t}), ${v}::float8] END AS ${name}`, `${t} AS ${ident(`${partName(f, part)}_at`)}`);
        } else {
          const t = column('int8', edge.map((e) => str(e?.at)));
          select.push(`CASE WHEN ${t} IS NOT NULL THEN ${partArray(f.kind, part, v, t)} END AS ${name}`);
        }
      }
    }
  }
  const args = arrays.map((a) => { params.push(a.values); return `$${params.length}::${a.type}[]`; });
  return `SELECT ${select.join(', ')} FROM unnest(${args.join(', ')}) AS s(${arrays.map((_, i) => `s${i}`).join(', ')})`;
}
