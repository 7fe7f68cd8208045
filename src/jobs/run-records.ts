// The run records (strata.job_runs) and the shared schedule state (strata.job_state). Writes
// that decide the schedule happen under the job's advisory lock (job-lock.ts); reads are free.
import type { Db, PoolClient, Queryable } from '../db/pool.ts';

export type RunTrigger = 'schedule' | 'retry' | 'manual';
export type RunOutcome = 'running' | 'succeeded' | 'failed' | 'timed_out' | 'interrupted' | 'abandoned';

/** A run as the API shows it. */
export interface RunRecord {
  id: number;
  job: string;
  stream: string | null;
  trigger: RunTrigger;
  attempt: number;
  triggered_by: number | null;
  replica: string;
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  outcome: RunOutcome;
  rows: number | null;
  chunks: number | null;
  details: Record<string, unknown>;
  error: string | null;
}

export interface JobState {
  job: string;
  nextRunAt: Date;
  failures: number;
  lastRunId: number | null;
  lastFinishedAt: Date | null;
  lastSuccessAt: Date | null;
  createdAt: Date;
}

interface RunRow {
  id: string; job: string; stream: string | null; trigger: RunTrigger; attempt: number; triggered_by: string | null;
  replica: string; started_at: Date; finished_at: Date | null; outcome: RunOutcome; rows: string | null;
  chunks: string | null; details: Record<string, unknown>; error: string | null;
}

interface StateRow {
  job: string; next_run_at: Date; failures: number; last_run_id: string | null;
  last_finished_at: Date | null; last_success_at: Date | null; created_at: Date;
}

function toRun(r: RunRow): RunRecord {
  return {
    id: Number(r.id), job: r.job, stream: r.stream, trigger: r.trigger, attempt: r.attempt,
    triggered_by: r.triggered_by === null ? null : Number(r.triggered_by), replica: r.replica,
    started_at: r.started_at.toISOString(), finished_at: r.finished_at?.toISOString() ?? null,
    duration_ms: r.finished_at ? r.finished_at.getTime() - r.started_at.getTime() : null,
    outcome: r.outcome, rows: r.rows === null ? null : Number(r.rows), chunks: r.chunks === null ? null : Number(r.chunks),
    details: r.details, error: r.error,
  };
}

function toState(r: StateRow): JobState {
  return {
    job: r.job, nextRunAt: r.next_run_at, failures: r.failures, lastRunId: r.last_run_id === null ? null : Number(r.last_run_id),
    lastFinishedAt: r.last_finished_at, lastSuccessAt: r.last_success_at, createdAt: r.created_at,
  };
}

/** Creates the job's state row the first time any replica sees the job. */
export async function ensureState(db: Db, job: string, firstRunAt: Date, now: Date): Promise<void> {
  await db.pool.query(
    `INSERT INTO strata.job_state (job, next_run_at, created_at) VALUES ($1, $2, $3) ON CONFLICT (job) DO NOTHING`,
    [job, firstRunAt, now]);
}

export async function readState(q: Queryable, job: string): Promise<JobState | null> {
  const { rows } = await q.query<StateRow>('SELECT * FROM strata.job_state WHERE job = $1', [job]);
  return rows[0] ? toState(rows[0]) : null;
}

export async function readStates(q: Queryable): Promise<Map<string, JobState>> {
  const { rows } = await q.query<StateRow>('SELECT * FROM strata.job_state');
  return new Map(rows.map((r) => [r.job, toState(r)]));
}

/**
 * Marks the job's runs still 'running' as abandoned. Called by the holder of the job's lock, so
 * any such run belongs to a replica that died (or lost its database session) mid-run.
 */
export async function abandonStale(db: Db, job: string, now: Date): Promise<number[]> {
  const { rows } = await db.pool.query<{ id: string }>(
    `UPDATE strata.job_runs SET outcome = 'abandoned', finished_at = $2,
            error = 'the replica running it stopped (died or lost its database session) before it finished'
      WHERE job = $1 AND outcome = 'running' RETURNING id`, [job, now]);
  return rows.map((r) => Number(r.id));
}

export interface NewRun {
  job: string;
  stream: string | null;
  trigger: RunTrigger;
  attempt: number;
  triggeredBy: number | null;
  replica: string;
  startedAt: Date;
}

export async function insertRun(db: Db, r: NewRun): Promise<number> {
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO strata.job_runs (job, stream, trigger, attempt, triggered_by, replica, started_at, outcome)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'running') RETURNING id`,
    [r.job, r.stream, r.trigger, r.attempt, r.triggeredBy, r.replica, r.startedAt]);
  return Number(rows[0].id);
}

export interface RunEnd {
  finishedAt: Date;
  outcome: Exclude<RunOutcome, 'running'>;
  rows: number | null;
  chunks: number | null;
  details: Record<string, unknown>;
  error: string | null;
}

export async function finishRun(tx: PoolClient, id: number, end: RunEnd): Promise<RunRecord> {
  const { rows } = await tx.query<RunRow>(
    `UPDATE strata.job_runs SET finished_at = $2, outcome = $3, rows = $4, chunks = $5, details = $6, error = $7
      WHERE id = $1 RETURNING *`,
    [id, end.finishedAt, end.outcome, end.rows, end.chunks, JSON.stringify(end.details), end.error]);
  return toRun(rows[0]);
}

export interface StateChange {
  runId: number;
  finishedAt: Date;
  /** 'neutral' (an interrupted run) changes neither the failure count nor the last success. */
  result: 'success' | 'failure' | 'neutral';
  /** Set to move the schedule; undefined leaves next_run_at as it is. */
  nextRunAt?: Date;
}

export async function updateState(tx: PoolClient, job: string, c: StateChange): Promise<void> {
  await tx.query(
    `UPDATE strata.job_state SET
        next_run_at = coalesce($3, next_run_at),
        failures = CASE $4 WHEN 'success' THEN 0 WHEN 'failure' THEN failures + 1 ELSE failures END,
        last_success_at = CASE WHEN $4 = 'success' THEN $5 ELSE last_success_at END,
        last_run_id = $2, last_finished_at = $5
      WHERE job = $1`,
    [job, c.runId, c.nextRunAt ?? null, c.result, c.finishedAt]);
}

export interface RunFilter {
  job?: string;
  stream?: string;
  outcome?: RunOutcome;
  /** Only runs with a smaller id (paging backwards). */
  before?: number;
  limit?: number;
}

/**
 * Runs, newest first. With `stream`, the runs limited to that stream and the runs over every
 * stream whose details name it (jobs report per-stream work under details.streams).
 */
export async function listRuns(q: Queryable, f: RunFilter): Promise<RunRecord[]> {
  const { rows } = await q.query<RunRow>(
    `SELECT * FROM strata.job_runs
      WHERE ($1::text IS NULL OR job = $1)
        AND ($2::text IS NULL OR stream = $2 OR (stream IS NULL AND details->'streams' ? $2))
        AND ($3::text IS NULL OR outcome = $3)
        AND ($4::bigint IS NULL OR id < $4)
      ORDER BY id DESC LIMIT $5`,
    [f.job ?? null, f.stream ?? null, f.outcome ?? null, f.before ?? null, Math.min(Math.max(f.limit ?? 50, 1), 1000)]);
  return rows.map(toRun);
}

export async function getRun(q: Queryable, id: number): Promise<RunRecord | null> {
  const { rows } = await q.query<RunRow>('SELECT * FROM strata.job_runs WHERE id = $1', [id]);
  return rows[0] ? toRun(rows[0]) : null;
}

/** The newest run of every job. */
export async function latestRuns(q: Queryable): Promise<Map<string, RunRecord>> {
  const { rows } = await q.query<RunRow>(
    `SELECT DISTINCT ON (job) * FROM strata.job_runs ORDER BY job, id DESC`);
  return new Map(rows.map((r) => [r.job, toRun(r)]));
}

/** The job's runs in progress (normally at most one). */
export async function runningRuns(q: Queryable, job: string): Promise<RunRecord[]> {
  const { rows } = await q.query<RunRow>(
    `SELECT * FROM strata.job_runs WHERE job = $1 AND outcome = 'running' ORDER BY id`, [job]);
  return rows.map(toRun);
}
