// A job's effective schedule: its registered default interval, overridden per job from the
// environment (STRATA_JOB_<NAME>_INTERVAL …), and the arithmetic of the next run: interval plus
// jitter after a run, exponential backoff after a failure.
import type { Config } from '../config/index.ts';
import type { JobDefinition } from './registry.ts';

export interface Schedule {
  intervalMs: number;
  /** Up to this much is added at random to each interval, so replicas and jobs do not stampede. */
  jitterMs: number;
  /** A run is told to stop (its signal aborts) after this long; it is then recorded as timed_out. */
  timeoutMs: number;
  /** Failed runs retried this many times before the job waits for its next interval. */
  retries: number;
  /** First retry delay; doubled for each further retry, never beyond the interval. */
  backoffMs: number;
}

const MINUTE = 60_000;

export function scheduleOf(def: JobDefinition, config: Config): Schedule {
  const o = config.jobSchedules[def.name] ?? {};
  const intervalMs = o.intervalMs ?? def.defaultIntervalMs;
  return {
    intervalMs,
    jitterMs: o.jitterMs ?? Math.min(Math.floor(intervalMs / 10), 5 * MINUTE),
    timeoutMs: o.timeoutMs ?? Math.max(30 * MINUTE, intervalMs),
    retries: o.retries ?? 3,
    backoffMs: o.backoffMs ?? Math.min(30_000, intervalMs),
  };
}

/** The environment variable prefix that configures a job, for messages and GET /v1/jobs. */
export function settingPrefix(job: string): string {
  return `STRATA_JOB_${job.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_`;
}

/** When a job is due again after a run that started at `startedAt`. */
export function nextRegularRun(s: Schedule, startedAt: Date, random: () => number = Math.random): Date {
  return new Date(startedAt.getTime() + s.intervalMs + Math.floor(random() * s.jitterMs));
}

/** Delay before retry number `failures` (1 = first retry). */
export function retryDelayMs(s: Schedule, failures: number): number {
  const exp = s.backoffMs * 2 ** Math.min(Math.max(failures - 1, 0), 30);
  return Math.min(exp, s.intervalMs);
}
