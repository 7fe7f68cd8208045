// The `retention` job: for every stream with a policy, and every level the policy limits, drops
// the chunks that ended before now − keep. Never a chunk that a legal hold overlaps; never a chunk
// whose range a coarser level that outlives it has not absorbed — the job asks the rollups to
// absorb the range first (coverage port) and skips the chunk, saying why, when they cannot.
import { type JobContext, type JobResult, JobFailed, registerJob } from '../jobs/registry.ts';
import { STREAMS_IN_FLIGHT, eachLimited, streamsOf } from '../jobs/each-limited.ts';
import { withPause } from '../jobs/pause.ts';
import { type RollupCoverage, rollupCoverage } from '../rollups/coverage.ts';
import type { Stream } from '../streams/catalog.ts';
import { formatMicros } from '../domain/time.ts';
import { RAW_LEVEL, type RetentionPolicy, keepUs } from './policy.ts';
import { activeHolds } from './holds.ts';
import { type ChunkRow, dropChunk, expiredChunks, repairDetached } from './drop-chunk.ts';

export const RETENTION_JOB = 'retention';

interface ChunkNote { chunk: string; level: string; from: string; to: string }
interface StreamReport {
  dropped: (ChunkNote & { rows: number })[];
  skipped: (ChunkNote & { reason: string })[];
  ignored_levels?: string[];
  /** Chunks a crashed run had left detached, attached again. */
  reattached?: string[];
}

interface Pass {
  ctx: JobContext;
  coverage: RollupCoverage | null;
  nowUs: bigint;
  rows: number;
  dropped: number;
  skipped: number;
  errors: string[];
}

function note(c: ChunkRow): ChunkNote {
  return { chunk: c.tableName, level: c.level, from: formatMicros(c.startUs), to: formatMicros(c.endUs) };
}

async function retention(ctx: JobContext): Promise<JobResult> {
  const pass: Pass = { ctx, coverage: rollupCoverage(), nowUs: BigInt(ctx.now().getTime()) * 1000n, rows: 0, dropped: 0, skipped: 0, errors: [] };
  const streams: Record<string, StreamReport> = {};
  await eachLimited(await streamsOf(ctx), STREAMS_IN_FLIGHT, ctx.signal, async (stream) => {
    const policy = stream.settings.retention as RetentionPolicy | undefined;
    try {
      const repaired = await repairDetached(ctx.db, stream);
      const report = policy ? await retainStream(pass, stream, policy) : { dropped: [], skipped: [] };
      if (repaired.length) report.reattached = repaired;
      if (report.dropped.length || report.skipped.length || report.ignored_levels || report.reattached) streams[stream.name] = report;
    } catch (err) {
      pass.errors.push(`stream ${stream.name}: ${(err as Error).message}`);
    }
  });
  const result: JobResult = {
    rows: pass.rows, chunks: pass.dropped,
    details: { dropped: pass.dropped, skipped: pass.skipped, streams, ...(pass.errors.length ? { errors: pass.errors } : {}) },
  };
  if (pass.errors.length > 0) throw new JobFailed(`retention failed for ${pass.errors.length} chunk(s) or stream(s): ${pass.errors[0]}`, result);
  return result;
}

async function retainStream(pass: Pass, stream: Stream, policy: RetentionPolicy): Promise<StreamReport> {
  const levels = pass.coverage ? await pass.coverage.levels(pass.ctx.db, stream) : [];
  const report: StreamReport = { dropped: [], skipped: [] };
  const ignored = Object.keys(policy).filter((l) => l !== RAW_LEVEL && !levels.includes(l));
  if (ignored.length > 0) report.ignored_levels = ignored;
  const all = [RAW_LEVEL, ...levels];
  for (let i = 0; i < all.length; i++) {
    const keep = keepUs(policy, all[i]);
    if (keep === null || pass.ctx.signal.aborted) continue;
    // The levels coarser than this one: the ones that must have absorbed what this one drops.
    await retainLevel(pass, stream, policy, all[i], keep, levels.slice(i), report);
  }
  return report;
}

interface Candidate { chunk: ChunkRow; needs: string[] }

async function retainLevel(
  pass: Pass, stream: Stream, policy: RetentionPolicy, level: string, keep: bigint, coarser: string[], report: StreamReport,
): Promise<void> {
  const { ctx } = pass;
  const cutoffUs = pass.nowUs - keep;
  const chunks = await expiredChunks(ctx.db.pool, stream.id, level, cutoffUs);
  if (chunks.length === 0) return;
  const holds = await activeHolds(ctx.db.pool, stream.id);
  const skip = (c: ChunkRow, reason: string): void => {
    report.skipped.push({ ...note(c), reason });
    pass.skipped++;
  };
  const candidates: Candidate[] = [];
  for (const chunk of chunks) {
    if (ctx.signal.aborted) return;
    const held = holds.filter((h) => (h.fromUs === null || h.fromUs < chunk.endUs) && (h.toUs === null || h.toUs > chunk.startUs));
    if (held.length > 0) {
      skip(chunk, `legal hold ${held.map((h) => `${h.hold.id} (${JSON.stringify(h.hold.reason)})`).join(', ')} covers part of the chunk`);
      continue;
    }
    // Without levels to ask, rows that arrive meanwhile simply expire with the chunk.
    candidates.push({ chunk, needs: coarser.filter((l) => outlives(policy, l, chunk, pass.nowUs)) });
  }
  const blocked = await coverageOf(pass, stream, candidates);
  for (const c of candidates) {
    if (ctx.signal.aborted) return;
    const why = blocked.get(c.chunk.id);
    if (why) {
      skip(c.chunk, why);
      continue;
    }
    try {
      const out = await withPause(ctx.config.retentionPausePercent, ctx.signal, () => dropChunk(ctx.db, {
        stream, chunk: c.chunk, coverage: pass.coverage, runId: ctx.runId, now: ctx.now(), keep: policy[level] as string, cutoffUs, absorbedBy: c.needs,
      }));
      if (!out.dropped) skip(c.chunk, out.reason);
      else {
        report.dropped.push({ ...note(c.chunk), rows: out.rows });
        pass.dropped++;
        pass.rows += out.rows;
      }
    } catch (err) {
      pass.errors.push(`chunk ${c.chunk.tableName}: ${(err as Error).message}`);
      skip(c.chunk, `error: ${(err as Error).message}`);
    }
  }
}

/** Level `level` still keeps part of the chunk's range now (kept forever, or cut off after the chunk's start). */
function outlives(policy: RetentionPolicy, level: string, c: ChunkRow, nowUs: bigint): boolean {
  const keep = keepUs(policy, level);
  return keep === null || nowUs - keep < c.endUs;
}

/**
 * Asks the rollups to absorb the candidates' ranges; returns, per chunk that may not be dropped,
 * why. One call covers every chunk that needs the same levels; only when that call does not
 * confirm all of them is each chunk asked about on its own.
 */
async function coverageOf(pass: Pass, stream: Stream, candidates: Candidate[]): Promise<Map<number, string>> {
  const blocked = new Map<number, string>();
  const groups = new Map<string, Candidate[]>();
  for (const c of candidates) {
    if (c.needs.length === 0) continue;
    const key = c.needs.join(',');
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  for (const group of groups.values()) {
    const needs = group[0].needs;
    if (!pass.coverage) {
      for (const c of group) blocked.set(c.chunk.id, `rollup levels ${needs.join(', ')} outlive the chunk but no rollups module reports their coverage`);
      continue;
    }
    const from = group.reduce((m, c) => (c.chunk.startUs < m ? c.chunk.startUs : m), group[0].chunk.startUs);
    const to = group.reduce((m, c) => (c.chunk.endUs > m ? c.chunk.endUs : m), group[0].chunk.endUs);
    if (await absorbed(pass, stream, needs, from, to) === null) continue;
    for (const c of group) {
      const why = await absorbed(pass, stream, needs, c.chunk.startUs, c.chunk.endUs);
      if (why !== null) blocked.set(c.chunk.id, why);
    }
  }
  return blocked;
}

/** null when every level has absorbed [from, to); otherwise why not. */
async function absorbed(pass: Pass, stream: Stream, levels: string[], from: bigint, to: bigint): Promise<string | null> {
  try {
    const cov = await (pass.coverage as RollupCoverage).absorb(pass.ctx.db, stream, levels, from, to, pass.ctx.now(), {
      lagUs: pass.ctx.config.rollupLagUs, maxNewChunks: pass.ctx.config.limits.maxNewChunks, runId: pass.ctx.runId,
      pausePercent: pass.ctx.config.retentionPausePercent, signal: pass.ctx.signal,
    });
    const missing = levels.filter((l) => !cov.some((x) => x.level === l && x.absorbed));
    if (missing.length === 0) return null;
    return missing.map((l) => {
      const why = cov.find((x) => x.level === l)?.reason;
      return `rollup level ${l} has not absorbed ${formatMicros(from)} – ${formatMicros(to)}${why ? `: ${why}` : ''}`;
    }).join('; ');
  } catch (err) {
    return `the rollups could not confirm ${levels.join(', ')} cover ${formatMicros(from)} – ${formatMicros(to)}: ${(err as Error).message}`;
  }
}

registerJob({
  name: RETENTION_JOB,
  description: 'drops whole chunks older than each stream\'s retention policy, never one a legal hold covers or a longer-kept rollup level has not absorbed',
  defaultIntervalMs: 60 * 60_000,
  run: retention,
});
