// The aggregates a query asks for (agg=), as SQL over a bucket's combined parts (alias c, the parts
// of rollups/layout.ts), and what NaN does to them (nan=):
//   nan=skip (the default), as pandas and numpy's nan-functions: avg, sum, min, max, first and
//     last are over the values other than NaN, and count counts the values used;
//   nan=propagate, IEEE semantics: avg, sum, min and max are NaN when the bucket holds a NaN,
//     count counts NaN too, and first and last are the bucket's first and last values, NaN or not
//     (a NaN at the same instant as a number comes after it: PostgreSQL orders NaN above numbers);
//   nan_count, in both: how many NaN the bucket holds (0 for fields that cannot hold NaN).
// ±Infinity are values in both. The parts hold both answers exactly, from raw rows and from every
// level alike, so the mode never changes which source serves a range.
import { ident } from '../../db/sql.ts';
import { AppError } from '../../errors/index.ts';
import { type FieldKind, type RollupField, holdsNaN, partName } from '../../rollups/layout.ts';
import type { NanMode } from '../params.ts';
import type { ResultType } from '../result-formats.ts';
import type { FillKind } from './fill.ts';

export const AGGS = ['avg', 'min', 'max', 'count', 'sum', 'first', 'last', 'nan_count'] as const;
export type Agg = typeof AGGS[number];

function bad(message: string): AppError {
  return new AppError(400, 'invalid_request', message);
}

/** Which aggregates a field kind answers. */
function aggsFor(kind: FieldKind): readonly Agg[] {
  if (kind === 'text') return ['count', 'first', 'last'];
  if (kind === 'bool') return ['avg', 'min', 'max', 'count', 'sum'];
  return AGGS;
}

export function parseAggs(value: string | undefined): (Agg | 'm4')[] {
  if (value === undefined || value.trim() === '') return ['avg'];
  const list = [...new Set(value.split(',').map((s) => s.trim()).filter(Boolean))];
  for (const a of list) {
    if (a !== 'm4' && !(AGGS as readonly string[]).includes(a)) throw bad(`agg=${JSON.stringify(a)}: use ${AGGS.join(', ')} or m4`);
  }
  if (list.includes('m4') && list.length > 1) throw bad('agg=m4 stands alone: it returns first, last, min and max with their times');
  return list as (Agg | 'm4')[];
}

export interface OutputColumn { name: string; type: ResultType; sql: string; fill: FillKind }

/** SQL of one field's parts and values, for the expressions below. */
class FieldSql {
  readonly valueCast: string;
  /** NaN as the field's type. */
  readonly nanValue: string;
  constructor(readonly f: RollupField) {
    const t = f.column.type;
    this.valueCast = t === 'float8' ? '::float8' : t === 'timestamptz' ? '::bigint' : `::${t}`;
    this.nanValue = `'NaN'${this.valueCast}`;
  }

  part(part: string): string {
    return `c.${ident(partName(this.f, part))}`;
  }

  /** The value (index 2 of first/last, 1 of minat/maxat) of an array part. */
  pick(part: string, index: number): string {
    return `((${this.part(part)})[${index}])${this.f.kind === 'text' ? '' : this.valueCast}`;
  }

  /** The time (µs) in an array part. */
  timeOf(part: string, index: number): string {
    const at = `(${this.part(part)})[${index}]`;
    return this.f.kind === 'text' ? `((${at})::numeric - 4611686018427387904)::bigint` : `(${at})::bigint`;
  }

  /** Propagating NaN: whether the bucket holds one. */
  get hasNaN(): string {
    return `${this.part('nan')} > 0`;
  }

  /**
   * Propagating NaN: whether a NaN is the bucket's first (or last) value — before the first other
   * value, or at or after the last (at one instant, NaN sorts after numbers).
   */
  nanEnds(end: 'first' | 'last'): string {
    const at = end === 'first' ? `${this.part('nanfirst')} < ${this.timeOf('first', 1)}` : `${this.part('nanlast')} >= ${this.timeOf('last', 1)}`;
    return `(${this.hasNaN} AND (${this.part(end)} IS NULL OR ${at}))`;
  }
}

/** M4's columns: first, last, min and max with their times. */
function m4Columns(s: FieldSql, propagate: boolean, fill: FillKind): OutputColumn[] {
  const t = s.f.column.type;
  const name = (agg: string): string => `${s.f.column.name}_${agg}`;
  const nanOr = (cond: string, nanCase: string, otherwise: string): string => (propagate ? `CASE WHEN ${cond} THEN ${nanCase} ELSE ${otherwise} END` : otherwise);
  const first = s.nanEnds('first');
  const last = s.nanEnds('last');
  return [
    { name: name('first'), type: t, sql: nanOr(first, s.nanValue, s.pick('first', 2)), fill },
    { name: name('first_time'), type: 'timestamptz', sql: nanOr(first, s.part('nanfirst'), s.timeOf('first', 1)), fill: 'other' },
    { name: name('last'), type: t, sql: nanOr(last, s.nanValue, s.pick('last', 2)), fill },
    { name: name('last_time'), type: 'timestamptz', sql: nanOr(last, s.part('nanlast'), s.timeOf('last', 1)), fill: 'other' },
    // Propagating, a NaN is the min at the earliest NaN and the max at the latest.
    { name: name('min'), type: t, sql: nanOr(s.hasNaN, s.nanValue, s.pick('minat', 1)), fill },
    { name: name('min_time'), type: 'timestamptz', sql: nanOr(s.hasNaN, s.part('nanfirst'), s.timeOf('minat', 2)), fill: 'other' },
    { name: name('max'), type: t, sql: nanOr(s.hasNaN, s.nanValue, s.pick('maxat', 1)), fill },
    { name: name('max_time'), type: 'timestamptz', sql: nanOr(s.hasNaN, s.part('nanlast'), s.timeOf('maxat', 2)), fill: 'other' },
  ];
}

/** One aggregate of one field, or null where the field does not answer it (times do not add up). */
function aggColumn(s: FieldSql, agg: Agg, propagate: boolean, fill: FillKind): OutputColumn | string | null {
  const { f } = s;
  const t = f.column.type;
  const name = `${f.column.name}_${agg}`;
  const n = s.part('n');
  const nanOr = (nanCase: string, otherwise: string): string => (propagate ? `CASE WHEN ${s.hasNaN} THEN ${nanCase} ELSE ${otherwise} END` : otherwise);
  if (f.kind === 'bool') {
    switch (agg) {
      case 'count': return { name, type: 'int8', sql: n, fill: 'count' };
      case 'sum': return { name, type: 'int8', sql: `CASE WHEN ${n} > 0 THEN ${s.part('true')} END`, fill: 'number' };
      case 'avg': return { name, type: 'float8', sql: `${s.part('true')}::float8 / NULLIF(${n}, 0)`, fill: 'number' };
      case 'min': return { name, type: 'bool', sql: `CASE WHEN ${n} > 0 THEN ${s.part('true')} = ${n} END`, fill: 'other' };
      default: return { name, type: 'bool', sql: `CASE WHEN ${n} > 0 THEN ${s.part('true')} > 0 END`, fill: 'other' };
    }
  }
  const nan = propagate && holdsNaN(f);
  switch (agg) {
    case 'count': return { name, type: 'int8', sql: nan ? `(${n} + ${s.part('nan')})` : n, fill: 'count' };
    case 'nan_count': return { name, type: 'int8', sql: holdsNaN(f) ? s.part('nan') : '0::bigint', fill: 'count' };
    case 'sum':
      if (t === 'timestamptz') return 'holds times, which do not add up';
      return { name, type: f.kind === 'int8' ? 'int8' : 'float8', sql: nan ? nanOr(`'NaN'::float8`, s.part('sum')) : s.part('sum'), fill: 'number' };
    case 'avg': {
      if (t === 'timestamptz') return 'holds times; use min, max, first or last';
      const avg = `(${s.part('sum')} / NULLIF(${n}, 0))::float8`;
      return { name, type: 'float8', sql: nan ? nanOr(`'NaN'::float8`, avg) : avg, fill: 'number' };
    }
    case 'min': case 'max': {
      const v = `(${s.part(agg)})${s.valueCast}`;
      return { name, type: t, sql: nan ? nanOr(s.nanValue, v) : v, fill };
    }
    case 'first': case 'last': {
      const v = s.pick(agg, 2);
      return { name, type: t, sql: nan ? `CASE WHEN ${s.nanEnds(agg)} THEN ${s.nanValue} ELSE ${v} END` : v, fill: f.kind === 'text' ? 'other' : fill };
    }
  }
}

/** The result columns for the chosen fields and aggregates, from combined parts (alias c). */
export function outputColumns(fields: readonly RollupField[], aggs: readonly (Agg | 'm4')[], explicitFields: boolean, nanMode: NanMode): OutputColumn[] {
  const out: OutputColumn[] = [];
  const propagate = nanMode === 'propagate';
  for (const f of fields) {
    const s = new FieldSql(f);
    const t = f.column.type;
    const numeric = f.kind === 'number' || f.kind === 'int8';
    const fill: FillKind = numeric && t !== 'timestamptz' ? 'number' : 'other';
    if (aggs.includes('m4')) {
      if (!numeric) { if (explicitFields) throw bad(`agg=m4: field ${JSON.stringify(f.column.name)} is ${t}; M4 needs numbers`); continue; }
      out.push(...m4Columns(s, propagate && holdsNaN(f), fill));
      continue;
    }
    for (const agg of aggs as Agg[]) {
      if (!aggsFor(f.kind).includes(agg)) {
        if (explicitFields) throw bad(`agg=${agg}: field ${JSON.stringify(f.column.name)} is ${t}, which answers ${aggsFor(f.kind).join(', ')}`);
        continue;
      }
      const col = aggColumn(s, agg, propagate, fill);
      if (typeof col === 'string') { if (explicitFields) throw bad(`agg=${agg}: field ${JSON.stringify(f.column.name)} ${col}`); } else if (col) out.push(col);
    }
  }
  if (out.length === 0) throw bad(`no column answers agg=${aggs.join(',')} for the chosen fields`);
  return out;
}

/** A bucket's average of a numeric field, as LTTB reads a level (NaN as the mode says). */
export function averageColumn(f: RollupField, nanMode: NanMode): OutputColumn {
  const col = aggColumn(new FieldSql(f), 'avg', nanMode === 'propagate', 'number') as OutputColumn;
  return { ...col, name: f.column.name };
}
