// `npm run bench retention`: what retention costs.
//  1. Dropping a chunk of 1M rows through the retention job (target < 1 s), median of 5.
//  2. Ingest throughput (Arrow uploads over HTTP into the current chunk) while retention drops
//     chunks of 200k rows, against the same uploads with retention idle (target: < 10 % lower),
//     alternated 5 times, medians: with the levels kept up to date by the rollups job (steady
//     state), and with the levels never refreshed (each run absorbs 3M raw rows first).
//  3. A maintenance pass (chunks job + retention job) over 100 streams × 30 chunks: steady state
//     (one chunk per stream expires), nothing to do, and catching up 22 chunks per stream.
// Uses DATABASE_URL (a server to create a scratch database on) or an embedded PostgreSQL.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import '../../src/modules.ts';
import type { Db } from '../../src/db/pool.ts';
import { DATA_SCHEMA, qualified } from '../../src/db/sql.ts';
import { pgTimestamp } from '../../src/domain/time.ts';
import { migratedBenchDb } from './lib.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createApp } from '../../src/http/app.ts';
import type { AppDeps } from '../../src/http/deps.ts';
import { ensureFirstAdminKey } from '../../src/keys/api-keys.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { useClock } from '../../src/jobs/clock.ts';
import { Scheduler } from '../../src/jobs/scheduler.ts';
import { type Stream, createStream, updateStream } from '../../src/streams/catalog.ts';
import { ensureChunks } from '../../src/partitions/chunks.ts';
import { systemActor } from '../../src/audit/log.ts';
import { FakeClock } from '../helpers/clock.ts';
import { DAY_US, T0, arrowStream, loggerFrame, times } from '../helpers/polars.ts';

const ADMIN = 'strata_bench_retention_admin_key';
const clock = new FakeClock(Number(T0 / 1000n));
useClock(clock);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number): string => `${x.toFixed(0)} ms`;


async function newStream(db: Db, name: string): Promise<Stream> {
  const { stream } = await createStream(db, {
    name, chunkIntervalUs: DAY_US, timeColumn: 'time',
    columns: [{ name: 'sample', role: 'tag', type: 'text' }, { name: 'value', role: 'field', type: 'float8' }],
  }, systemActor);
  return stream;
}

/** An ingest record for rows the benchmark writes with SQL, so that retention has ingests to account. */
async function fakeIngest(db: Db, s: Stream, rows: number): Promise<string> {
  const { rows: r } = await db.pool.query<{ id: string }>(
    `INSERT INTO strata.ingests (id, stream_id, stream_name, received_at, committed_at, format, rows, status)
     VALUES (nextval('strata.ingest_id_seq'), $1, $2, now(), now(), 'bench', $3, 'committed') RETURNING id::text`,
    [s.id, s.name, rows]);
  return r[0].id;
}

/** `rows` rows spread over day `d` (0 = T0) of a stream, from one ingest, written with SQL (setup). */
async function fillDay(db: Db, s: Stream, d: number, rows: number, base = T0): Promise<void> {
  const start = base + BigInt(d) * DAY_US;
  await ensureChunks(db, { streamId: s.id, tableName: s.tableName, chunkIntervalUs: s.chunkIntervalUs }, start, start, 10);
  const [tag, field] = s.columns.map((c) => `"${c.columnName}"`);
  const ingest = await fakeIngest(db, s, rows);
  await db.pool.query(
    `INSERT INTO ${qualified(DATA_SCHEMA, s.tableName)} ("time", ${tag}, ${field}, ingest_id)
     SELECT $1::timestamptz + (g * (86400000000 / $2)) * interval '1 microsecond', 'S-' || (g % 3), g * 0.5, $3
       FROM generate_series(0, $2 - 1) g`,
    [pgTimestamp(start), rows, ingest]);
  // Rows written with SQL come with no pending rows (src/rollups/pending.ts): the refresh must
  // build them from raw rows, as it does for rows from before pending rows existed. It starts
  // pending rows again after the stream's last chunk.
  await db.pool.query('UPDATE strata.rollup_levels SET pending_from = NULL WHERE stream_id = $1', [s.id]);
}

async function setRetention(db: Db, name: string, raw: string): Promise<void> {
  await updateStream(db, name, { settings: { retention: { raw } } }, systemActor);
}

function appOf(db: Db, dataDir: string): { deps: AppDeps; request: (p: string, init?: RequestInit) => Promise<Response> } {
  const config = { ...loadConfig({ STRATA_DATA_DIR: dataDir }), databaseUrl: db.url, jobs: false };
  const deps: AppDeps = { db, config, log: silentLogger(), metrics: createMetrics(false), versions: {}, services: {} };
  const app = createApp(deps);
  return {
    deps,
    request: async (p, init = {}) => app.request(p, { ...init, headers: { authorization: `Bearer ${ADMIN}`, ...(init.headers ?? {}) } }),
  };
}

/**
 * A retention run dropping one 1M-row chunk of a stream with the default rollup levels: as in
 * steady state, where the rollups job has long absorbed a chunk before it expires; and with the
 * levels never refreshed, so that the run first has them absorb the chunk (1M rows aggregated).
 */
async function dropOneMillion(db: Db, jobs: Scheduler): Promise<void> {
  const times: number[] = [];
  const absorbing: number[] = [];
  for (let i = 0; i < 10; i++) {
    const refreshed = i % 2 === 0;
    const s = await newStream(db, `drop1m_${i}`);
    await fillDay(db, s, 0, 1_000_000);
    await db.pool.query('ANALYZE');
    if (refreshed) await jobs.runNow('rollups', { stream: s.name });
    await setRetention(db, s.name, '1 day');
    const started = performance.now();
    const run = await jobs.runNow('retention', { stream: s.name });
    (refreshed ? times : absorbing).push(performance.now() - started);
    if (run.chunks !== 1 || run.rows !== 1_000_000) throw new Error(`unexpected run: ${JSON.stringify(run)}`);
  }
  console.log(`drop of a 1M-row chunk (retention run, one stream, rollup levels up to date): median ${ms(median(times))}  [${times.map(ms).join(', ')}]  target < 1000 ms`);
  console.log(`  the same with the levels never refreshed (the run has them absorb the chunk first): median ${ms(median(absorbing))}  [${absorbing.map(ms).join(', ')}]`);
}

/** Uploads of 50k rows into today's chunk, one after another, for `uploads` uploads; rows/s. */
async function ingestRate(request: ReturnType<typeof appOf>['request'], stream: string, uploads: number, round: number, into?: number[]): Promise<number> {
  const bodies = Array.from({ length: uploads }, (_, k) => {
    const base = T0 + 40n * DAY_US + BigInt(round * uploads + k) * 50_000n * 1000n;
    return arrowStream([loggerFrame({ time: times(base, 50_000, 1000n) })]);
  });
  const started = performance.now();
  for (const body of bodies) {
    const t = performance.now();
    const res = await request(`/v1/streams/${stream}/ingest`, { method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream' }, body });
    if (res.status !== 201) throw new Error(`ingest failed: ${res.status} ${await res.text()}`);
    into?.push(performance.now() - t);
  }
  return (uploads * 50_000) / ((performance.now() - started) / 1000);
}

/**
 * Uploads into one stream's current chunk while retention drops its old chunks. All old chunks
 * are written, vacuumed and checkpointed first, so that background writes and autovacuum of the
 * setup do not fall into the measurements; each round then expires its own 15 chunks.
 * `refreshed`: before each round the rollups job brings the levels up to date (not timed), as it
 * keeps them in steady state, so retention only drops; `absorbing`: the levels were never
 * refreshed, so each retention run first has them absorb its 3M rows from the raw rows.
 */
async function ingestUnderRetention(db: Db, jobs: Scheduler, request: ReturnType<typeof appOf>['request'], mode: 'refreshed' | 'absorbing'): Promise<void> {
  const ROUNDS = 5;
  const PER_ROUND = 15;
  const name = `live-${mode}`;
  const latencies: { idle: number[]; busy: number[] } = { idle: [], busy: [] };
  const live = await newStream(db, name);
  const oldDay = (round: number, i: number): number => -400 + round * 30 + i;
  for (let round = 1; round <= ROUNDS; round++) {
    for (let i = 0; i < PER_ROUND; i++) await fillDay(db, live, oldDay(round, i), 200_000);
  }
  await db.pool.query(`VACUUM (FREEZE, ANALYZE) ${qualified(DATA_SCHEMA, live.tableName)}`);
  await db.pool.query('CHECKPOINT').catch(() => undefined); // needs superuser; fine without
  await ingestRate(request, name, 4, 0); // warm-up
  const idle: number[] = [];
  const busy: number[] = [];
  const drops: number[] = [];
  const overlap: string[] = [];
  const nowDay = Number((BigInt(clock.now().getTime()) * 1000n - T0) / DAY_US);
  for (let round = 1; round <= ROUNDS; round++) {
    if (mode === 'refreshed') await jobs.runNow('rollups', { stream: name });
    idle.push(await ingestRate(request, name, 20, round * 2, latencies.idle));
    await setRetention(db, name, `${nowDay - oldDay(round, PER_ROUND)} days`); // this round's chunks expire
    const t0 = performance.now();
    const retention = jobs.runNow('retention', { stream: name }).then((r) => ({ r, s: (performance.now() - t0) / 1000 }));
    busy.push(await ingestRate(request, name, 20, round * 2 + 1, latencies.busy));
    const ingestS = (performance.now() - t0) / 1000;
    const { r, s } = await retention;
    drops.push(r.chunks ?? 0);
    overlap.push(`${s.toFixed(1)} s / ${ingestS.toFixed(1)} s`);
  }
  await updateStream(db, name, { settings: { retention: null } }, systemActor); // out of the next part's way
  const dip = 1 - median(busy) / median(idle);
  console.log(`${mode === 'refreshed' ? 'levels kept up to date by the rollups job (steady state): retention only drops' : 'levels never refreshed: each retention run first has them absorb 3M raw rows'}`);
  const pct = (xs: number[], p: number): string => ms([...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]);
  console.log(`ingest into a stream while retention drops its old chunks (200k rows each): ${median(busy).toFixed(0)} rows/s vs ${median(idle).toFixed(0)} rows/s without → ${(dip * 100).toFixed(1)} % lower (target < 10 %)`);
  console.log(`  paired per round (median of the rounds' dips): ${(median(busy.map((b, i) => 1 - b / idle[i])) * 100).toFixed(1)} % lower`);
  console.log(`  upload latency (50k rows) without: median ${pct(latencies.idle, 0.5)}, p95 ${pct(latencies.idle, 0.95)}, max ${pct(latencies.idle, 1)}; during: median ${pct(latencies.busy, 0.5)}, p95 ${pct(latencies.busy, 0.95)}, max ${pct(latencies.busy, 1)}`);
  console.log(`  without: [${idle.map((x) => x.toFixed(0)).join(', ')}]  during: [${busy.map((x) => x.toFixed(0)).join(', ')}]  chunks dropped per round: ${drops.join(', ')}  (retention run / upload window: ${overlap.join('; ')})`);
}

async function maintenancePass(db: Db, jobs: Scheduler): Promise<void> {
  const base = T0 + 200n * DAY_US;
  const streams: Stream[] = [];
  for (let i = 0; i < 100; i++) {
    const s = await newStream(db, `fleet_${String(i).padStart(3, '0')}`);
    for (let d = 0; d < 30; d++) await fillDay(db, s, d, 24, base);
    await setRetention(db, s.name, '29 days');
    streams.push(s);
  }
  // Yesterday's pass made the chunks ahead; today one chunk per stream is due on each side.
  clock.set(Number((base + 29n * DAY_US) / 1000n));
  await jobs.runNow('chunks');
  clock.set(Number((base + 30n * DAY_US) / 1000n));
  const pass = async (label: string): Promise<void> => {
    const started = performance.now();
    const c = await jobs.runNow('chunks');
    const mid = performance.now();
    const r = await jobs.runNow('retention');
    const end = performance.now();
    console.log(`maintenance pass, 100 streams × 30 chunks, ${label}: ${ms(end - started)} (chunks job ${ms(mid - started)}: ${c.chunks} created; retention ${ms(end - mid)}: ${r.chunks} dropped, outcome ${r.outcome})  target < 10000 ms`);
  };
  await pass('steady state (a chunk per stream made ahead, one expires)');
  await pass('nothing to do');
  for (const s of streams) await setRetention(db, s.name, '7 days');
  await pass('catching up (retention cut from 29 to 7 days: 22 chunks per stream)');
}

async function main(): Promise<void> {
  const { db, done } = await migratedBenchDb();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'strata-bench-data-'));
  try {
    await ensureFirstAdminKey(db, ADMIN);
    const { deps, request } = appOf(db, dataDir);
    const jobs = new Scheduler(deps, clock);
    clock.set(Number((T0 + 40n * DAY_US) / 1000n));
    // RETENTION_BENCH=drop,ingest,pass picks parts (all by default).
    const parts = (process.env.RETENTION_BENCH ?? 'drop,ingest,pass').split(',');
    if (parts.includes('drop')) await dropOneMillion(db, jobs);
    if (parts.includes('ingest')) {
      await ingestUnderRetention(db, jobs, request, 'refreshed');
      await ingestUnderRetention(db, jobs, request, 'absorbing');
    }
    if (parts.includes('pass')) await maintenancePass(db, jobs);
    await jobs.stop();
  } finally {
    await done();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
