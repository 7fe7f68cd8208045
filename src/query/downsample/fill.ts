// Gap filling of bucketed results: every bucket of the requested range gets a row, per series.
//   null      empty buckets hold nulls (counts 0);
//   previous  they repeat the last non-empty bucket before them (counts 0), nulls before the first;
//   linear    numbers are interpolated between the non-empty buckets on either side, by bucket
//             start time (counts 0, other columns null, nulls before the first and after the last).
import type { Cell } from '../result-formats.ts';

export type FillMode = 'none' | 'null' | 'previous' | 'linear';
export const FILL_MODES: readonly FillMode[] = ['none', 'null', 'previous', 'linear'];

/** What a value column is, for filling: counts become 0, numbers may be interpolated. */
export type FillKind = 'count' | 'number' | 'other';

/**
 * rows: [time µs, (series key,) ...values], sorted by series then time. buckets: every bucket
 * start of the range, ascending. keyColumns: 1 without group_by, 2 with.
 */
export function fillGaps(rows: readonly Cell[][], buckets: readonly bigint[], keyColumns: 1 | 2, kinds: readonly FillKind[], mode: FillMode): Cell[][] {
  if (mode === 'none') return rows as Cell[][];
  const out: Cell[][] = [];
  let i = 0;
  while (i < rows.length || (i === 0 && keyColumns === 1)) {
    const series = keyColumns === 2 ? rows[i][1] : null;
    const byTime = new Map<string, Cell[]>();
    while (i < rows.length && (keyColumns === 1 || rows[i][1] === series)) { byTime.set(rows[i][0] as string, rows[i]); i++; }
    out.push(...fillSeries(byTime, buckets, keyColumns, series, kinds, mode));
    if (keyColumns === 1) break;
  }
  return out;
}

function fillSeries(byTime: Map<string, Cell[]>, buckets: readonly bigint[], keyColumns: 1 | 2, series: Cell, kinds: readonly FillKind[], mode: FillMode): Cell[][] {
  const present = buckets.map((b) => byTime.get(b.toString()) ?? null);
  const out: Cell[][] = [];
  let prev = -1;
  for (let k = 0; k < buckets.length; k++) {
    const row = present[k];
    if (row) { out.push(row); prev = k; continue; }
    const key: Cell[] = keyColumns === 2 ? [buckets[k].toString(), series] : [buckets[k].toString()];
    const values = kinds.map((kind, c): Cell => {
      if (kind === 'count') return '0';
      if (mode === 'previous') return prev >= 0 ? (present[prev] as Cell[])[keyColumns + c] : null;
      if (mode === 'linear' && kind === 'number' && prev >= 0) return interpolate(present, buckets, prev, k, keyColumns + c);
      return null;
    });
    out.push([...key, ...values]);
  }
  return out;
}

function interpolate(present: readonly (Cell[] | null)[], buckets: readonly bigint[], prev: number, k: number, col: number): Cell {
  let next = k + 1;
  while (next < present.length && present[next] === null) next++;
  if (next >= present.length) return null;
  const a = (present[prev] as Cell[])[col];
  const b = (present[next] as Cell[])[col];
  if (a === null || b === null) return null;
  const y0 = Number(a); const y1 = Number(b);
  if (!Number.isFinite(y0) || !Number.isFinite(y1)) return null;
  const t0 = Number(buckets[prev]); const t1 = Number(buckets[next]); const t = Number(buckets[k]);
  return String(y0 + ((y1 - y0) * (t - t0)) / (t1 - t0));
}
