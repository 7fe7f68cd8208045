// How an aggregated query cuts its range into buckets, and which buckets of a rollup level fall
// wholly inside one of them: fixed widths aligned to the Unix epoch, local calendar days, weeks,
// months, quarters and years in the query's time zone (DST-correct: PostgreSQL converts), or
// `auto`'s max_points buckets over the range.
import type { PoolClient } from '../../db/pool.ts';
import { floorDiv, formatInterval } from '../../domain/interval.ts';
import { type Range, subtract } from '../../domain/ranges.ts';
import { pgTimestamp } from '../../domain/time.ts';
import { AppError } from '../../errors/index.ts';
import { micros } from '../../rollups/layout.ts';
import type { Level } from '../../rollups/levels.ts';
import type { Resolution } from '../params.ts';

export const MAX_BUCKETS = 1_000_000;
const DAY_US = 86_400_000_000n;
const HOUR_US = 3_600_000_000n;
/** A level whose buckets straddle more calendar bucket edges than this serves none of them. */
const MAX_EDGES = 5_000;

export interface Bucketing {
  kind: 'fixed' | 'calendar' | 'auto';
  /** Bucket width (calendar: nominal). */
  widthUs: bigint;
  /** SQL for a row's bucket start (timestamptz) from its time expression (rows of a level: its interval). */
  expr(time: string, params: unknown[], levelUs?: bigint): string;
  /** Within [from, to): where whole buckets of a level of this interval serve query buckets exactly; null: nowhere. */
  exact(levelUs: bigint): Range[] | null;
  /** Of the whole level buckets in `ranges`, those that each fall within one query bucket (they may serve an edge whole). */
  whole(levelUs: bigint, ranges: readonly Range[]): Range[];
  /** Bucket starts over the range (for fill), ascending. */
  starts: bigint[] | null;
  describe: Record<string, unknown>;
}

export function bad(message: string): AppError {
  return new AppError(400, 'invalid_request', message);
}

export function param(params: unknown[], value: unknown): string {
  params.push(value);
  return `$${params.length}`;
}

export const intervalSql = (us: bigint): string => `'${us} microseconds'::interval`;

const floorTo = (x: bigint, L: bigint): bigint => floorDiv(x, L) * L;
const ceilTo = (x: bigint, L: bigint): bigint => -floorDiv(-x, L) * L;

/** The whole buckets of width L within [from, to). */
export function interior(L: bigint, from: bigint, to: bigint): Range[] {
  const r = { start: ceilTo(from, L), end: floorTo(to, L) };
  return r.start < r.end ? [r] : [];
}

/** Each range cut down to the whole buckets of width L it holds. */
export function wholeBuckets(ranges: readonly Range[], L: bigint): Range[] {
  return ranges.flatMap((r) => interior(L, r.start, r.end));
}

/** The buckets of width L that the ranges touch. */
export function bucketHull(ranges: readonly Range[], L: bigint): Range[] {
  return ranges.map((r) => ({ start: floorTo(r.start, L), end: ceilTo(r.end, L) }));
}

export function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return /^[A-Za-z0-9_+\-/]{1,64}$/.test(tz);
  } catch {
    return false;
  }
}

export function tooMany(n: bigint | number, about = false): AppError {
  return bad(`the range would have ${about ? 'about ' : ''}${n} buckets; at most ${MAX_BUCKETS} are answered — choose a coarser resolution or a shorter range`);
}

/** A calendar rule: the local start of a time's bucket, the first start at or before a time, the step. */
interface CalendarRule {
  /** SQL: the local bucket start (timestamp) of a local time (timestamp) expression. */
  floor(local: string): string;
  step: string;
  /** Shortest and longest bucket, for refusing absurd ranges before listing them. */
  minUs: bigint;
  maxUs: bigint;
  describe: Record<string, unknown>;
}

function dayRule(stepDays: bigint): CalendarRule {
  const weeks = stepDays % 7n === 0n;
  const origin = weeks ? '2000-01-03 00:00:00' : '1970-01-01 00:00:00';
  const w = stepDays * DAY_US;
  return {
    floor: (local) => `date_bin(${intervalSql(w)}, ${local}, '${origin}'::timestamp)`,
    step: intervalSql(w), minUs: w - HOUR_US, maxUs: w + HOUR_US,
    describe: { bucket: formatInterval(w), aligned: weeks ? 'local midnight, Mondays' : 'local midnight' },
  };
}

function monthRule(months: number): CalendarRule {
  const named: Record<number, string> = { 1: 'month', 3: 'quarter', 12: 'year' };
  const floor = (local: string): string => (named[months]
    ? `date_trunc('${named[months]}', ${local})`
    : `(date_trunc('month', ${local}) - make_interval(months => mod(mod(extract(year FROM ${local})::int * 12 + extract(month FROM ${local})::int - 1, ${months}) + ${months}, ${months})))`);
  const bucket = months % 12 === 0 ? `${months / 12} year${months === 12 ? '' : 's'}` : `${months} month${months === 1 ? '' : 's'}`;
  return {
    floor, step: `make_interval(months => ${months})`,
    minUs: BigInt(months) * 28n * DAY_US - HOUR_US, maxUs: BigInt(months) * 31n * DAY_US + HOUR_US,
    describe: { bucket, aligned: months % 12 === 0 ? 'local midnight, 1 January' : 'local midnight, the first of the month' },
  };
}

/** Bucket boundaries over [from, to): every start from the one at or before `from`, and the end of the last. */
async function calendarBounds(client: PoolClient, rule: CalendarRule, from: bigint, to: bigint, tz: string): Promise<bigint[]> {
  if ((to - from) / rule.maxUs > BigInt(MAX_BUCKETS)) throw tooMany((to - from) / rule.minUs, true);
  const { rows } = await client.query<{ b: string }>(
    `SELECT ${micros('(g AT TIME ZONE $3)')}::text AS b
       FROM generate_series(${rule.floor('($1::timestamptz AT TIME ZONE $3)')}, ($2::timestamptz AT TIME ZONE $3) + ${rule.step}, ${rule.step}) g`,
    [pgTimestamp(from), pgTimestamp(to), tz]);
  const all = rows.map((r) => BigInt(r.b));
  const end = all.findIndex((b) => b >= to);
  return all.slice(0, end < 0 ? all.length : end + 1);
}

function calendarBucketing(rule: CalendarRule, bounds: bigint[], from: bigint, to: bigint, tz: string): Bucketing {
  const misaligned = new Map<bigint, bigint[]>();
  const edges = (L: bigint): Range[] => {
    if (!misaligned.has(L)) misaligned.set(L, bounds.filter((b) => b % L !== 0n));
    return (misaligned.get(L) as bigint[]).map((b) => ({ start: floorTo(b, L), end: ceilTo(b, L) }));
  };
  return {
    kind: 'calendar', widthUs: rule.minUs + HOUR_US,
    expr: (time, params) => {
      const zone = `${param(params, tz)}::text`;
      return `(${rule.floor(`(${time} AT TIME ZONE ${zone})`)} AT TIME ZONE ${zone})`;
    },
    exact: (L) => {
      const e = edges(L);
      return e.length > MAX_EDGES ? null : subtract(interior(L, from, to), e);
    },
    whole: (L, ranges) => subtract(ranges, edges(L)),
    starts: bounds.slice(0, -1),
    describe: { ...rule.describe, tz },
  };
}

/** `auto`: the coarsest level that still gives max_points buckets, re-bucketed to exactly max_points. */
function autoBucketing(from: bigint, to: bigint, maxPoints: number, levels: readonly Level[]): { b: Bucketing; autoLevel: Level | null } {
  const span = to - from;
  let w = span / BigInt(maxPoints);
  if (w < 1n) w = 1n;
  const coarsest = [...levels].reverse().find((l) => span / l.intervalUs >= BigInt(maxPoints)) ?? null;
  const L = coarsest?.intervalUs ?? 1n;
  const last = from + BigInt(maxPoints - 1) * w;
  return {
    autoLevel: coarsest,
    b: {
      kind: 'auto', widthUs: w,
      expr: (time, params, levelUs) => {
        // A reading belongs to the bucket in which its serving level's bucket starts: rows of the
        // auto level or of a coarser one are at their bucket starts already.
        const inner = coarsest && (levelUs === undefined || levelUs < L) ? `date_bin(${intervalSql(L)}, ${time}, '1970-01-01 00:00:00+00'::timestamptz)` : time;
        const f = `${param(params, pgTimestamp(from))}::timestamptz`;
        return `LEAST(GREATEST(date_bin(${intervalSql(w)}, ${inner}, ${f}), ${f}), ${param(params, pgTimestamp(last))}::timestamptz)`;
      },
      exact: (us) => (coarsest !== null && L % us === 0n ? interior(us, from, to) : null),
      whole: (_us, ranges) => [...ranges],
      starts: Array.from({ length: maxPoints }, (_, k) => from + BigInt(k) * w),
      describe: { bucket: formatInterval(w), buckets: maxPoints, ...(coarsest ? { level: coarsest.name } : {}) },
    },
  };
}

/** Points at the bucket starts of a level (interval L): finer sources are binned to it, coarser rows stay at their starts. */
export function levelPoints(L: bigint, from: bigint, to: bigint): Bucketing {
  return {
    kind: 'auto', widthUs: L,
    expr: (time, _params, levelUs) => (levelUs !== undefined && levelUs >= L ? time : `date_bin(${intervalSql(L)}, ${time}, '1970-01-01 00:00:00+00'::timestamptz)`),
    exact: (us) => (L % us === 0n ? interior(us, from, to) : null),
    whole: (_us, ranges) => [...ranges],
    starts: null,
    describe: {},
  };
}

function fixedStarts(from: bigint, to: bigint, w: bigint): bigint[] {
  const out: bigint[] = [];
  for (let b = floorTo(from, w); b < to; b += w) out.push(b);
  return out;
}

export async function bucketing(client: PoolClient, resolution: Resolution, from: bigint, to: bigint, tz: string | undefined, maxPoints: number, levels: readonly Level[]): Promise<{ b: Bucketing; autoLevel: Level | null }> {
  if (resolution.kind === 'auto') return autoBucketing(from, to, maxPoints, levels);
  if (resolution.kind === 'calendar' || (resolution.kind === 'fixed' && tz !== undefined && resolution.us % DAY_US === 0n)) {
    const rule = resolution.kind === 'calendar' ? monthRule(resolution.months) : dayRule(resolution.us / DAY_US);
    const zone = tz ?? 'UTC';
    const bounds = await calendarBounds(client, rule, from, to, zone);
    if (bounds.length - 1 > MAX_BUCKETS) throw tooMany(bounds.length - 1);
    return { autoLevel: null, b: calendarBucketing(rule, bounds, from, to, zone) };
  }
  if (resolution.kind !== 'fixed') throw new Error(`no buckets for resolution ${resolution.kind}`);
  const w = resolution.us;
  // Buckets from the one holding `from` to the one holding the last instant before `to`.
  const count = floorDiv(to - 1n, w) - floorDiv(from, w) + 1n;
  if (count > BigInt(MAX_BUCKETS)) throw tooMany(count);
  return {
    autoLevel: null,
    b: {
      kind: 'fixed', widthUs: w,
      expr: (time) => `date_bin(${intervalSql(w)}, ${time}, '1970-01-01 00:00:00+00'::timestamptz)`,
      exact: (us) => (w % us === 0n ? interior(us, from, to) : null),
      whole: (us, ranges) => (w % us === 0n ? [...ranges] : []),
      starts: fixedStarts(from, to, w),
      describe: { bucket: formatInterval(w), ...(tz !== undefined ? { tz, note: 'buckets shorter than a day are aligned to UTC' } : {}) },
    },
  };
}
