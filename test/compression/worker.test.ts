// The conversion runs in a worker thread, not on the server's event loop: while the compression
// job converts a chunk of ROWS rows, a timer on this thread keeps firing on time and the thread
// stays mostly idle. A worker that dies mid-conversion fails the job's run, which records it, and
// leaves the chunk as it was: every row plain, no segment; the next run converts it.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { T0 } from '../helpers/polars.ts';
import { createLabStream, ingestLab, labRows, type RunRecord } from '../helpers/rollups.ts';
import { conversionFaults } from '../../src/compression/compress-chunk.ts';
import { foreground } from '../../src/jobs/foreground.ts';

const STREAM = 'big';
const ROWS = 400_000;
const UPLOADED = 100;
let t: TestApp;
let table = '';

beforeAll(async () => {
  t = await createTestApp();
  await createLabStream(t, STREAM, { rollups: [], chunk_interval: '30 days' });
  await ingestLab(t, STREAM, labRows(3, T0, UPLOADED, 1_000_000n, ['A', 'B'], true));
  const s = await (await t.request(`/v1/streams/${STREAM}`)).json() as { table: string; tags: { name: string; column: string }[]; fields: { name: string; column: string }[] };
  const col = (n: string): string => `"${[...s.tags, ...s.fields].find((c) => c.name === n)?.column}"`;
  table = s.table.split('.').map((p) => `"${p}"`).join('.');
  // Many rows fast, in the uploaded rows' chunk, with the upload's ingest: what a big chunk holds.
  await t.db.pool.query(`INSERT INTO ${table} ("time", ${col('sample')}, ${col('temp_c')}, ${col('cnt')}, ${col('ok')}, ${col('note')}, ingest_id)
    SELECT $1::timestamptz + i * interval '1 ms', 'S' || (i / 5000 % 7), round((20 + sin(i / 300.0))::numeric, 3)::float8, i % 1000, i % 3 = 0,
           CASE WHEN i % 10 = 0 THEN 'n' || (i % 50) END, (SELECT max(ingest_id) FROM ${table})
      FROM generate_series(1, ${ROWS}) i`, [new Date(Number(T0 / 1000n) + 3_600_000).toISOString()]);
});
afterEach(() => { delete conversionFaults.workerExitAfterBatches; });
afterAll(async () => { await t.close(); });

async function state(): Promise<{ plain: number; packed: number }> {
  const plain = await t.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  const seg = await t.db.pool.query<{ n: number }>('SELECT coalesce(sum(row_count), 0)::int AS n FROM strata_data.segments');
  return { plain: plain.rows[0].n, packed: seg.rows[0].n };
}

async function compress(): Promise<RunRecord> {
  const res = await t.request(`/v1/jobs/compression/run?stream=${STREAM}`, { method: 'POST' });
  return await res.json() as RunRecord;
}

describe('conversion in a worker thread', () => {
  it('a worker that dies mid-conversion fails the run, which is recorded, and leaves the chunk plain', async () => {
    conversionFaults.workerExitAfterBatches = 1;
    const run = await compress();
    expect(run.outcome, JSON.stringify(run)).toBe('failed');
    expect(JSON.stringify(run)).toMatch(/compression worker exited \(code 70\)/);
    const { rows: [rec] } = await t.db.pool.query<{ outcome: string; error: string }>(
      `SELECT outcome, error FROM strata.job_runs WHERE job = 'compression' ORDER BY id DESC LIMIT 1`);
    expect(rec.outcome).toBe('failed');
    expect(rec.error).toMatch(/compression worker exited/);
    expect(await state()).toEqual({ plain: ROWS + UPLOADED, packed: 0 });
    const audit = await t.db.pool.query(`SELECT 1 FROM strata.audit_log WHERE action = 'chunk.compress'`);
    expect(audit.rows.length).toBe(0);
  });

  it('keeps the event loop free: a timer fires on time and the thread is mostly idle while a large chunk converts', async () => {
    let worst = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last - 5);
      last = now;
    }, 5);
    const elu0 = performance.eventLoopUtilization();
    const started = performance.now();
    const run = await compress();
    const seconds = (performance.now() - started) / 1000;
    const elu = performance.eventLoopUtilization(elu0).utilization;
    clearInterval(timer);
    expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
    expect(run.rows).toBe(ROWS + UPLOADED);
    expect(await state()).toEqual({ plain: 0, packed: ROWS + UPLOADED });
    console.log(`conversion of ${ROWS + UPLOADED} rows: ${seconds.toFixed(1)} s, event loop utilisation ${elu.toFixed(2)}, worst timer lag ${worst.toFixed(0)} ms`);
    // With reading, grouping and encoding on this thread, the same conversion kept it busy 0.60 of
    // the time and held the timer up to 853 ms (measured at a load average of 11; 0.02 and 65 ms
    // with the worker, 231 ms at a load average of 20).
    expect(elu).toBeLessThan(0.3);
    expect(worst).toBeLessThan(500);
    // No upload ran: the conversion never paused.
    expect(pausedMs(run)).toEqual([0]);
  });

  // Late rows into the compressed chunk are converted by the next run, with an upload in flight
  // all along (this process's own uploads are what the conversion watches): its reading pauses,
  // nineteen times as long as it works by default (STRATA_COMPRESSION_BUSY_PAUSE 1900), and the run says so.
  it('yields to uploads: while one is in flight, the conversion pauses and the run records how long', async () => {
    const late = 200_000;
    const s = await (await t.request(`/v1/streams/${STREAM}`)).json() as { tags: { name: string; column: string }[]; fields: { name: string; column: string }[] };
    const col = (n: string): string => `"${[...s.tags, ...s.fields].find((c) => c.name === n)?.column}"`;
    await t.db.pool.query(`INSERT INTO ${table} ("time", ${col('sample')}, ${col('temp_c')}, ${col('cnt')}, ingest_id)
      SELECT $1::timestamptz + i * interval '1 ms', 'L' || (i / 5000 % 3), i / 7.0, i % 100, (SELECT max(id) FROM strata.ingests)
        FROM generate_series(1, ${late}) i`, [new Date(Number(T0 / 1000n) + 7_200_000).toISOString()]);
    const uploadEnded = foreground.begin();
    let run: RunRecord;
    const started = performance.now();
    try {
      run = await compress();
    } finally {
      uploadEnded();
    }
    const seconds = (performance.now() - started) / 1000;
    expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
    expect(run.rows).toBe(late);
    expect(await state()).toEqual({ plain: 0, packed: ROWS + UPLOADED + late });
    const [paused] = pausedMs(run);
    console.log(`conversion of ${late} late rows beside an upload: ${seconds.toFixed(1)} s, paused ${paused} ms`);
    expect(paused).toBeGreaterThan(0);
    expect(paused).toBeLessThanOrEqual(seconds * 1000);
  });
});

/** The paused_ms of each chunk the run converted. */
function pausedMs(run: RunRecord): number[] {
  const streams = run.details.streams as Record<string, { paused_ms: number }[]>;
  return streams[STREAM].map((c) => c.paused_ms);
}
