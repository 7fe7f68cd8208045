// One run of one job: under the job's lock, with a run record written before it starts and
// completed when it ends, a timeout, and the schedule state moved on (next run, or a retry with
// backoff after a failure). Errors are recorded and logged, never thrown out of a timer.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/index.ts';
import { type Db, withTransaction } from '../db/pool.ts';
import type { Logger } from '../logging/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Clock } from './clock.ts';
import { type Actor, appendAudit, systemActor } from '../audit/log.ts';
import { JobLock } from './job-lock.ts';
import { type JobDefinition, type JobResult, JobFailed } from './registry.ts';
import {
  type RunEnd, type RunRecord, type RunTrigger, abandonStale, finishRun, insertRun, readState, updateState,
} from './run-records.ts';
import { type Schedule, nextRegularRun, retryDelayMs } from './schedule.ts';

/** What a run needs from the server it runs in. */
export interface RunEnv {
  /** For the job's lock and run records. */
  db: Db;
  /** For the job's work (its backends may run at a lower CPU priority). */
  workDb: Db;
  config: Config;
  log: Logger;
  metrics: Metrics;
  clock: Clock;
  /** This server's name in run records. */
  replica: string;
  /** Aborts when the server shuts down. */
  shutdown: AbortSignal;
}

export function replicaName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

export interface RunOptions {
  trigger: RunTrigger;
  stream?: string;
  /** The key that asked for a manual run. */
  actor?: Actor;
}

/**
 * A scheduled run: takes the lock if it is free and runs the job if it is (still) due.
 * 'busy' when another run holds the lock, 'not_due' when another replica just ran it.
 */
export async function runIfDue(env: RunEnv, def: JobDefinition, s: Schedule): Promise<RunRecord | 'busy' | 'not_due'> {
  const lock = await JobLock.tryAcquire(env.db, def.name);
  if (!lock) return 'busy';
  try {
    const state = await readState(env.db.pool, def.name);
    if (!state || state.nextRunAt.getTime() > env.clock.now().getTime()) return 'not_due';
    // Consecutive failures count on across cycles; each cycle is one run and up to `retries` retries.
    const attempt = (state.failures % (s.retries + 1)) + 1;
    return await runLocked(env, lock, def, s, { trigger: attempt > 1 ? 'retry' : 'schedule' }, attempt);
  } finally {
    await lock.release();
  }
}

/** A manual run: waits up to `waitMs` for a run in progress elsewhere; null if it stayed busy. */
export async function runNow(env: RunEnv, def: JobDefinition, s: Schedule, opts: RunOptions, waitMs: number): Promise<RunRecord | null> {
  const lock = await JobLock.acquire(env.db, def.name, waitMs);
  if (!lock) return null;
  try {
    return await runLocked(env, lock, def, s, opts, 1);
  } finally {
    await lock.release();
  }
}

type StopReason = 'timeout' | 'shutdown' | 'lock';

async function runLocked(env: RunEnv, lock: JobLock, def: JobDefinition, s: Schedule, opts: RunOptions, attempt: number): Promise<RunRecord> {
  const startedAt = env.clock.now();
  const abandoned = await abandonStale(env.db, def.name, startedAt);
  if (abandoned.length > 0) env.log.warn({ job: def.name, runs: abandoned }, 'job runs of a replica that stopped mid-run marked abandoned');
  const runId = await insertRun(env.db, {
    job: def.name, stream: opts.stream ?? null, trigger: opts.trigger, attempt,
    triggeredBy: opts.actor?.keyId ?? null, replica: env.replica, startedAt,
  });
  const log = env.log.child({ job: def.name, run: runId });
  const { result, error, stopped } = await execute(env, lock, def, s, opts, { runId, startedAt }, log);
  const end = runEnd(env.clock.now(), result, error, stopped, s);
  if (end.outcome === 'failed' || end.outcome === 'timed_out') log.error({ err: error, outcome: end.outcome }, `job ${def.name} ${end.outcome}`);
  else log.info({ outcome: end.outcome, rows: end.rows, chunks: end.chunks }, `job ${def.name} ${end.outcome}`);
  const record = await withTransaction(env.db, async (tx) => {
    const rec = await finishRun(tx, runId, end);
    // A stream-limited run says nothing about the job as a whole; a run that lost its lock no
    // longer owns the schedule (another replica may be running the job already).
    if (opts.stream === undefined && stopped !== 'lock') {
      await updateState(tx, def.name, {
        runId, finishedAt: end.finishedAt, nextRunAt: nextRunAfter(s, opts.trigger, startedAt, end, attempt),
        result: end.outcome === 'succeeded' ? 'success' : end.outcome === 'interrupted' ? 'neutral' : 'failure',
      });
    }
    // Failures are audited too (last, as the audit chain lock is held to COMMIT): a maintenance
    // job that keeps failing is something compliance sees.
    if (end.outcome === 'failed' || end.outcome === 'timed_out') {
      await appendAudit(tx, opts.actor ?? systemActor, 'job.failed', `job:${def.name}`, {
        run_id: runId, job: def.name, stream: opts.stream ?? null, outcome: end.outcome, attempt, trigger: opts.trigger,
        replica: env.replica, error: end.error,
      });
    }
    return rec;
  });
  env.metrics.jobRuns.inc({ job: def.name, outcome: end.outcome });
  return record;
}

function nextRunAfter(s: Schedule, trigger: RunTrigger, startedAt: Date, end: RunEnd, attempt: number): Date | undefined {
  if (trigger === 'manual') return undefined; // a manual run does not move the schedule
  if (end.outcome === 'interrupted') return undefined; // still due: another replica picks it up
  if (end.outcome === 'succeeded') return nextRegularRun(s, startedAt);
  // Attempt `attempt` of this cycle failed: retry while retries remain, then wait for the interval.
  if (attempt <= s.retries) return new Date(end.finishedAt.getTime() + retryDelayMs(s, attempt));
  return nextRegularRun(s, startedAt);
}

async function execute(
  env: RunEnv, lock: JobLock, def: JobDefinition, s: Schedule, opts: RunOptions, run: { runId: number; startedAt: Date }, log: RunEnv['log'],
): Promise<{ result: JobResult | null; error: unknown; stopped: StopReason | null }> {
  const controller = new AbortController();
  let stopped: StopReason | null = null;
  const stop = (why: StopReason) => (): void => {
    if (stopped === null) stopped = why;
    controller.abort(new Error(`job stopped: ${why}`));
  };
  const onShutdown = stop('shutdown');
  const onLost = stop('lock');
  env.shutdown.addEventListener('abort', onShutdown, { once: true });
  lock.lost.addEventListener('abort', onLost, { once: true });
  if (env.shutdown.aborted) onShutdown();
  const timerDone = new AbortController();
  // The timeout counts from the run's start, not from here: recording the run took time too.
  const timeoutLeft = run.startedAt.getTime() + s.timeoutMs - env.clock.now().getTime();
  void env.clock.sleep(Math.max(timeoutLeft, 0), timerDone.signal).then(() => { if (!timerDone.signal.aborted) stop('timeout')(); });
  try {
    const result = await def.run({
      db: env.workDb, config: env.config, log, now: () => env.clock.now(), stream: opts.stream, signal: controller.signal, runId: run.runId,
    });
    return { result, error: null, stopped };
  } catch (error) {
    return { result: error instanceof JobFailed ? error.result : null, error, stopped };
  } finally {
    timerDone.abort();
    env.shutdown.removeEventListener('abort', onShutdown);
    lock.lost.removeEventListener('abort', onLost);
  }
}

function runEnd(finishedAt: Date, result: JobResult | null, error: unknown, stopped: StopReason | null, s: Schedule): RunEnd {
  const base = {
    finishedAt, rows: result?.rows ?? null, chunks: result?.chunks ?? null, details: result?.details ?? {},
  };
  if (stopped === 'timeout') {
    return { ...base, outcome: 'timed_out', error: `did not finish within its timeout of ${s.timeoutMs} ms; stopped at its next safe point${error ? ` (${messageOf(error)})` : ''}` };
  }
  if (stopped === 'shutdown' || stopped === 'lock') {
    const why = stopped === 'shutdown' ? 'the server shut down' : 'the replica lost its database session (and with it the job lock)';
    return { ...base, outcome: 'interrupted', error: `${why} during the run; stopped at its next safe point${error ? ` (${messageOf(error)})` : ''}` };
  }
  if (error) return { ...base, outcome: 'failed', error: messageOf(error) };
  return { ...base, outcome: 'succeeded', error: null };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
