// The statistics a segment keeps beyond count, NaN count, min, max and sum: the other parts of a
// rollup level row (rollups/layout.ts) over the segment's rows — first and last with their times,
// the times of the earliest and latest NaN, the count of true — so that a refresh can take a
// segment that falls inside one bucket from its statistics instead of decoding it
// (rollups/segment-parts.ts). They follow the level's rules: first is the smallest value at the
// earliest time, last the largest at the latest, over the values other than NULL and NaN; text
// compares as UTF-8 bytes (COLLATE "C").
import type { ColumnType, Validity } from '../domain/types.ts';
import { type PlainValues, isValid } from './codecs/columns.ts';

/** Text values longer than this (UTF-8 bytes) are not kept: such a segment is decoded instead. */
export const MAX_TEXT_STAT_BYTES = 64;

/** A number as text PostgreSQL reads back to the same double, −0 included. */
export function numberText(x: number): string {
  return Object.is(x, -0) ? '-0' : String(x);
}

/** What a segment keeps of one field (its `stats` jsonb, by column name). */
export interface FieldStats {
  /** Values that are neither NULL nor NaN, and NaNs. */
  count: number;
  nan: number;
  /** As text (exact for int8, −0 as "-0"); null when count is 0. */
  min: string | null;
  max: string | null;
  sum: string | null;
  /**
   * The other parts of a rollup level row (below); absent from segments written before
   * they were kept, and `first`/`last` from text segments whose values are long.
   */
  first?: string | null;
  /** µs; absent when it is the segment's time_min (time_max for lastAt). */
  firstAt?: string;
  last?: string | null;
  lastAt?: string;
  /** µs of the earliest and latest NaN; absent when there is none. */
  nanFirst?: string;
  nanLast?: string;
  /** bool: how many true. */
  true?: number;
}

type Parts = Partial<FieldStats>;

/**
 * The times as `key` (numbers that order and compare as the times do: the times themselves when
 * exact as Numbers, else their ranks) and as `time` (to print them); min and max: keys.
 */
export interface TimeSpan {
  time: BigInt64Array;
  key: Float64Array;
  n: number;
  min: number;
  max: number;
  /** Every time later than the one before (as a segment of rows in time order, without ties, has them). */
  ascending: boolean;
}

/** Numbers that order as the times do, without a BigInt per comparison. */
function timeKeys(time: BigInt64Array, n: number): Float64Array {
  const key = new Float64Array(n);
  const w = new Int32Array(time.buffer, time.byteOffset, 2 * n);
  let exact = true;
  for (let i = 0; i < n && exact; i++) {
    const hi = w[2 * i + 1];
    if (hi >= 0x20_0000 || hi < -0x20_0000) exact = false;
    else key[i] = hi * 0x1_0000_0000 + (w[2 * i] >>> 0);
  }
  if (exact) return key;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => (time[a] < time[b] ? -1 : time[a] > time[b] ? 1 : 0));
  for (let r = 0; r < n; r++) key[idx[r]] = r > 0 && time[idx[r]] === time[idx[r - 1]] ? key[idx[r - 1]] : r;
  return key;
}

/** The first and last of rows 0 … n − 1 that `counts` (−1 when none does). */
function firstAndLast(n: number, counts: (i: number) => boolean): [number, number] {
  let f = 0;
  while (f < n && !counts(f)) f++;
  if (f === n) return [-1, -1];
  let l = n - 1;
  while (!counts(l)) l--;
  return [f, l];
}

/** The times of first and last (rows f and l), where they are not the segment's first and last time. */
function withTimes(out: Parts, f: number, l: number, s: TimeSpan): Parts {
  if (f >= 0 && s.key[f] !== s.min) out.firstAt = String(s.time[f]);
  if (l >= 0 && s.key[l] !== s.max) out.lastAt = String(s.time[l]);
  return out;
}

function numbers(v: ArrayLike<number>, validity: Validity | null, s: TimeSpan, nanAware: boolean): Parts {
  const { key: time, n } = s;
  let f = -1; let l = -1; let nf = -1; let nl = -1;
  if (s.ascending) {
    // Row order is time order, without ties: first and last are the first and last values of the
    // rows, the earliest and latest NaN the first and last NaN.
    [f, l] = firstAndLast(n, (i) => isValid(validity, i) && (!nanAware || v[i] === v[i]));
    if (nanAware) [nf, nl] = firstAndLast(n, (i) => isValid(validity, i) && v[i] !== v[i]);
  } else for (let i = 0; i < n; i++) {
    if (!isValid(validity, i)) continue;
    const x = v[i];
    if (nanAware && x !== x) {
      if (nf < 0 || time[i] < time[nf]) nf = i;
      if (nl < 0 || time[i] > time[nl]) nl = i;
      continue;
    }
    if (f < 0 || time[i] < time[f] || (time[i] === time[f] && x < v[f])) f = i;
    if (l < 0 || time[i] > time[l] || (time[i] === time[l] && x > v[l])) l = i;
  }
  const out = withTimes({ first: f < 0 ? null : numberText(v[f]), last: l < 0 ? null : numberText(v[l]) }, f, l, s);
  if (nf >= 0) { out.nanFirst = String(s.time[nf]); out.nanLast = String(s.time[nl]); }
  return out;
}

function bigints(v: BigInt64Array, validity: Validity | null, s: TimeSpan): Parts {
  const { key: time, n } = s;
  let f = -1; let l = -1;
  if (s.ascending) [f, l] = firstAndLast(n, (i) => isValid(validity, i));
  else for (let i = 0; i < n; i++) {
    if (!isValid(validity, i)) continue;
    if (f < 0 || time[i] < time[f] || (time[i] === time[f] && v[i] < v[f])) f = i;
    if (l < 0 || time[i] > time[l] || (time[i] === time[l] && v[i] > v[l])) l = i;
  }
  return withTimes({ first: f < 0 ? null : String(v[f]), last: l < 0 ? null : String(v[l]) }, f, l, s);
}

function strings(v: readonly (string | null)[], validity: Validity | null, s: TimeSpan): Parts {
  const { key: time, n } = s;
  let f = -1; let l = -1;
  const bytes = (i: number): Buffer => Buffer.from(v[i] ?? '', 'utf8');
  if (s.ascending) [f, l] = firstAndLast(n, (i) => isValid(validity, i) && v[i] !== null);
  else for (let i = 0; i < n; i++) {
    if (!isValid(validity, i) || v[i] === null) continue;
    if (f < 0 || time[i] < time[f] || (time[i] === time[f] && Buffer.compare(bytes(i), bytes(f)) < 0)) f = i;
    if (l < 0 || time[i] > time[l] || (time[i] === time[l] && Buffer.compare(bytes(i), bytes(l)) > 0)) l = i;
  }
  if ((f >= 0 && bytes(f).length > MAX_TEXT_STAT_BYTES) || (l >= 0 && bytes(l).length > MAX_TEXT_STAT_BYTES)) return {};
  return withTimes({ first: f < 0 ? null : v[f], last: l < 0 ? null : v[l] }, f, l, s);
}

/** A segment's n times as levelStats compares them; made once for all its fields. */
export function timeSpan(time: BigInt64Array, n: number): TimeSpan {
  const key = timeKeys(time, n);
  let min = key[0]; let max = key[0];
  let ascending = true;
  for (let i = 1; i < n; i++) {
    const k = key[i];
    if (k <= key[i - 1]) ascending = false;
    if (k < min) min = k;
    if (k > max) max = k;
  }
  return { time, key, n, min, max, ascending };
}

/**
 * The level parts of one field over a segment's n rows at `time`, as the keys to add to its
 * FieldStats; `span`: timeSpan(time, n), when the caller has it.
 */
export function levelStats(type: ColumnType, values: PlainValues, validity: Validity | null, time: BigInt64Array, n: number, span?: TimeSpan): Parts {
  if (values.kind === 'bits') {
    let t = 0;
    for (let i = 0; i < n; i++) if (isValid(validity, i) && ((values.bitmap[(values.offset + i) >> 3] >> ((values.offset + i) & 7)) & 1)) t++;
    return { true: t };
  }
  span ??= timeSpan(time, n);
  if (values.kind === 'number') return numbers(values.values, validity, span, type === 'float8' || type === 'float4');
  if (values.kind === 'bigint') return bigints(values.values, validity, span);
  return strings(values.values, validity, span);
}
