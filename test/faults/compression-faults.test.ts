// PostgreSQL failing under the compression job, in a running server: the conversion's reading
// backend terminated, its writing backend terminated, and PostgreSQL restarted (fast shutdown)
// while a chunk converts. Each time every chunk holds either all its rows as plain rows or all of
// them as segments (never part, never both), the raw answer is the one before, the server stays up
// and serves again by itself, and the next run converts what is left, the answer unchanged.
//
// The PostgreSQL here is an embedded PostgreSQL 17 of the test's own (never a shared server).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { EmbeddedServer } from '../../src/db/embedded.ts';
import { formatMicros } from '../../src/domain/time.ts';
import { waitFor } from '../helpers/clock.ts';
import { T0 } from '../helpers/polars.ts';
import {
  type Answer, type OwnPostgres, type StrataProcess, ADMIN_KEY, ARROW_STREAM, alive, arrowBody, request, secondsUntil, serves, strataOnOwnPostgres,
  SPAWNED_TIMEOUT_MS,
} from './lib.ts';

let own: OwnPostgres;
let embedded: EmbeddedServer;
let dbUrl: string;
let strata: StrataProcess;
const DB = 'strata_compression_faults';
const STREAM = 'rig';
/** Two uploads of 24 × 20,000 readings a second apart, over the same 5.6 days: 960,000 rows in 23 chunks of 6 hours. */
const UPLOADS = 2;
const ROWS = UPLOADS * 24 * 20_000;

async function withClient<T>(url: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  own = await strataOnOwnPostgres(DB);
  ({ embedded, dbUrl, strata } = own);
  const created = await fetch(new URL('/v1/streams', strata.url), {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: STREAM, chunk_interval: '6 hours', compress_after: '1 hour', tags: ['sample'], fields: [{ name: 'value', type: 'float8' }] }),
  });
  expect(created.status, await created.clone().text()).toBe(201);
  for (let u = 0; u < UPLOADS; u++) {
    const up = await request(strata.url, `/v1/streams/${STREAM}/ingest`, { method: 'POST', body: arrowBody(24, 20_000, u), contentType: ARROW_STREAM, timeoutMs: 120_000 });
    expect(up.status, JSON.stringify(up.body)).toBe(201);
  }
}, SPAWNED_TIMEOUT_MS);

afterAll(async () => {
  await own?.close();
});

/** The stream's raw rows as CSV, sorted (rows sharing an instant come in no particular order). */
async function rawAnswer(): Promise<string> {
  const q = new URLSearchParams({ from: formatMicros(T0), to: formatMicros(T0 + 30n * 86_400_000_000n), format: 'csv' });
  const res = await fetch(new URL(`/v1/streams/${STREAM}/query?${q}`, strata.url), { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  expect(res.status).toBe(200);
  const lines = (await res.text()).trimEnd().split('\n');
  expect(lines.length).toBe(ROWS + 1);
  return lines.sort().join('\n');
}

/** Per chunk: its plain rows and the rows of its segments. */
async function chunkForms(): Promise<{ chunk: string; plain: number; packed: number }[]> {
  return withClient(dbUrl, async (c) => {
    const { rows: chunks } = await c.query<{ id: string; table_name: string }>(
      `SELECT c.id, c.table_name FROM strata.chunks c JOIN strata.streams s ON s.id = c.stream_id
        WHERE s.name = $1 AND c.level = 'raw' AND c.state = 'active' ORDER BY c.range_start`, [STREAM]);
    const out = [];
    for (const ch of chunks) {
      const plain = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM strata_data."${ch.table_name}"`);
      const seg = await c.query<{ n: number }>('SELECT coalesce(sum(row_count), 0)::int AS n FROM strata_data.segments WHERE chunk_id = $1', [ch.id]);
      out.push({ chunk: ch.table_name, plain: plain.rows[0].n, packed: seg.rows[0].n });
    }
    return out;
  });
}

/** Each chunk is whole in one form; returns how many are compressed. */
async function expectWhole(label: string): Promise<number> {
  const forms = await chunkForms();
  expect(forms.length, label).toBe(23);
  for (const f of forms) expect(f.plain === 0 || f.packed === 0, `${label}: ${JSON.stringify(f)}`).toBe(true);
  expect(forms.reduce((a, f) => a + f.plain + f.packed, 0), label).toBe(ROWS);
  const compressed = forms.filter((f) => f.plain === 0).length;
  console.log(`compression fault, ${label}: ${compressed} of ${forms.length} chunks compressed, the rest plain`);
  return compressed;
}

/** Waits for a conversion to be reading a chunk; returns the pids of its reading and writing backends. */
async function converting(): Promise<{ reader: number; writer: number }> {
  return withClient(embedded.url, (c) => waitFor('a chunk to be converting', async () => {
    const { rows } = await c.query<{ pid: number; application_name: string; query: string }>(
      `SELECT pid, application_name, query FROM pg_stat_activity WHERE datname = $1 AND state = 'active'`, [DB]);
    const reader = rows.find((r) => r.application_name === 'strata compression' && r.query.startsWith('COPY'));
    // The converting transaction: it holds the chunk's table locked in EXCLUSIVE mode.
    const { rows: lockers } = await c.query<{ pid: number }>(
      `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
        WHERE d.datname = $1 AND l.mode = 'ExclusiveLock' AND l.locktype = 'relation' AND l.granted`, [DB]);
    return reader && lockers[0] ? { reader: reader.pid, writer: lockers[0].pid } : undefined;
  }, 60_000));
}

/** Chunks of the stream converted so far. */
async function compressedChunks(): Promise<number> {
  return withClient(dbUrl, async (c) => (await c.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM strata.chunks c JOIN strata.streams s ON s.id = c.stream_id WHERE s.name = $1 AND c.compressed_at IS NOT NULL`, [STREAM])).rows[0].n);
}

/**
 * Starts a compression run and lets `fault` strike while a chunk converts, once the run has
 * converted a chunk (so that the run leaves chunks of both forms); the run's answer.
 */
async function runThrough(fault: (pids: { reader: number; writer: number }) => Promise<void>): Promise<Answer> {
  const done = await compressedChunks();
  const run = request(strata.url, `/v1/jobs/compression/run?stream=${STREAM}`, { method: 'POST', timeoutMs: 120_000 });
  await waitFor('the run to convert a chunk', async () => (await compressedChunks()) > done);
  await fault(await converting());
  const answer = await run;
  return answer;
}

async function terminate(pid: number): Promise<void> {
  await withClient(embedded.url, (c) => c.query('SELECT pg_terminate_backend($1)', [pid]));
}

async function expectServing(label: string): Promise<void> {
  const served = await secondsUntil('the server to serve again', () => serves(strata.url), 60_000);
  console.log(`compression fault ${label}: served again after ${served.toFixed(2)} s`);
  expect(strata.child.exitCode).toBeNull();
  expect(strata.output()).not.toMatch(/Unhandled 'error' event|uncaught|ERR_UNHANDLED/i);
  // No transaction of the broken conversion is left open.
  await waitFor('the broken conversion to be gone', () => withClient(embedded.url, async (c) => {
    const { rows } = await c.query(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND (application_name LIKE 'strata compression%' OR state LIKE 'idle in transaction%')`, [DB]);
    return rows.length === 0;
  }), 30_000);
}

describe('PostgreSQL fails under the compression job', () => {
  let before: string;

  it('its reading backend is terminated: the run fails and says so, every chunk whole, the answer unchanged', async () => {
    before = await rawAnswer();
    const run = await runThrough(({ reader }) => terminate(reader));
    expect(run.status, JSON.stringify(run.body)).toBe(200);
    expect(run.body.outcome).toBe('failed');
    expect(String(run.body.error)).toMatch(/compression worker failed: .*terminat/i);
    await expectServing('reading backend terminated');
    expect(await expectWhole('after the reader was terminated')).toBeLessThan(23);
    expect(await rawAnswer()).toBe(before);
  }, SPAWNED_TIMEOUT_MS);

  it('its writing backend is terminated: the run fails, every chunk whole, the answer unchanged', async () => {
    const run = await runThrough(({ writer }) => terminate(writer));
    // The job's lock lives on another session, which survives: the run ends and is recorded.
    expect(run.status, JSON.stringify(run.body)).toBe(200);
    expect(run.body.outcome).toBe('failed');
    await expectServing('writing backend terminated');
    await expectWhole('after the writer was terminated');
    expect(await rawAnswer()).toBe(before);
  }, SPAWNED_TIMEOUT_MS);

  it('PostgreSQL restarts mid-conversion: no 500, the server serves again by itself, chunks whole; the next run converts them all', async () => {
    const run = await runThrough(async () => {
      const pid = (await embedded.postmasterPid()) as number;
      process.kill(pid, 'SIGINT'); // fast shutdown: every session is terminated
      await waitFor('the postmaster to exit', () => !alive(pid), 60_000);
      await embedded.restart();
    });
    // Either the run's record (the run interrupted or failed) or, when the record could not be
    // written for the outage, 503 with Retry-After: a failure of ours, never a 500.
    if (run.status === 200) expect(['failed', 'interrupted']).toContain(run.body.outcome);
    else {
      expect(run.status, JSON.stringify(run.body)).toBe(503);
      expect(Number(run.headers['retry-after'])).toBeGreaterThan(0);
    }
    await expectServing('PostgreSQL restarted');
    await expectWhole('after the restart');
    expect(await rawAnswer()).toBe(before);

    const done = await secondsUntil('a run to succeed', async () => {
      const r = await request(strata.url, `/v1/jobs/compression/run?stream=${STREAM}`, { method: 'POST', timeoutMs: 120_000 });
      return r.status === 200 && r.body.outcome === 'succeeded';
    }, 120_000);
    console.log(`compression after the faults: a run succeeded ${done.toFixed(2)} s after the restart's checks`);
    expect(await expectWhole('after the final run')).toBe(23);
    expect(await rawAnswer()).toBe(before);
    // The run the restart broke is on record as ended, not left running.
    const runs = await request(strata.url, '/v1/jobs/runs?job=compression');
    const records = (runs.body as { runs: { outcome: string; finished_at: string | null; error: string | null }[] }).runs;
    expect(records.map((r) => r.outcome)).toEqual(['succeeded', expect.stringMatching(/^(abandoned|interrupted|failed)$/), 'failed', 'failed']);
    for (const r of records) expect(r.finished_at, JSON.stringify(r)).not.toBeNull();
    expect(records[1].error).toBeTruthy();
  }, SPAWNED_TIMEOUT_MS);
});
