// What a stream holds and how fresh it is, for the console's stream list: rows and time range of
// its committed ingests, the last ingest, each instrument's rhythm (silent when its last upload is
// more than three of its usual gaps ago), and each rollup level's watermark and pending
// invalidations.
import type { Queryable } from '../db/pool.ts';
import type { Stream } from '../domain/types.ts';

/** An instrument is silent when it has not uploaded for this many of its median gaps. */
export const SILENT_GAPS = 3;

export interface StreamActivity {
  stream: string;
  rows: number;
  ingests: number;
  time_min: string | null;
  time_max: string | null;
  last_ingest_at: string | null;
  instruments: {
    instrument: string | null; ingests: number; last_ingest_at: string; usual_gap_seconds: number | null;
    silent_seconds: number; silent: boolean;
  }[];
  rollups: {
    level: string; watermark: string | null; pending_from: string | null;
    invalidations: number; invalidated_from: string | null; invalidated_to: string | null;
  }[];
}

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

export async function streamActivity(q: Queryable, stream: Stream, now: Date = new Date()): Promise<StreamActivity> {
  const totals = await q.query<{ rows: string | null; ingests: string; time_min: Date | null; time_max: Date | null; last: Date | null }>(
    `SELECT sum(rows)::bigint::text AS rows, count(*)::text AS ingests, min(time_min) AS time_min, max(time_max) AS time_max,
            max(committed_at) AS last
       FROM strata.ingests WHERE stream_id = $1 AND status = 'committed'`, [stream.id]);
  // Per instrument: count, last upload and the median gap between its successive uploads.
  const per = await q.query<{ instrument: string | null; ingests: string; last: Date; gap: number | null }>(
    `SELECT instrument, count(*)::text AS ingests, max(committed_at) AS last,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS gap
       FROM (SELECT instrument, committed_at,
                    extract(epoch FROM committed_at - lag(committed_at) OVER (PARTITION BY instrument ORDER BY committed_at)) AS gap
               FROM strata.ingests WHERE stream_id = $1 AND status = 'committed') g
      GROUP BY instrument ORDER BY instrument NULLS LAST`, [stream.id]);
  const levels = await q.query<{ level: string; watermark: Date | null; pending_from: Date | null; n: string; lo: Date | null; hi: Date | null }>(
    `SELECT l.level, l.watermark, l.pending_from, count(i.id)::text AS n, min(i.range_start) AS lo, max(i.range_end) AS hi
       FROM strata.rollup_levels l
       LEFT JOIN strata.rollup_invalidations i ON i.stream_id = l.stream_id AND i.level = l.level
      WHERE l.stream_id = $1 GROUP BY l.level, l.interval_us, l.watermark, l.pending_from ORDER BY l.interval_us`, [stream.id]);
  const t = totals.rows[0];
  return {
    stream: stream.name,
    rows: Number(t.rows ?? 0),
    ingests: Number(t.ingests),
    time_min: iso(t.time_min),
    time_max: iso(t.time_max),
    last_ingest_at: iso(t.last),
    instruments: per.rows.map((r) => {
      const silentFor = Math.max(0, (now.getTime() - r.last.getTime()) / 1000);
      const gap = r.gap === null ? null : Number(r.gap);
      // Three uploads at least (two gaps) before a rhythm is assumed.
      const usual = Number(r.ingests) >= 3 && gap !== null && gap > 0 ? gap : null;
      return {
        instrument: r.instrument, ingests: Number(r.ingests), last_ingest_at: r.last.toISOString(),
        usual_gap_seconds: usual === null ? null : Math.round(usual * 1000) / 1000,
        silent_seconds: Math.round(silentFor), silent: usual !== null && silentFor > SILENT_GAPS * usual,
      };
    }),
    rollups: levels.rows.map((r) => ({
      level: r.level, watermark: iso(r.watermark), pending_from: iso(r.pending_from),
      invalidations: Number(r.n), invalidated_from: iso(r.lo), invalidated_to: iso(r.hi),
    })),
  };
}
