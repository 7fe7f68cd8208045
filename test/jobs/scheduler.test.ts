// The scheduler on a moved clock: runs on schedule with jitter, retries a failing job with
// backoff and shows it unhealthy (GET /v1/jobs, /readyz, metrics) while keeping other jobs going,
// times a run out, notices a job that has not run for 3 intervals, and waits for the run in
// progress when it stops.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { FakeClock, waitFor } from '../helpers/clock.ts';
import { registerJob } from '../../src/jobs/registry.ts';
import { useClock } from '../../src/jobs/clock.ts';
import { type Scheduler, createScheduler } from '../../src/jobs/scheduler.ts';

const START = Date.parse('2030-01-01T00:00:00Z');
const MIN = 60_000;

let flakyFailing = false;
let sleepy: 'quick' | 'hang' | 'slow-stop' = 'quick';
let sleepyFinished = false;

registerJob({ name: 'probe', description: 'counts its runs', defaultIntervalMs: MIN, run: async (ctx) => ({ rows: 1, details: { saw: ctx.now().toISOString() } }) });
registerJob({
  name: 'flaky', description: 'fails while told to', defaultIntervalMs: 10 * MIN,
  run: async () => {
    if (flakyFailing) throw new Error('instrument archive unreachable');
    return { rows: 0 };
  },
});
registerJob({
  name: 'sleepy', description: 'waits to be stopped', defaultIntervalMs: 10 * MIN,
  run: async (ctx) => {
    if (sleepy === 'quick') return {};
    sleepyFinished = false;
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    if (sleepy === 'slow-stop') await new Promise((r) => setTimeout(r, 400)); // finishing its current step
    sleepyFinished = true;
    return { details: { stopped_early: true } };
  },
});

const schedules = {
  probe: { intervalMs: MIN, jitterMs: 5_000 },
  flaky: { intervalMs: 10 * MIN, jitterMs: 0, backoffMs: 10_000, retries: 3 },
  sleepy: { intervalMs: 10 * MIN, jitterMs: 0, timeoutMs: 30_000 },
  chunks: { intervalMs: 60 * MIN, jitterMs: 0 },
  retention: { intervalMs: 60 * MIN, jitterMs: 0 },
};

let t: TestApp;
let clock: FakeClock;
let scheduler: Scheduler;

interface Run { id: number; job: string; trigger: string; attempt: number; outcome: string; error: string | null; started_at: string; finished_at: string | null; rows: number | null }

async function runs(job: string): Promise<Run[]> {
  const res = await t.request(`/v1/jobs/runs?job=${job}&limit=1000`);
  return ((await res.json()) as { runs: Run[] }).runs.reverse();
}

async function finishedRuns(job: string, n: number): Promise<Run[]> {
  return waitFor(`${n} finished runs of ${job}`, async () => {
    const r = (await runs(job)).filter((x) => x.outcome !== 'running');
    return r.length >= n ? r : undefined;
  });
}

async function state(job: string): Promise<{ next_run_at: Date; failures: number }> {
  const { rows } = await t.db.pool.query('SELECT next_run_at, failures FROM strata.job_state WHERE job = $1', [job]);
  return rows[0];
}

async function jobsView(): Promise<Record<string, { healthy: boolean; health: string | null; failures: number; last_run: Run | null; next_run_at: string }>> {
  const body = await (await t.request('/v1/jobs')).json() as { jobs: { name: string }[] };
  return Object.fromEntries(body.jobs.map((j) => [j.name, j])) as never;
}

beforeEach(async () => {
  flakyFailing = false;
  sleepy = 'quick';
  clock = new FakeClock(START);
  useClock(clock);
  t = await createTestApp({ jobs: true, jobSchedules: schedules });
  scheduler = createScheduler(t.deps); // each test starts it once it has set up its jobs' behaviour
});

afterEach(async () => {
  await scheduler.stop();
  await t.close();
});

describe('scheduler', () => {
  it('runs a job when due and again one interval (plus jitter) after each run', async () => {
    await scheduler.start();
    clock.advance(5_000); // first runs are spread over the jitter
    const first = await finishedRuns('probe', 1);
    expect(first[0]).toMatchObject({ trigger: 'schedule', outcome: 'succeeded', rows: 1, attempt: 1 });
    const gaps: number[] = [];
    for (let i = 2; i <= 6; i++) {
      const s = await state('probe');
      const last = (await runs('probe')).at(-1) as Run;
      gaps.push(s.next_run_at.getTime() - Date.parse(last.started_at));
      clock.set(s.next_run_at);
      await finishedRuns('probe', i);
    }
    for (const g of gaps) {
      expect(g).toBeGreaterThanOrEqual(MIN);
      expect(g).toBeLessThan(MIN + 5_000);
    }
    expect(new Set(gaps).size).toBeGreaterThan(1); // jittered, not a fixed beat
    const view = await jobsView();
    expect(view.probe.healthy).toBe(true);
    expect(view.probe.last_run?.outcome).toBe('succeeded');
  });

  it('retries a failing job with backoff, records every attempt, shows it unhealthy, and keeps the other jobs going', async () => {
    flakyFailing = true;
    await scheduler.start();
    clock.advance(5_000);
    await finishedRuns('flaky', 1);
    const delays: number[] = [];
    for (let attempt = 2; attempt <= 4; attempt++) {
      const s = await state('flaky');
      const prev = (await runs('flaky')).at(-1) as Run;
      delays.push(s.next_run_at.getTime() - Date.parse(prev.finished_at as string));
      clock.set(s.next_run_at);
      await finishedRuns('flaky', attempt);
    }
    expect(delays).toEqual([10_000, 20_000, 40_000]);
    const all = await runs('flaky');
    expect(all.map((r) => [r.trigger, r.attempt, r.outcome])).toEqual([
      ['schedule', 1, 'failed'], ['retry', 2, 'failed'], ['retry', 3, 'failed'], ['retry', 4, 'failed'],
    ]);
    expect(all.every((r) => r.error === 'instrument archive unreachable')).toBe(true);
    const { rows: audited } = await t.db.pool.query(`SELECT actor_role, details FROM strata.audit_log WHERE action = 'job.failed' AND subject = 'job:flaky' ORDER BY seq`);
    expect(audited.map((a) => [a.actor_role, a.details.run_id, a.details.attempt])).toEqual(all.map((r) => ['system', r.id, r.attempt]));
    // Retries used up: back to the interval, and unhealthy everywhere it is shown.
    const s = await state('flaky');
    expect(s.failures).toBe(4);
    expect(s.next_run_at.getTime() - Date.parse(all[3].started_at)).toBe(10 * MIN);
    const view = await jobsView();
    expect(view.flaky.healthy).toBe(false);
    expect(view.flaky.health).toContain('failed 4 times in a row');
    expect(view.flaky.health).toContain('instrument archive unreachable');
    const ready = await (await t.request('/readyz', { key: null })).json() as { ready: boolean; ok: boolean; checks: { name: string; ok: boolean; detail: { reason: string } }[] };
    expect(ready.ready).toBe(true);
    expect(ready.ok).toBe(false);
    expect(ready.checks.find((c) => c.name === 'job:flaky')).toMatchObject({ ok: false });
    expect(ready.checks.find((c) => c.name === 'job:probe')).toMatchObject({ ok: true });
    const metrics = await (await t.request('/metrics', { key: null })).text();
    expect(metrics).toMatch(/strata_job_healthy\{job="flaky"\} 0/);
    expect(metrics).toMatch(/strata_job_healthy\{job="probe"\} 1/);
    expect(metrics).toMatch(/strata_job_runs_total\{job="flaky",outcome="failed"\} 4/);
    // The other jobs kept their schedule meanwhile.
    expect((await finishedRuns('probe', 2)).every((r) => r.outcome === 'succeeded')).toBe(true);
    // Once the cause is gone, the next run succeeds and the job is healthy again.
    flakyFailing = false;
    clock.set(s.next_run_at);
    await finishedRuns('flaky', 5);
    expect((await runs('flaky')).at(-1)?.outcome).toBe('succeeded');
    expect((await jobsView()).flaky.healthy).toBe(true);
  });

  it('stops a run at its timeout and records it as timed out', async () => {
    sleepy = 'hang';
    await scheduler.start();
    clock.advance(1);
    await waitFor('a running sleepy run', async () => (await runs('sleepy')).find((r) => r.outcome === 'running'));
    clock.advance(30_000);
    const [run] = await finishedRuns('sleepy', 1);
    expect(run.outcome).toBe('timed_out');
    expect(run.error).toContain('timeout of 30000 ms');
    expect(sleepyFinished).toBe(true);
    expect((await state('sleepy')).failures).toBe(1);
  });

  it('waits for the run in progress when it stops', async () => {
    sleepy = 'slow-stop';
    await scheduler.start();
    clock.advance(1);
    await waitFor('a running sleepy run', async () => (await runs('sleepy')).find((r) => r.outcome === 'running'));
    expect(sleepyFinished).toBe(false);
    await scheduler.stop();
    expect(sleepyFinished).toBe(true);
    const [run] = await runs('sleepy');
    expect(run.outcome).toBe('interrupted');
    expect(run.error).toContain('the server shut down');
    // Not a failure, and still due: another replica takes it up.
    const s = await state('sleepy');
    expect(s.failures).toBe(0);
    expect(s.next_run_at.getTime()).toBeLessThanOrEqual(clock.now().getTime());
  });
});

describe('a job nobody runs', () => {
  it('turns unhealthy after 3 intervals without a run', async () => {
    const idle = createScheduler({ ...t.deps, config: { ...t.deps.config, jobs: false }, services: {} });
    await idle.start(); // STRATA_JOBS=off: schedules exist, nothing runs
    expect((await idle.overview()).find((j) => j.name === 'probe')?.healthy).toBe(true);
    clock.advance(3 * MIN + 1);
    const probe = (await idle.overview()).find((j) => j.name === 'probe');
    expect(probe?.healthy).toBe(false);
    expect(probe?.health).toContain('has not run successfully since');
    expect(probe?.scheduled_here).toBe(false);
    await idle.stop();
  });
});
