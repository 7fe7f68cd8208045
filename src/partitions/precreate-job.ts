// The `chunks` job: keeps the current chunk and the next STRATA_CHUNKS_AHEAD chunks of every
// stream created ahead of the data, so that an ingest at a chunk boundary finds its chunk ready
// instead of creating it (pg_partman's "premake"). Creation goes through ensureChunks, which
// serialises with ingests creating the same chunk.
import { JobFailed, registerJob, type JobContext, type JobResult } from '../jobs/registry.ts';
import { STREAMS_IN_FLIGHT, eachLimited, streamsOf } from '../jobs/each-limited.ts';
import { ensureChunks } from './chunks.ts';

export const CHUNKS_JOB = 'chunks';

async function precreate(ctx: JobContext): Promise<JobResult> {
  const streams = await streamsOf(ctx);
  const nowUs = BigInt(ctx.now().getTime()) * 1000n;
  const created: Record<string, { created: string[] }> = {};
  let total = 0;
  let done = 0;
  const errors: string[] = [];
  await eachLimited(streams, STREAMS_IN_FLIGHT, ctx.signal, async (s) => {
    const ahead = BigInt(ctx.config.chunksAhead) * s.chunkIntervalUs;
    try {
      const names = await ensureChunks(ctx.db, { streamId: s.id, tableName: s.tableName, chunkIntervalUs: s.chunkIntervalUs },
        nowUs, nowUs + ahead, ctx.config.limits.maxNewChunks);
      if (names.length > 0) created[s.name] = { created: names };
      total += names.length;
      done++;
    } catch (err) {
      errors.push(`stream ${s.name}: ${(err as Error).message}`);
    }
  });
  const result = { chunks: total, details: { streams: created, streams_checked: done, ahead: ctx.config.chunksAhead, ...(errors.length ? { errors } : {}) } };
  if (errors.length > 0) throw new JobFailed(`chunks could not be created for ${errors.length} stream(s): ${errors[0]}`, result);
  return result;
}

registerJob({
  name: CHUNKS_JOB,
  description: 'creates the current chunk and the next STRATA_CHUNKS_AHEAD chunks of every stream before data needs them',
  defaultIntervalMs: 60 * 60_000,
  run: precreate,
});
