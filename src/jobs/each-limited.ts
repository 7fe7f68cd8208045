// Maintenance over many streams, a few at a time: drops and chunk creation spend most of their
// time waiting for commits (WAL flushes), so several streams in flight finish a pass sooner,
// while a small limit keeps the pass from crowding out ingests.
import { AppError } from '../errors/index.ts';
import { getStream, listStreams, type Stream } from '../streams/catalog.ts';
import type { JobContext } from './registry.ts';

export const STREAMS_IN_FLIGHT = 4;

/** The streams a run covers: the one it was asked for (`?stream=`), else every stream. */
export async function streamsOf(ctx: JobContext): Promise<Stream[]> {
  if (ctx.stream === undefined) return listStreams(ctx.db.pool);
  const s = await getStream(ctx.db.pool, ctx.stream);
  if (!s) throw new AppError(404, 'not_found', `stream ${JSON.stringify(ctx.stream)} does not exist`);
  return [s];
}

/**
 * Calls fn for every item, at most `limit` at once, stopping early when `signal` aborts or fn
 * throws. Returns only when no call is in flight any more (a job's run must not end — and give up
 * its lock — while its work goes on), then rethrows the first error.
 */
export async function eachLimited<T>(items: readonly T[], limit: number, signal: AbortSignal, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (failure === null && next < items.length && !signal.aborted) {
      try {
        await fn(items[next++]);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
}
