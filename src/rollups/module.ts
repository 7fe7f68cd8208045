// The rollups feature, wired into the server: the "rollups" stream setting with its level tables,
// invalidations from ingests and retractions, the `rollups` refresh job, the coverage port that
// retention asks before it drops raw chunks, and the aggregated query resolutions.
import type { Db } from '../db/pool.ts';
import { floorDiv } from '../domain/interval.ts';
import { formatMicros } from '../domain/time.ts';
import { appendAudit, systemActor } from '../audit/log.ts';
import { withTransaction } from '../db/pool.ts';
import { STREAMS_IN_FLIGHT, eachLimited, streamsOf } from '../jobs/each-limited.ts';
import { JobFailed, registerJob, type JobContext, type JobResult } from '../jobs/registry.ts';
import { registerResolutionReader } from '../query/run-query.ts';
import { type Stream, getStream } from '../streams/catalog.ts';
import { onColumnsAdded, registerStreamSetting } from '../streams/settings.ts';
import { type AbsorbOptions, type LevelCoverage, registerRollupCoverage } from './coverage.ts';
import { invalidatedWithin } from './invalidation-log.ts';
import { addLevelColumns, applyLevels } from './level-tables.ts';
import { DEFAULT_LEVELS, loadLevels, parseLevels } from './levels.ts';
import { type RefreshRange, refreshStream } from './refresh.ts';
import { readAggregates } from '../query/downsample/reader.ts';
import './invalidate.ts';

export const ROLLUPS_JOB = 'rollups';

registerStreamSetting<string[]>({
  key: 'rollups',
  defaultValue: () => DEFAULT_LEVELS,
  parse: (value, stream) => parseLevels(value, stream),
  async apply(tx, stream, _previous, next) {
    await applyLevels(tx, stream, next ?? []);
  },
  show: (value) => value ?? [],
});

onColumnsAdded((tx, stream) => addLevelColumns(tx, stream));

/** A summary of a stream's refresh for the run record and the audit log. */
function summarise(ranges: readonly RefreshRange[]): Record<string, unknown> {
  const byLevel: Record<string, { ranges: number; rows_read: number; rows_written: number; segments_summarised?: number; segments_decoded?: number }> = {};
  for (const r of ranges) {
    const l = (byLevel[r.level] ??= { ranges: 0, rows_read: 0, rows_written: 0 });
    l.ranges++;
    l.rows_read += r.rowsRead;
    l.rows_written += r.rowsWritten;
    // Compressed segments read: from their statistics, or decoded.
    if (r.segments) {
      l.segments_summarised = (l.segments_summarised ?? 0) + r.segments.summarised;
      l.segments_decoded = (l.segments_decoded ?? 0) + r.segments.decoded;
    }
  }
  return { levels: byLevel, recomputed: ranges.slice(0, 50), ...(ranges.length > 50 ? { recomputed_more: ranges.length - 50 } : {}) };
}

async function refreshJob(ctx: JobContext): Promise<JobResult> {
  const nowUs = BigInt(ctx.now().getTime()) * 1000n;
  const streams: Record<string, unknown> = {};
  const errors: string[] = [];
  let rows = 0;
  let ranges = 0;
  const withLevels: Stream[] = [];
  for (const s of await streamsOf(ctx)) if ((await loadLevels(ctx.db.pool, s.id)).length > 0) withLevels.push(s);
  await eachLimited(withLevels, STREAMS_IN_FLIGHT, ctx.signal, async (stream) => {
    try {
      const done = await refreshStream(ctx.db, stream, {
        nowUs, lagUs: ctx.config.rollupLagUs, runId: ctx.runId, maxNewChunks: ctx.config.limits.maxNewChunks, signal: ctx.signal,
      });
      if (done.length === 0) return;
      const summary = summarise(done);
      streams[stream.name] = summary;
      rows += done.reduce((n, r) => n + r.rowsWritten, 0);
      ranges += done.length;
      await withTransaction(ctx.db, (tx) => appendAudit(tx, systemActor, 'rollups.refresh', `stream:${stream.name}`, { run_id: ctx.runId, ...summary }));
    } catch (err) {
      errors.push(`stream ${stream.name}: ${(err as Error).message}`);
    }
  });
  const result: JobResult = { rows, chunks: ranges, details: { streams, streams_checked: withLevels.length, ...(errors.length ? { errors } : {}) } };
  if (errors.length > 0) throw new JobFailed(`the rollups of ${errors.length} stream(s) could not be refreshed: ${errors[0]}`, result);
  return result;
}

registerJob({
  name: ROLLUPS_JOB,
  description: 'recomputes invalidated rollup buckets and advances every level\'s watermark to now − STRATA_ROLLUP_LAG',
  defaultIntervalMs: 60_000,
  run: refreshJob,
});

async function absorb(db: Db, stream: Stream, levels: string[], fromUs: bigint, toUs: bigint, now: Date, opts?: AbsorbOptions): Promise<LevelCoverage[]> {
  const fresh = (await getStream(db.pool, stream.name)) ?? stream;
  await refreshStream(db, fresh, {
    nowUs: BigInt(now.getTime()) * 1000n, lagUs: opts?.lagUs ?? 60_000_000n, runId: opts?.runId ?? null,
    maxNewChunks: opts?.maxNewChunks ?? 1000, untilUs: toUs, pausePercent: opts?.pausePercent, signal: opts?.signal,
  }, { from: fromUs, to: toUs });
  const have = await loadLevels(db.pool, stream.id);
  const out: LevelCoverage[] = [];
  for (const name of levels) {
    const level = have.find((l) => l.name === name);
    if (!level) { out.push({ level: name, absorbed: false, reason: `the stream has no rollup level ${name}` }); continue; }
    const L = level.intervalUs;
    const end = (floorDiv(toUs - 1n, L) + 1n) * L;
    if (level.watermarkUs === null || level.watermarkUs < end) {
      out.push({ level: name, absorbed: false, reason: `materialised only up to ${level.watermarkUs === null ? 'nothing yet' : formatMicros(level.watermarkUs)}; the bucket ending ${formatMicros(end)} is not complete before now − STRATA_ROLLUP_LAG` });
      continue;
    }
    if (await invalidatedWithin(db.pool, stream.id, name, fromUs, toUs)) { out.push({ level: name, absorbed: false, reason: 'late rows were written there after the refresh' }); continue; }
    out.push({ level: name, absorbed: true });
  }
  return out;
}

registerRollupCoverage({
  levels: async (db, stream) => (await loadLevels(db.pool, stream.id)).map((l) => l.name),
  absorb,
  async staleWithin(q, stream, levels, fromUs, toUs) {
    for (const level of levels) if (await invalidatedWithin(q, stream.id, level, fromUs, toUs)) return true;
    return false;
  },
});

registerResolutionReader(readAggregates);
