// Kill -9 in the middle of converting a chunk leaves the old form or the new one, never neither
// and never both: a process compressing a chunk is killed after writing segments, and after
// emptying the chunk's table just before COMMIT; each time the chunk holds all its rows as plain
// rows, no segment of it exists, and the answer is the one before. Then the job converts it, and
// the answer is still the same. Retention drops a compressed chunk (its segments too, counted in
// the audit), and a legal hold keeps it.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { DAY_US, T0 } from '../helpers/polars.ts';
import { MIN_US, createLabStream, ingestLab, labRows, refresh } from '../helpers/rollups.ts';
import { waitFor } from '../helpers/clock.ts';
import { formatMicros } from '../../src/domain/time.ts';
import { json } from '../helpers/uploads.ts';

let t: TestApp;
const STREAM = 'crash';
const ROWS = 4000;

beforeAll(async () => {
  t = await createTestApp();
  await createLabStream(t, STREAM, { rollups: ['1h'], retention: { raw: '30 days' } });
  await ingestLab(t, STREAM, labRows(5, T0, ROWS, MIN_US / 5n, ['A', 'B', 'C'], true));
  await ingestLab(t, STREAM, labRows(6, T0 + DAY_US, ROWS, MIN_US / 5n, ['A', 'B'], false));
  await refresh(t);
});
afterAll(async () => { await t.close(); });

async function rawAnswer(): Promise<string> {
  const res = await t.request(`/v1/streams/${STREAM}/query?${new URLSearchParams({ from: formatMicros(T0), to: formatMicros(T0 + 2n * DAY_US), format: 'csv' })}`);
  expect(res.status).toBe(200);
  // Rows sharing an instant come in no particular order: compare them sorted.
  return (await res.text()).split('\n').sort().join('\n');
}

async function state(): Promise<{ plain: number; segments: number; packed: number }> {
  const { rows: [s] } = await t.db.pool.query<{ table_name: string }>('SELECT table_name FROM strata.streams WHERE name = $1', [STREAM]);
  const plain = await t.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM strata_data."${s.table_name}"`);
  const seg = await t.db.pool.query<{ n: number; rows: number }>('SELECT count(*)::int AS n, coalesce(sum(row_count), 0)::int AS rows FROM strata_data.segments');
  return { plain: plain.rows[0].n, segments: seg.rows[0].n, packed: seg.rows[0].rows };
}

/** Runs compress-process.ts to the stage, kills it with SIGKILL, and waits for its transaction to be gone. */
async function killAt(stage: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'compress-process.ts'), t.db.url, STREAM, stage], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  await waitFor(`the compression process at ${stage}`, () => out.includes('READY') || (child.exitCode !== null && Promise.reject(new Error(out))), 120_000);
  child.kill('SIGKILL');
  await exited;
  // PostgreSQL notices the closed connection and rolls its transaction back.
  await waitFor('the killed transaction to end', async () => {
    const { rows } = await t.db.pool.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`);
    return rows.length === 0;
  });
}

describe('kill -9 during conversion', () => {
  it('leaves the old form, whole, at every stage; the next run converts it', async () => {
    const before = await rawAnswer();
    for (const stage of ['mid-write', 'before-commit']) {
      await killAt(stage);
      expect(await state(), stage).toEqual({ plain: 2 * ROWS, segments: 0, packed: 0 });
      expect(await rawAnswer(), stage).toBe(before);
    }
    const res = await t.request(`/v1/jobs/compression/run?stream=${STREAM}`, { method: 'POST' });
    const run = await res.json() as { outcome: string; rows: number; chunks: number };
    expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
    expect(run.rows).toBe(2 * ROWS);
    const after = await state();
    expect(after.plain).toBe(0);
    expect(after.packed).toBe(2 * ROWS);
    expect(await rawAnswer()).toBe(before);
    const audit = await t.db.pool.query(`SELECT details FROM strata.audit_log WHERE action = 'chunk.compress' ORDER BY seq`);
    expect(audit.rows.length).toBeGreaterThanOrEqual(2);
    expect(audit.rows.reduce((a, r) => a + Number((r.details as { rows: number }).rows), 0)).toBe(2 * ROWS);
  });
});

describe('retention and holds on compressed chunks', () => {
  it('a hold keeps a compressed chunk; once released, retention drops it with its segments and counts its rows per ingest', async () => {
    const hold = await t.request('/v1/holds', json({ method: 'POST', body: { stream: STREAM, from: formatMicros(T0), to: formatMicros(T0 + DAY_US), reason: 'audit 7' } }));
    expect(hold.status, await hold.clone().text()).toBe(201);
    const held = await (await t.request(`/v1/jobs/retention/run?stream=${STREAM}`, { method: 'POST' })).json() as { outcome: string; details: { streams: Record<string, { dropped: unknown[]; skipped: { reason: string }[] }> } };
    const report = held.details.streams[STREAM];
    expect(report.dropped.length, JSON.stringify(held)).toBe(1);
    expect(report.skipped.some((s) => /legal hold/.test(s.reason)), JSON.stringify(held)).toBe(true);
    const left = await t.db.pool.query<{ rows: number; lo: string }>('SELECT coalesce(sum(row_count), 0)::int AS rows, min(time_min)::text AS lo FROM strata_data.segments');
    expect(left.rows[0].rows).toBe(ROWS);
    const { id } = await hold.json() as { id: number };
    const rel = await t.request(`/v1/holds/${id}`, json({ method: 'DELETE', body: { reason: 'audit closed' } }));
    expect(rel.status, await rel.clone().text()).toBe(200);
    const run = await (await t.request(`/v1/jobs/retention/run?stream=${STREAM}`, { method: 'POST' })).json() as { outcome: string; rows: number };
    expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
    expect(run.rows).toBe(ROWS);
    const gone = await t.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM strata_data.segments');
    expect(gone.rows[0].n).toBe(0);
    const audit = await t.db.pool.query(`SELECT details FROM strata.audit_log WHERE action = 'retention.drop' ORDER BY seq`);
    const rows = audit.rows.map((r) => (r.details as { level: string; row_count: number }));
    expect(rows.filter((r) => r.level === 'raw').reduce((a, r) => a + r.row_count, 0)).toBe(2 * ROWS);
  });
});
