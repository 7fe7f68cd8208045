// The scheduler: one loop per registered job on every replica. Each loop sleeps until the job's
// shared next_run_at (strata.job_state), then races the other replicas for the job's advisory
// lock; the winner re-checks that the job is still due, runs it and moves next_run_at on, so the
// others find it not due and go back to sleep: one run per tick across all replicas.
import type { Config } from '../config/index.ts';
import { type Db, closeDb, createDb } from '../db/pool.ts';
import { lowerBackendPriority } from '../db/priority.ts';
import type { Logger } from '../logging/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { AppError } from '../errors/index.ts';
import type { Actor } from '../audit/log.ts';
import { type Clock, jobClock } from './clock.ts';
import { type JobHealth, jobHealth } from './health.ts';
import { type JobDefinition, registeredJob, registeredJobs } from './registry.ts';
import { type RunEnv, replicaName, runIfDue, runNow } from './run-job.ts';
import { type JobState, type RunRecord, ensureState, latestRuns, readState, readStates, runningRuns } from './run-records.ts';
import { type Schedule, scheduleOf, settingPrefix } from './schedule.ts';

/** Longest sleep between looks at the shared schedule (schedules may change on other replicas). */
const MAX_SLEEP_MS = 60_000;
/** Wait before looking again when another replica holds a due job's lock. */
const BUSY_RECHECK_MS = 5_000;
/** Wait before looking again after the database could not be reached. */
const ERROR_RECHECK_MS = 10_000;
/** Connections of the pool the jobs do their work on. */
const WORK_POOL_SIZE = 8;
/** How long POST /v1/jobs/{name}/run waits for a run in progress elsewhere. */
export const MANUAL_WAIT_MS = 60_000;

export interface JobOverview {
  name: string;
  description: string;
  schedule: {
    interval_ms: number; jitter_ms: number; timeout_ms: number; retries: number; backoff_ms: number;
    /** The environment variables that set it. */
    settings: string;
  };
  /** False when this replica runs no background jobs (STRATA_JOBS=off). */
  scheduled_here: boolean;
  next_run_at: string | null;
  failures: number;
  last_success_at: string | null;
  last_run: RunRecord | null;
  healthy: boolean;
  health: string | null;
}

/** What the scheduler needs of the server (the HTTP layer's AppDeps has all of it). */
export interface SchedulerDeps {
  db: Db;
  config: Config;
  log: Logger;
  metrics: Metrics;
  services: Record<string, unknown>;
}

type HealthCheck = () => Promise<{ name: string; ok: boolean; detail?: unknown }[]>;

export class Scheduler {
  private readonly replica = replicaName();
  private readonly stopController = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly manualRuns = new Set<Promise<unknown>>();
  private workDb: Db | null = null;

  constructor(private readonly deps: SchedulerDeps, private readonly fixedClock?: Clock) {}

  get clock(): Clock {
    return this.fixedClock ?? jobClock();
  }

  private get env(): RunEnv {
    const { db, config, log, metrics } = this.deps;
    return {
      db, workDb: this.work(), config, log, metrics, clock: this.clock, replica: this.replica, shutdown: this.stopController.signal,
    };
  }

  /**
   * The jobs' own pool, whose backends run at a lower CPU priority (STRATA_JOB_NICE, see
   * db/priority.ts), so that maintenance yields the CPU to ingests and queries. Locks and run
   * records stay on the server's pool.
   */
  private work(): Db {
    if (this.deps.config.jobNice <= 0) return this.deps.db;
    if (!this.workDb) {
      const work = createDb(this.deps.db.url, WORK_POOL_SIZE);
      let reported = false;
      work.pool.on('connect', (client) => {
        if (lowerBackendPriority(client, this.deps.config.jobNice) || reported) return;
        reported = true;
        this.deps.log.info('job connections run at the normal CPU priority (PostgreSQL is not on this machine, or may not be reniced)');
      });
      this.workDb = work;
    }
    return this.workDb;
  }

  scheduleOf(def: JobDefinition): Schedule {
    return scheduleOf(def, this.deps.config);
  }

  /** Creates the shared schedule rows, then (unless STRATA_JOBS=off) starts one loop per job. */
  async start(): Promise<void> {
    const now = this.clock.now();
    for (const def of registeredJobs()) {
      const s = this.scheduleOf(def);
      await ensureState(this.deps.db, def.name, new Date(now.getTime() + Math.floor(Math.random() * s.jitterMs)), now);
    }
    const known = new Set(registeredJobs().map((d) => d.name));
    for (const name of Object.keys(this.deps.config.jobSchedules)) {
      if (!known.has(name)) this.deps.log.warn({ job: name }, `${settingPrefix(name)}* is set but no job is called ${JSON.stringify(name)}; jobs: ${[...known].join(', ')}`);
    }
    if (!this.deps.config.jobs) {
      this.deps.log.info('background jobs are off on this replica (STRATA_JOBS=off)');
      return;
    }
    for (const def of registeredJobs()) this.loops.push(this.loop(def));
  }

  /** Stops the loops; waits for runs in progress, which are told to stop at their next safe point. */
  async stop(): Promise<void> {
    this.stopController.abort();
    await Promise.all(this.loops);
    await Promise.allSettled([...this.manualRuns]);
    const work = this.workDb;
    this.workDb = null;
    if (work) await closeDb(work);
  }

  private async loop(def: JobDefinition): Promise<void> {
    const s = this.scheduleOf(def);
    const stop = this.stopController.signal;
    while (!stop.aborted) {
      let wakeAt: number;
      try {
        wakeAt = await this.step(def, s);
      } catch (err) {
        this.deps.log.error({ err, job: def.name }, `scheduler: cannot check job ${def.name}; trying again`);
        wakeAt = this.clock.now().getTime() + Math.min(s.intervalMs, ERROR_RECHECK_MS);
      }
      // Measured right before sleeping (no await in between), so time that passed while the step
      // ran is not slept again.
      const ms = wakeAt - this.clock.now().getTime();
      if (ms > 0) await this.clock.sleep(Math.min(ms, MAX_SLEEP_MS), stop);
    }
  }

  /** Runs the job if it is due; returns when to look again (epoch ms). */
  private async step(def: JobDefinition, s: Schedule): Promise<number> {
    const state = await readState(this.deps.db.pool, def.name);
    const now = this.clock.now().getTime();
    if (!state) {
      await ensureState(this.deps.db, def.name, new Date(now), new Date(now));
      return now;
    }
    if (state.nextRunAt.getTime() > now) {
      await this.overview().catch(() => undefined); // keeps strata_job_healthy current
      return state.nextRunAt.getTime();
    }
    const r = await runIfDue(this.env, def, s);
    if (r === 'busy') return now + Math.min(s.intervalMs, BUSY_RECHECK_MS);
    return now;
  }

  /** Runs a job now (POST /v1/jobs/{name}/run), waiting for a run in progress elsewhere first. */
  async runNow(name: string, opts: { stream?: string; actor?: Actor } = {}): Promise<RunRecord> {
    const def = registeredJob(name);
    if (!def) {
      throw new AppError(404, 'not_found', `no job is called ${JSON.stringify(name)}; jobs: ${registeredJobs().map((d) => d.name).join(', ')}`);
    }
    if (this.stopController.signal.aborted) throw new AppError(503, 'job_busy', 'the server is shutting down; run the job on another replica');
    const p = runNow(this.env, def, this.scheduleOf(def), { trigger: 'manual', ...opts }, MANUAL_WAIT_MS);
    this.manualRuns.add(p);
    try {
      const record = await p;
      if (record) return record;
    } finally {
      this.manualRuns.delete(p);
    }
    const running = await runningRuns(this.deps.db.pool, name);
    const which = running.map((r) => `run ${r.id} on ${r.replica}, started ${r.started_at}`).join('; ') || 'a run';
    throw new AppError(409, 'job_busy',
      `job ${name} is already running (${which}) and did not finish within ${MANUAL_WAIT_MS / 1000} s; see GET /v1/jobs/runs?job=${name} and try again when it has finished`);
  }

  /** Every registered job with its schedule, state, last run and health. */
  async overview(): Promise<JobOverview[]> {
    const [states, latest] = await Promise.all([readStates(this.deps.db.pool), latestRuns(this.deps.db.pool)]);
    const now = this.clock.now();
    return registeredJobs().map((def) => {
      const s = this.scheduleOf(def);
      const state = states.get(def.name) ?? null;
      const last = latest.get(def.name) ?? null;
      const health = jobHealth(s, state, last, now);
      this.deps.metrics.jobHealthy.set({ job: def.name }, health.ok ? 1 : 0);
      return overviewOf(def, s, state, last, health, this.deps.config.jobs);
    });
  }

  /** For /readyz: one check per job. */
  readonly healthCheck: HealthCheck = async () => (await this.overview()).map((j) => ({
    name: `job:${j.name}`, ok: j.healthy,
    detail: { reason: j.health, failures: j.failures, last_success_at: j.last_success_at, next_run_at: j.next_run_at, last_outcome: j.last_run?.outcome ?? null },
  }));
}

function overviewOf(def: JobDefinition, s: Schedule, state: JobState | null, last: RunRecord | null, health: JobHealth, here: boolean): JobOverview {
  return {
    name: def.name,
    description: def.description,
    schedule: {
      interval_ms: s.intervalMs, jitter_ms: s.jitterMs, timeout_ms: s.timeoutMs, retries: s.retries, backoff_ms: s.backoffMs,
      settings: `${settingPrefix(def.name)}{INTERVAL,JITTER,TIMEOUT,RETRIES,BACKOFF}`,
    },
    scheduled_here: here,
    next_run_at: state?.nextRunAt.toISOString() ?? null,
    failures: state?.failures ?? 0,
    last_success_at: state?.lastSuccessAt?.toISOString() ?? null,
    last_run: last,
    healthy: health.ok,
    health: health.reason,
  };
}

/** The scheduler of this server; one that was not started (tests, STRATA_JOBS=off) still runs jobs on demand. */
export function schedulerOf(deps: SchedulerDeps): Scheduler {
  let s = deps.services.scheduler as Scheduler | undefined;
  if (!s) {
    s = new Scheduler(deps);
    deps.services.scheduler = s;
  }
  return s;
}

/** Makes the server's scheduler and adds its health checks to /readyz. */
export function createScheduler(deps: SchedulerDeps): Scheduler {
  const s = schedulerOf(deps);
  const checks = (deps.services.healthChecks ??= []) as HealthCheck[];
  checks.push(s.healthCheck);
  return s;
}
