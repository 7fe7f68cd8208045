// A replica that dies mid-run releases its job: its database session ends, PostgreSQL drops the
// job's advisory lock, and another replica takes the job up and marks the dead run abandoned.
// Once with a replica process killed (SIGKILL), once with a replica's database session terminated.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import '../../src/modules.ts';
import { type Config, loadConfig } from '../../src/config/index.ts';
import { registerJob } from '../../src/jobs/registry.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { waitFor } from '../helpers/clock.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const ADMIN = 'strata_replica_death_admin_key';

let mode: 'quick' | 'hang-until-stopped' = 'quick';
let stoppedEarly = false;
registerJob({
  name: 'handover', description: 'hangs on the first replica', defaultIntervalMs: 3_600_000,
  async run(ctx) {
    if (mode === 'quick') return { rows: 1 };
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    stoppedEarly = true;
    return {};
  },
});

let db: TestDb;
let dataDir: string;
const started: RunningServer[] = [];
let child: ChildProcess | null = null;

const env = (): Record<string, string> => ({
  STRATA_DATA_DIR: dataDir, DATABASE_URL: db.url, PORT: '0', HOST: '127.0.0.1', STRATA_ADMIN_KEY: ADMIN,
  STRATA_LOG_LEVEL: 'error', STRATA_JOB_HANDOVER_INTERVAL: '1 hour', STRATA_JOB_HANDOVER_JITTER: '0',
  STRATA_JOB_CHUNKS_INTERVAL: '1 hour', STRATA_JOB_RETENTION_INTERVAL: '1 hour',
});

function config(): Config {
  return loadConfig(env());
}

async function runsOf(job: string): Promise<{ id: string; replica: string; outcome: string; error: string | null; finished_at: Date | null }[]> {
  const { rows } = await db.pool.query('SELECT id, replica, outcome, error, finished_at FROM strata.job_runs WHERE job = $1 ORDER BY id', [job]);
  return rows;
}

// The handover job's advisory lock (src/jobs/job-lock.ts: key (7310005, hashtext(name))), as
// pg_locks shows a two-key advisory lock; other jobs that happen to be running hold their own.
const HANDOVER_LOCK = `l.locktype = 'advisory' AND l.classid = 7310005 AND l.objsubid = 2
  AND l.objid::bigint = (hashtext('handover')::bigint & 4294967295) AND l.granted AND d.datname = current_database()`;

async function heldJobLocks(): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE ${HANDOVER_LOCK}`);
  return Number(rows[0].n);
}

beforeAll(async () => {
  db = await createTestDb();
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'strata-death-'));
});

afterEach(async () => {
  child?.kill('SIGKILL');
  child = null;
  while (started.length) await (started.pop() as RunningServer).stop();
  await db.pool.query('DELETE FROM strata.job_runs');
  await db.pool.query('DELETE FROM strata.job_state');
});

afterAll(async () => {
  await db.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('a replica that dies mid-run', () => {
  it('releases the job when its process is killed', async () => {
    child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'replica-process.ts')], {
      cwd: root, env: { ...process.env, ...env(), HANDOVER: 'hang' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pid = child.pid as number;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    // The child replica starts the due job at once and hangs in it.
    const hung = await waitFor('the child replica to be running the job', async () => {
      const r = (await runsOf('handover')).find((x) => x.outcome === 'running');
      return r && r.replica.includes(`:${pid}:`) ? r : undefined;
    }, 60_000).catch((err: Error) => { throw new Error(`${err.message}; child stderr: ${stderr}`); });

    mode = 'quick';
    started.push(await startServer(config(), { log: silentLogger(), quiet: true }));
    await new Promise((r) => setTimeout(r, 1_000));
    // While the child holds the lock, the survivor does not run the job.
    expect((await runsOf('handover')).map((r) => r.outcome)).toEqual(['running']);
    expect(await heldJobLocks()).toBe(1);

    child.kill('SIGKILL');
    const done = await waitFor('the survivor to run the job', async () =>
      (await runsOf('handover')).find((r) => r.outcome === 'succeeded'));
    expect(done.replica).not.toContain(`:${pid}:`);
    const dead = (await runsOf('handover')).find((r) => r.id === hung.id);
    expect(dead?.outcome).toBe('abandoned');
    expect(dead?.error).toContain('stopped');
    expect(dead?.finished_at).not.toBeNull();
  });

  it('releases the job when its database session is terminated, and stops the run it can no longer own', async () => {
    mode = 'hang-until-stopped';
    stoppedEarly = false;
    const first = await startServer(config(), { log: silentLogger(), quiet: true });
    started.push(first);
    const hung = await waitFor('the first replica to be running the job', async () =>
      (await runsOf('handover')).find((r) => r.outcome === 'running'));
    const second = await startServer(config(), { log: silentLogger(), quiet: true });
    started.push(second);
    mode = 'quick';
    // The session holding the job's advisory lock goes away (e.g. a network cut, an admin's
    // pg_terminate_backend).
    const { rows } = await db.pool.query<{ ok: boolean }>(
      `SELECT pg_terminate_backend(l.pid) AS ok FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE ${HANDOVER_LOCK}`);
    expect(rows).toHaveLength(1);
    await waitFor('the first replica to stop its run', () => stoppedEarly);
    const runs = await waitFor('the job to be run again', async () => {
      const r = await runsOf('handover');
      return r.some((x) => x.outcome === 'succeeded') && r.every((x) => x.outcome !== 'running') ? r : undefined;
    });
    const old = runs.find((r) => r.id === hung.id);
    expect(['interrupted', 'abandoned']).toContain(old?.outcome);
    expect(runs.filter((r) => r.outcome === 'succeeded')).toHaveLength(1);
  });
});
