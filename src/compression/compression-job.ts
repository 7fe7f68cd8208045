// The `compression` job: for every stream, the raw chunks that ended more than compress_after
// ago and hold plain rows — never compressed yet, or compressed and since given late rows — are
// converted (compress-chunk.ts), one chunk at a time per stream.
import { type JobContext, type JobResult, JobFailed, registerJob } from '../jobs/registry.ts';
import { STREAMS_IN_FLIGHT, eachLimited, streamsOf } from '../jobs/each-limited.ts';
import type { Queryable } from '../db/pool.ts';
import { DATA_SCHEMA, qualified } from '../db/sql.ts';
import { pgTimestamp } from '../domain/time.ts';
import type { Stream } from '../domain/types.ts';
import { type ChunkRef, compressChunk } from './compress-chunk.ts';
import { compressAfterUs } from './policy.ts';

export const COMPRESSION_JOB = 'compression';

/** Chunks ended before the cutoff that hold plain rows (probed through each chunk's table). */
export async function chunksToCompress(q: Queryable, stream: Stream, cutoffUs: bigint): Promise<ChunkRef[]> {
  const { rows } = await q.query<{ id: string; table_name: string; s: string; e: string }>(
    `SELECT c.id, c.table_name, (extract(epoch FROM c.range_start) * 1000000)::bigint::text AS s,
            (extract(epoch FROM c.range_end) * 1000000)::bigint::text AS e
       FROM strata.chunks c
      WHERE c.stream_id = $1 AND c.level = 'raw' AND c.state = 'active' AND c.range_end <= $2::timestamptz
        AND to_regclass(format('%I.%I', $3::text, c.table_name)) IS NOT NULL
      ORDER BY c.range_start`, [stream.id, pgTimestamp(cutoffUs), DATA_SCHEMA]);
  const out: ChunkRef[] = [];
  for (const r of rows) {
    const { rows: any } = await q.query(`SELECT 1 FROM ${qualified(DATA_SCHEMA, r.table_name)} LIMIT 1`);
    if (any.length > 0) out.push({ id: Number(r.id), tableName: r.table_name, startUs: BigInt(r.s), endUs: BigInt(r.e) });
  }
  return out;
}

/**
 * The conversion's worker thread and reading backend run at the lowest priority, 19, as a backup's
 * copy does, whenever jobs run lowered at all (STRATA_JOB_NICE > 0): it is the heaviest of the
 * jobs' work. Uploads beside a 4M-row conversion, quiet machine, same run length: 7.2 % slower
 * at nice 10, 3.6 % at nice 19 (test/bench/README.md, "Compression").
 */
function conversionNice(jobNice: number): number {
  return jobNice > 0 ? 19 : 0;
}

async function compression(ctx: JobContext): Promise<JobResult> {
  const nowUs = BigInt(ctx.now().getTime()) * 1000n;
  let rows = 0;
  let chunks = 0;
  let bytes = 0;
  const errors: string[] = [];
  const done: Record<string, { chunk: string; rows: number; segments: number; bytes: number; paused_ms: number }[]> = {};
  await eachLimited(await streamsOf(ctx), STREAMS_IN_FLIGHT, ctx.signal, async (stream) => {
    const after = compressAfterUs(stream.settings);
    if (after === null) return;
    try {
      for (const c of await chunksToCompress(ctx.db.pool, stream, nowUs - after)) {
        if (ctx.signal.aborted) break;
        const out = await compressChunk(ctx.db, stream, c, { runId: ctx.runId, nice: conversionNice(ctx.config.jobNice), busyPausePercent: ctx.config.compressionBusyPausePercent });
        if (!out) continue;
        rows += out.rows; chunks++; bytes += out.bytes;
        (done[stream.name] ??= []).push({ chunk: c.tableName, rows: out.rows, segments: out.segments, bytes: out.bytes, paused_ms: out.pausedMs });
      }
    } catch (err) {
      errors.push(`stream ${stream.name}: ${(err as Error).message}`);
    }
  });
  const result: JobResult = { rows, chunks, details: { bytes, streams: done, ...(errors.length ? { errors } : {}) } };
  if (errors.length > 0) throw new JobFailed(`compression failed for ${errors.length} stream(s): ${errors[0]}`, result);
  return result;
}

registerJob({
  name: COMPRESSION_JOB,
  description: 'rewrites raw chunks older than their stream\'s compress_after into compressed columnar segments, and late rows into segments of their own',
  defaultIntervalMs: 15 * 60_000,
  run: compression,
});
