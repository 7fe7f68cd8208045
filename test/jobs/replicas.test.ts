// Two real servers (startServer) on one database, with the same moved clock: over 20 ticks every
// registered job runs exactly 20 times in total between them, never twice at once.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../src/modules.ts';
import { type Config, loadConfig } from '../../src/config/index.ts';
import { useClock } from '../../src/jobs/clock.ts';
import { registerJob, registeredJobs } from '../../src/jobs/registry.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { FakeClock, waitFor } from '../helpers/clock.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';

const MIN = 60_000;
const JITTER = 5_000;
const TICKS = 20;
const clock = new FakeClock(Date.parse('2031-06-01T00:00:00Z'));
useClock(clock);

let active = 0;
let maxActive = 0;
registerJob({
  name: 'probe', description: 'notes how many of its runs overlap', defaultIntervalMs: MIN,
  async run() {
    active++;
    maxActive = Math.max(maxActive, active);
    await new Promise((r) => setTimeout(r, 5 + Math.random() * 20)); // a window for an overlap to show
    active--;
    return { rows: 1 };
  },
});

let db: TestDb;
let dataDir: string;
let replicas: RunningServer[] = [];

function replicaConfig(): Config {
  const base = loadConfig({
    STRATA_DATA_DIR: dataDir, DATABASE_URL: db.url, PORT: '0', HOST: '127.0.0.1',
    STRATA_ADMIN_KEY: 'strata_replica_test_admin_key', STRATA_LOG_LEVEL: 'error',
  });
  // Every registered job (including ones other modules add later) on the same one-minute beat.
  const jobSchedules = Object.fromEntries(registeredJobs().map((d) => [d.name, { intervalMs: MIN, jitterMs: JITTER }]));
  return { ...base, jobs: true, jobSchedules };
}

beforeAll(async () => {
  db = await createTestDb();
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'strata-replicas-'));
  replicas = [
    await startServer(replicaConfig(), { log: silentLogger(), quiet: true }),
    await startServer(replicaConfig(), { log: silentLogger(), quiet: true }),
  ];
});

afterAll(async () => {
  for (const r of replicas) await r.stop();
  await db.drop();
  await rm(dataDir, { recursive: true, force: true });
});

async function counts(): Promise<{ finished: Map<string, number>; running: number }> {
  const { rows } = await db.pool.query<{ job: string; finished: string; running: string }>(
    `SELECT job, count(*) FILTER (WHERE outcome <> 'running')::text AS finished, count(*) FILTER (WHERE outcome = 'running')::text AS running
       FROM strata.job_runs GROUP BY job`);
  return { finished: new Map(rows.map((r) => [r.job, Number(r.finished)])), running: rows.reduce((n, r) => n + Number(r.running), 0) };
}

/** Every job has run `k` times, nothing runs, and every scheduler loop of both replicas sleeps. */
async function settled(k: number): Promise<void> {
  const jobs = registeredJobs().map((d) => d.name);
  await waitFor(`tick ${k} to settle`, async () => {
    if (clock.sleeping !== jobs.length * replicas.length) return false;
    const c = await counts();
    if (c.running > 0 || jobs.some((j) => (c.finished.get(j) ?? 0) < k)) return false;
    return clock.sleeping === jobs.length * replicas.length;
  }, 60_000);
}

describe('two replicas on one database', () => {
  it('run each job exactly once per tick between them: 20 runs of each over 20 ticks', async () => {
    const jobs = registeredJobs().map((d) => d.name);
    expect(jobs).toEqual(expect.arrayContaining(['chunks', 'retention', 'probe']));
    await settled(0);
    clock.advance(JITTER); // first runs are spread over the jitter after start-up
    await settled(1);
    for (let k = 2; k <= TICKS; k++) {
      clock.advance(MIN + JITTER);
      await settled(k);
    }
    const c = await counts();
    for (const job of jobs) expect(c.finished.get(job), job).toBe(TICKS);
    const { rows } = await db.pool.query<{ job: string; outcome: string; ticks: string; replicas: string; n: string }>(
      `SELECT job, min(outcome) AS outcome, count(DISTINCT started_at)::text AS ticks, count(DISTINCT replica)::text AS replicas, count(*)::text AS n
         FROM strata.job_runs GROUP BY job ORDER BY job`);
    for (const r of rows) {
      expect(r.outcome, r.job).toBe('succeeded');
      expect(Number(r.ticks), r.job).toBe(TICKS); // one run per tick, none twice in a tick
    }
    expect(maxActive).toBe(1);
    // Both replicas took part (each tick's race is won by either).
    const { rows: by } = await db.pool.query<{ n: string }>('SELECT count(DISTINCT replica)::text AS n FROM strata.job_runs');
    expect(Number(by[0].n)).toBe(2);
  });
});
