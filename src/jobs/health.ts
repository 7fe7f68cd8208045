// Whether a job is healthy: not failing through a whole cycle of retries, and run successfully
// within three of its intervals. /readyz and GET /v1/jobs show it; strata_job_healthy exports it.
import type { JobState, RunRecord } from './run-records.ts';
import type { Schedule } from './schedule.ts';

export interface JobHealth {
  ok: boolean;
  /** Why not, when not ok. */
  reason: string | null;
}

/** How many intervals may pass without a successful run before a job counts as stalled. */
export const STALL_INTERVALS = 3;

export function jobHealth(s: Schedule, state: JobState | null, lastRun: RunRecord | null, now: Date): JobHealth {
  if (!state) return { ok: false, reason: 'no scheduler has seen this job yet' };
  if (state.failures > s.retries) {
    const last = lastRun?.error ? `; last error: ${lastRun.error}` : '';
    return { ok: false, reason: `failed ${state.failures} times in a row, retries included${last}` };
  }
  const since = state.lastSuccessAt ?? state.createdAt;
  const limit = STALL_INTERVALS * s.intervalMs;
  if (now.getTime() - since.getTime() > limit) {
    const what = state.lastSuccessAt ? `has not run successfully since ${since.toISOString()}` : `has not run successfully since it was first scheduled at ${since.toISOString()}`;
    return { ok: false, reason: `${what}, more than ${STALL_INTERVALS} × its interval of ${s.intervalMs} ms (are background jobs off on every replica — STRATA_JOBS=off — or is a run stuck?)` };
  }
  return { ok: true, reason: null };
}
