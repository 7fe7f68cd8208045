// Buckets that retention has emptied of raw rows: a level bucket holding rows of a dropped raw
// chunk can no longer be rebuilt from the raw rows that are left, so it keeps what it holds.
import type { Queryable } from '../db/pool.ts';
import { floorDiv } from '../domain/interval.ts';
import { type Range, normalise } from '../domain/ranges.ts';
import { pgTimestamp } from '../domain/time.ts';
import { micros } from './layout.ts';

/**
 * The buckets of a level (interval L) within [from, to] that hold raw rows retention dropped:
 * they cannot be rebuilt from the raw rows that are left.
 */
export async function droppedRawBuckets(q: Queryable, streamId: number, intervalUs: bigint, from: bigint, to: bigint): Promise<Range[]> {
  const { rows } = await q.query<{ s: string; e: string }>(
    `SELECT ${micros('range_start')}::text AS s, ${micros('range_end')}::text AS e
       FROM strata.chunks WHERE stream_id = $1 AND level = 'raw' AND state = 'dropped'
        AND range_start <= $3::timestamptz AND range_end > $2::timestamptz`,
    [streamId, pgTimestamp(from), pgTimestamp(to)]);
  const L = intervalUs;
  return normalise(rows.map((r) => ({ start: floorDiv(BigInt(r.s), L) * L, end: (floorDiv(BigInt(r.e) - 1n, L) + 1n) * L })));
}
