// The invalidation log (strata.rollup_invalidations): buckets of a level whose aggregates rows
// written or retracted below its watermark made stale, per tag set (or every tag set) and bucket
// range. Uploads and retractions add to it in their own transactions; the refresh rebuilds what
// it names and removes it; queries and retention ask whether a range is clean.
import type { PoolClient, Queryable } from '../db/pool.ts';
import { pgTimestamp } from '../domain/time.ts';
import type { TagValues } from './tag-sets.ts';

export interface Invalidation {
  level: string;
  values: TagValues | null;
  start: bigint;
  end: bigint;
}

/** Adds invalidations in the caller's transaction, `cause` saying whose (e.g. ingest:<id>). */
export async function recordInvalidations(tx: PoolClient, streamId: number, list: readonly Invalidation[], cause: string): Promise<void> {
  for (let i = 0; i < list.length; i += 1000) {
    const part = list.slice(i, i + 1000);
    await tx.query(
      `INSERT INTO strata.rollup_invalidations (stream_id, level, tag_values, range_start, range_end, cause)
       SELECT $1, l, t::jsonb, s::timestamptz, e::timestamptz, $6
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(l, t, s, e)`,
      [streamId, part.map((x) => x.level), part.map((x) => (x.values === null ? null : JSON.stringify(x.values))),
        part.map((x) => pgTimestamp(x.start)), part.map((x) => pgTimestamp(x.end)), cause]);
  }
}

/** Whether a level has an invalidation (stale buckets) overlapping [from, to). */
export async function invalidatedWithin(q: Queryable, streamId: number, level: string, from: bigint, to: bigint): Promise<boolean> {
  const { rows } = await q.query(
    `SELECT 1 FROM strata.rollup_invalidations WHERE stream_id = $1 AND level = $2
        AND range_start < $4::timestamptz AND range_end > $3::timestamptz LIMIT 1`,
    [streamId, level, pgTimestamp(from), pgTimestamp(to)]);
  return rows.length > 0;
}
