// /v1/jobs: listing, run records with filters, running a job now (also one limited to a stream,
// and while another run holds the job), who may; and the `chunks` job creating chunks ahead.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { FakeClock, waitFor } from '../helpers/clock.ts';
import { ARROW_STREAM } from '../helpers/fixtures.ts';
import { DAY_US, T0, arrowStream, loggerFrame, times } from '../helpers/polars.ts';
import { registerJob } from '../../src/jobs/registry.ts';
import { useClock } from '../../src/jobs/clock.ts';

const clock = new FakeClock(Number((T0 + 2n * DAY_US + 3_600_000_000n) / 1000n)); // 2024-03-03T01:00Z
useClock(clock);

let gate: (() => void) | null = null;
registerJob({
  name: 'gated', description: 'waits for the test to open a gate', defaultIntervalMs: 3_600_000,
  async run(ctx) {
    if (ctx.stream === 'open') return { rows: 0 };
    await new Promise<void>((resolve) => { gate = resolve; });
    return { rows: 7, details: { streams: { [ctx.stream ?? 'all']: { note: 'gated' } } } };
  },
});

let t: TestApp;
beforeAll(async () => { t = await createTestApp({ chunksAhead: 3 }); });
afterAll(async () => { await t.close(); });

const post = (path: string, key?: string): Promise<Response> => t.request(path, { method: 'POST', key });

interface Run { id: number; job: string; stream: string | null; trigger: string; triggered_by: number | null; outcome: string; chunks: number | null; rows: number | null; started_at: string; details: Record<string, unknown> }

describe('the chunks job', () => {
  it('creates the current chunk and the next N of every stream, once', async () => {
    for (const name of ['alpha', 'beta']) {
      const res = await t.request(`/v1/streams/${name}/ingest`, {
        method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: arrowStream([loggerFrame({ time: times(T0, 10, 60_000_000n) })]),
      });
      expect(res.status).toBe(201);
    }
    const res = await post('/v1/jobs/chunks/run');
    expect(res.status).toBe(200);
    const run = await res.json() as Run;
    expect(run).toMatchObject({ job: 'chunks', trigger: 'manual', outcome: 'succeeded', chunks: 8, stream: null });
    expect(run.started_at).toBe(clock.now().toISOString());
    const { rows } = await t.db.pool.query<{ name: string; days: string[] }>(
      `SELECT s.name, array_agg(to_char(c.range_start, 'MM-DD') ORDER BY c.range_start) AS days
         FROM strata.chunks c JOIN strata.streams s ON s.id = c.stream_id GROUP BY s.name ORDER BY s.name`);
    // Day 1 holds the data; days 3 (today) to 6 were made ahead.
    expect(rows).toEqual([
      { name: 'alpha', days: ['03-01', '03-03', '03-04', '03-05', '03-06'] },
      { name: 'beta', days: ['03-01', '03-03', '03-04', '03-05', '03-06'] },
    ]);
    const { rows: attached } = await t.db.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent JOIN strata.streams s ON s.table_name = p.relname`);
    expect(Number(attached[0].n)).toBe(10);
    const again = await (await post('/v1/jobs/chunks/run?stream=alpha')).json() as Run;
    expect(again).toMatchObject({ stream: 'alpha', chunks: 0, outcome: 'succeeded' });
    clock.advance(86_400_000);
    expect(await (await post('/v1/jobs/chunks/run')).json()).toMatchObject({ chunks: 2 });
  });
});

describe('/v1/jobs', () => {
  it('lists every job with its schedule and health', async () => {
    const body = await (await t.request('/v1/jobs')).json() as { jobs: { name: string; schedule: { interval_ms: number; settings: string }; last_run: Run | null }[] };
    const names = body.jobs.map((j) => j.name);
    expect(names).toEqual(expect.arrayContaining(['chunks', 'retention', 'gated']));
    const chunks = body.jobs.find((j) => j.name === 'chunks');
    expect(chunks?.schedule).toMatchObject({ interval_ms: 3_600_000, settings: 'STRATA_JOB_CHUNKS_{INTERVAL,JITTER,TIMEOUT,RETRIES,BACKOFF}' });
    expect(chunks?.last_run?.job).toBe('chunks');
  });

  it('runs a job now, after waiting for the run that holds it, and records who asked', async () => {
    const first = post('/v1/jobs/gated/run');
    await waitFor('the first run to hold the job', () => gate !== null);
    const openGate = gate as unknown as () => void;
    gate = null;
    const second = post('/v1/jobs/gated/run?stream=alpha');
    await new Promise((r) => setTimeout(r, 300));
    expect(gate).toBeNull(); // the second run waits for the job's lock, it has not started
    openGate();
    const a = await (await first).json() as Run;
    await waitFor('the second run to start', () => gate !== null);
    (gate as unknown as () => void)();
    const b = await (await second).json() as Run;
    expect(a).toMatchObject({ job: 'gated', outcome: 'succeeded', rows: 7, stream: null, trigger: 'manual' });
    expect(b).toMatchObject({ job: 'gated', outcome: 'succeeded', stream: 'alpha' });
    expect(b.id).toBeGreaterThan(a.id);
    const { rows } = await t.db.pool.query<{ id: string }>(`SELECT id FROM strata.api_keys WHERE role = 'admin' ORDER BY id LIMIT 1`);
    expect(a.triggered_by).toBe(Number(rows[0].id));
  });

  it('shows run records filtered by job, stream and outcome, newest first', async () => {
    const all = await (await t.request('/v1/jobs/runs?job=gated')).json() as { runs: Run[] };
    expect(all.runs.map((r) => r.stream)).toEqual(['alpha', null]);
    const alpha = await (await t.request('/v1/jobs/runs?stream=alpha')).json() as { runs: Run[] };
    // Runs limited to alpha, and runs over every stream whose details name alpha.
    expect(alpha.runs.map((r) => `${r.job}:${r.stream}`)).toEqual(['gated:alpha', 'chunks:null', 'chunks:alpha', 'chunks:null']);
    const one = await (await t.request('/v1/jobs/runs?limit=1')).json() as { runs: Run[] };
    expect(one.runs).toHaveLength(1);
    const byId = await (await t.request(`/v1/jobs/runs/${one.runs[0].id}`)).json() as Run;
    expect(byId.id).toBe(one.runs[0].id);
    expect((await t.request('/v1/jobs/runs?outcome=failed')).status).toBe(200);
    expect((await t.request('/v1/jobs/runs?outcome=bad')).status).toBe(400);
    expect((await t.request('/v1/jobs/runs?limit=0')).status).toBe(400);
  });

  it('answers 404 for an unknown job or stream, and enforces who may', async () => {
    const unknown = await post('/v1/jobs/vacuum/run');
    expect(unknown.status).toBe(404);
    expect((await unknown.json() as { detail: string }).detail).toContain('jobs: ');
    expect((await post('/v1/jobs/chunks/run?stream=nope')).status).toBe(404);
    const auditor = await t.key('auditor');
    const reader = await t.key('reader');
    expect((await t.request('/v1/jobs', { key: auditor })).status).toBe(200);
    expect((await t.request('/v1/jobs/runs', { key: auditor })).status).toBe(200);
    expect((await post('/v1/jobs/gated/run?stream=open', auditor)).status).toBe(403);
    expect((await t.request('/v1/jobs', { key: reader })).status).toBe(403);
    const scopedAdmin = await t.key('admin', ['beta']);
    expect((await post('/v1/jobs/gated/run?stream=open', scopedAdmin)).status).toBe(403);
    expect((await post('/v1/jobs/gated/run', scopedAdmin)).status).toBe(403);
    expect((await post('/v1/jobs/chunks/run?stream=beta', scopedAdmin)).status).toBe(200);
    // Keys limited to some streams see the runs about their streams only.
    const scopedAuditor = await t.key('auditor', ['alpha']);
    expect((await t.request('/v1/jobs', { key: scopedAuditor })).status).toBe(403);
    expect((await t.request('/v1/jobs/runs', { key: scopedAuditor })).status).toBe(403);
    expect((await t.request('/v1/jobs/runs?stream=beta', { key: scopedAuditor })).status).toBe(403);
    const mine = await (await t.request('/v1/jobs/runs?stream=alpha', { key: scopedAuditor })).json() as { runs: Run[] };
    const overAll = mine.runs.find((r) => r.job === 'chunks' && r.stream === null) as Run;
    expect(Object.keys((overAll.details as { streams: object }).streams)).toEqual(['alpha']);
    expect(overAll.chunks).toBeNull();
    expect((await t.request(`/v1/jobs/runs/${overAll.id}`, { key: scopedAuditor })).status).toBe(403);
  });
});
