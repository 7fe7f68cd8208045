// `npm run bench compression`: compressed chunks against plain ones, on the same rows.
//  1. Codecs: bytes per value of each float scheme (decimal, byte-split + LZ4, LZ4 alone) on one
//     channel of realistic lab values and of the random W2 doubles — how the float codec is chosen.
//  2. Bytes per row on disk: the plain chunks (heap and indexes) against the segments (heap, TOAST,
//     indexes, and the emptied chunk tables), on the W2 lab-logger rows with realistic values
//     (channels at 3 and 4 decimals, as loggers report them) and with the random W2 doubles; and
//     VictoriaMetrics (Debian package) loaded with the same rows over line protocol, after a flush.
//  3. Compression: rows/s of the conversion, and rows per CPU-second (Node and PostgreSQL together).
//  4. Reading: raw export (CSV and Arrow through the query API) and resolution=auto over the whole range, from
//     the compressed stream and from a twin of it loaded with the same rows and never compressed,
//     alternated (BENCH_REPS pairs; at least 9 for the query), and decoding alone.
//  5. The conversion in a running server against its own ingest (compression-server.ts): a 10M-row
//     chunk's time, the single-upload Arrow ingest rate, and the dip of steady uploads beside it.
// BENCH_ROWS (default 1,000,000) rows over 10 days (10 chunks) for 1–4. COMPRESSION_BENCH=sizes,server
// picks parts (both by default). Uses DATABASE_URL or an embedded
// PostgreSQL. BENCH_VM=0 leaves VictoriaMetrics out; BENCH_VM_PORT (55451) is where it listens.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { compressSync } from 'lz4-napi';
import pg from 'pg';
import '../../src/modules.ts';
import type { Db } from '../../src/db/pool.ts';
import { DATA_SCHEMA, ident, qualified } from '../../src/db/sql.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createApp } from '../../src/http/app.ts';
import type { AppDeps } from '../../src/http/deps.ts';
import { ensureFirstAdminKey } from '../../src/keys/api-keys.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { type Stream, createStream } from '../../src/streams/catalog.ts';
import { ensureChunks } from '../../src/partitions/chunks.ts';
import { systemActor } from '../../src/audit/log.ts';
import { formatMicros } from '../../src/domain/time.ts';
import { ByteWriter } from '../../src/compression/codecs/bytes.ts';
import { DECIMAL, SPLIT, encodeFloats } from '../../src/compression/codecs/floats.ts';
import { compressChunk } from '../../src/compression/compress-chunk.ts';
import { chunksToCompress } from '../../src/compression/compression-job.ts';
import { compressedBatches } from '../../src/compression/read.ts';
import { fmt, median, migratedBenchDb, postgresCpuSeconds, settle } from './lib.ts';
import { serverFigures } from './compression-server.ts';

const N = Number(process.env.BENCH_ROWS ?? 1_000_000);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const ADMIN = 'strata_bench_compression_admin_key';
const SHARED = '/work/shared/bench/lib';
const VM_PORT = Number(process.env.BENCH_VM_PORT ?? 55451);

interface Column { name: string; type: string; data: unknown }
interface Table { nRows: number; columns: Column[] }
const dataLib = await import(path.join(SHARED, 'data.mjs')) as { genW2(n: number): Table & { stepUs: number }; T0_US: number; DAY_US: number };
const encodeLib = await import(path.join(SHARED, 'encode.mjs')) as {
  makeBinaryEncoder(t: Table): (s: number, e: number) => Buffer; makeLineProtocolEncoder(t: Table, m: string): (s: number, e: number) => string | Buffer;
  BIN_HEADER: Buffer; BIN_TRAILER: Buffer;
};

/** The W2 rows with channels as loggers report them: 3 decimals (ch0–4) and 4 decimals (ch5–9). */
function realistic(t: Table): Table {
  return {
    ...t,
    columns: t.columns.map((c) => {
      const m = /^ch(\d)$/.exec(c.name);
      if (!m) return c;
      const p = Number(m[1]) < 5 ? 1e3 : 1e4;
      return { ...c, data: (c.data as Float64Array).map((x) => Math.round(x * p) / p) };
    }),
  };
}

function codecFigures(label: string, values: Float64Array): void {
  const per = 10_000;
  let dec = 0; let split = 0; let lz4 = 0; let decimalOk = true;
  for (let i = 0; i < values.length; i += per) {
    const v = values.subarray(i, i + per);
    try {
      const w = new ByteWriter(); encodeFloats(w, v.slice(), DECIMAL); dec += w.length;
    } catch { decimalOk = false; }
    const s = new ByteWriter(); encodeFloats(s, v.slice(), SPLIT); split += s.length;
    lz4 += compressSync(Buffer.from(v.slice().buffer)).length;
  }
  const n = values.length;
  console.log(`  ${label.padEnd(22)} decimal ${decimalOk ? (dec / n).toFixed(2).padStart(5) : '  n/a'} B/value · byte-split+LZ4 ${(split / n).toFixed(2).padStart(5)} · LZ4 ${(lz4 / n).toFixed(2).padStart(5)} · plain 8.00`);
}

async function newStream(db: Db, name: string, compressAfter: string | null = '7 days'): Promise<Stream> {
  const { stream } = await createStream(db, {
    name, chunkIntervalUs: BigInt(dataLib.DAY_US), timeColumn: 'time',
    columns: [
      { name: 'sample', role: 'tag', type: 'text' },
      ...Array.from({ length: 10 }, (_, c) => ({ name: `ch${c}`, role: 'field' as const, type: 'float8' as const })),
      { name: 'counter', role: 'field', type: 'int4' }, { name: 'flag', role: 'field', type: 'bool' },
    ],
    settings: { rollups: ['1m', '1h', '1d'], compress_after: compressAfter },
  }, systemActor);
  return stream;
}

/** Loads the rows with binary COPY through a staging table, one ingest record per day. */
async function loadRows(db: Db, url: string, s: Stream, t: Table): Promise<void> {
  const first = BigInt(dataLib.T0_US);
  await ensureChunks(db, { streamId: s.id, tableName: s.tableName, chunkIntervalUs: s.chunkIntervalUs }, first, first + 10n * BigInt(dataLib.DAY_US) - 1n, 20);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const cols = s.columns.map((c) => ident(c.columnName));
  await client.query(`CREATE TEMP TABLE stage ("time" timestamptz, ${s.columns.map((c) => `${ident(c.columnName)} ${c.type}`).join(', ')})`);
  const enc = encodeLib.makeBinaryEncoder(t);
  const { from: copyFrom } = await import('pg-copy-streams');
  await new Promise<void>((resolve, reject) => {
    const st = client.query(copyFrom('COPY stage FROM STDIN (FORMAT binary)'));
    st.on('error', reject); st.on('finish', () => resolve());
    st.write(encodeLib.BIN_HEADER);
    for (let i = 0; i < t.nRows; i += 50_000) st.write(enc(i, Math.min(t.nRows, i + 50_000)));
    st.write(encodeLib.BIN_TRAILER);
    st.end();
  });
  for (let d = 0; d < 10; d++) {
    const lo = formatMicros(first + BigInt(d) * BigInt(dataLib.DAY_US));
    const hi = formatMicros(first + BigInt(d + 1) * BigInt(dataLib.DAY_US));
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO strata.ingests (id, stream_id, stream_name, received_at, committed_at, format, rows, status)
       VALUES (nextval('strata.ingest_id_seq'), $1, $2, now(), now(), 'bench', (SELECT count(*) FROM stage WHERE "time" >= $3 AND "time" < $4), 'committed') RETURNING id::text`,
      [s.id, s.name, lo, hi]);
    await client.query(`INSERT INTO ${qualified(DATA_SCHEMA, s.tableName)} ("time", ${cols.join(', ')}, ingest_id)
      SELECT "time", ${cols.join(', ')}, $3 FROM stage WHERE "time" >= $1 AND "time" < $2 ORDER BY "time"`, [lo, hi, rows[0].id]);
  }
  await client.query('UPDATE strata.rollup_levels SET pending_from = NULL WHERE stream_id = $1', [s.id]);
  await client.end();
}

async function chunkBytes(db: Db, s: Stream): Promise<number> {
  const { rows } = await db.pool.query<{ b: string }>(
    `SELECT coalesce(sum(pg_total_relation_size(format('%I.%I', $2::text, table_name)::regclass)), 0)::text AS b
       FROM strata.chunks WHERE stream_id = $1 AND level = 'raw' AND state = 'active'`, [s.id, DATA_SCHEMA]);
  return Number(rows[0].b);
}

/** Where the segments' bytes go (heap, TOAST, each index, per-column sizes), per row of the stream. */
async function segmentBreakdown(db: Db, s: Stream, rows: number): Promise<string> {
  const q = async (sql: string): Promise<Record<string, string>> => (await db.pool.query<Record<string, string>>(sql, [s.id])).rows[0];
  const rel = await q(`SELECT pg_relation_size('${DATA_SCHEMA}.segments')::text AS heap,
      pg_relation_size(c.reltoastrelid)::text AS toast, pg_indexes_size(c.reltoastrelid)::text AS toast_index,
      (SELECT string_agg(i.indexrelid::regclass::text || ' ' || pg_relation_size(i.indexrelid), ', ') FROM pg_index i WHERE i.indrelid = c.oid) AS indexes,
      pg_relation_size('${DATA_SCHEMA}.segment_parts')::text AS parts, pg_indexes_size('${DATA_SCHEMA}.segment_parts')::text AS parts_index,
      (SELECT count(*) FROM ${DATA_SCHEMA}.segment_parts WHERE stream_id = $1)::text AS part_rows,
      (SELECT sum(octet_length(bytes)) FROM ${DATA_SCHEMA}.segment_parts WHERE stream_id = $1)::text AS part_bytes
    FROM pg_class c WHERE c.oid = '${DATA_SCHEMA}.segments'::regclass AND $1::bigint IS NOT NULL`);
  const cols = await q(`SELECT count(*)::text AS n, sum(pg_column_size(s.*))::text AS tuple, sum(pg_column_size(tags))::text AS tags,
      sum(pg_column_size(columns))::text AS columns, sum(pg_column_size(stats))::text AS stats, sum(pg_column_size(data))::text AS data,
      sum(pg_column_size(time_data) + pg_column_size(order_data))::text AS time_order,
      sum((SELECT sum(octet_length(d)) FROM unnest(data) d))::text AS encoded
    FROM ${DATA_SCHEMA}.segments s WHERE stream_id = $1`);
  const b = (v: string | undefined): string => (Number(v ?? 0) / rows).toFixed(3);
  return `${cols.n} segments (${(rows / Number(cols.n)).toFixed(0)} rows each) · table heap ${b(rel.heap)} B/row · TOAST ${b(rel.toast)} + its index ${b(rel.toast_index)}`
    + ` · parts ${b(rel.parts)} (${rel.part_rows} rows holding ${b(rel.part_bytes)}) + their index ${b(rel.parts_index)}`
    + ` · indexes ${rel.indexes.split(', ').map((e) => { const [name, size] = e.split(' '); return `${name.replace(/^.*\./, '')} ${b(size)}`; }).join(', ')}`
    + `\n    per column (pg_column_size): data ${b(cols.data)} (encoded ${b(cols.encoded)}), time+order ${b(cols.time_order)}, stats ${b(cols.stats)}, tags ${b(cols.tags)}, names ${b(cols.columns)}, whole tuples ${b(cols.tuple)}`;
}

async function segmentsBytes(db: Db): Promise<number> {
  const { rows } = await db.pool.query<{ b: string }>(
    `SELECT (pg_total_relation_size('${DATA_SCHEMA}.segments') + pg_total_relation_size('${DATA_SCHEMA}.segment_parts'))::text AS b`);
  return Number(rows[0].b);
}

function appOf(db: Db, dataDir: string): (p: string, init?: RequestInit) => Promise<Response> {
  const config = { ...loadConfig({ STRATA_DATA_DIR: dataDir }), databaseUrl: db.url, jobs: false };
  const deps: AppDeps = { db, config, log: silentLogger(), metrics: createMetrics(false), versions: {}, services: {} };
  const app = createApp(deps);
  return (p, init = {}) => Promise.resolve(app.request(p, { ...init, headers: { authorization: `Bearer ${ADMIN}` } }));
}

const range = { from: formatMicros(BigInt(dataLib.T0_US)), to: formatMicros(BigInt(dataLib.T0_US) + 10n * BigInt(dataLib.DAY_US)) };

/** Seconds to export the 10 days as CSV. */
async function exportSeconds(request: ReturnType<typeof appOf>, name: string, format: 'csv' | 'arrow'): Promise<number> {
  const t0 = performance.now();
  const res = await request(`/v1/streams/${name}/query?${new URLSearchParams({ ...range, format })}`);
  let bytes = 0;
  for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) bytes += piece.length;
  if (res.status !== 200 || bytes < N) throw new Error(`export of ${name} failed: ${res.status}`);
  return (performance.now() - t0) / 1000;
}

/** Milliseconds of resolution=auto (1,000 points) over the 10 days. */
async function autoMs(request: ReturnType<typeof appOf>, name: string): Promise<number> {
  const t0 = performance.now();
  const res = await request(`/v1/streams/${name}/query?${new URLSearchParams({ ...range, resolution: 'auto', max_points: '1000', agg: 'avg,min,max' })}`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`auto query failed: ${res.status} ${text.slice(0, 200)}`);
  if (res.headers.get('strata-served-by') !== '1m') throw new Error(`auto query of ${name} served by ${res.headers.get('strata-served-by')}, not the 1m level alone`);
  return performance.now() - t0;
}

/** Timings of the plain twin and the compressed stream, alternated (which goes first alternates too). */
async function alternated(reps: number, one: (name: string) => Promise<number>): Promise<{ plain: number[]; packed: number[] }> {
  const out = { plain: [] as number[], packed: [] as number[] };
  for (let r = 0; r < reps; r++) {
    if (r % 2 === 0) { out.plain.push(await one('w2plain')); out.packed.push(await one('w2real')); }
    else { out.packed.push(await one('w2real')); out.plain.push(await one('w2plain')); }
  }
  return out;
}

const load = (): string => os.loadavg().map((x) => x.toFixed(1)).join(' ');

async function vmBytesPerRow(t: Table): Promise<number | null> {
  if (process.env.BENCH_VM === '0') return null;
  try { execFileSync('victoria-metrics', ['-version'], { stdio: 'ignore' }); } catch { return null; }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'strata-bench-vm-'));
  const proc: ChildProcess = spawn('victoria-metrics', [`-storageDataPath=${dir}/data`, `-httpListenAddr=127.0.0.1:${VM_PORT}`, '-retentionPeriod=100y', '-loggerLevel=ERROR'], { stdio: 'ignore' });
  try {
    for (let i = 0; ; i++) {
      try { if ((await fetch(`http://127.0.0.1:${VM_PORT}/health`)).ok) break; } catch { /* starting */ }
      if (i > 100) throw new Error('victoria-metrics did not start');
      await new Promise((r) => setTimeout(r, 200));
    }
    const enc = encodeLib.makeLineProtocolEncoder(t, 'lab');
    for (let i = 0; i < t.nRows; i += 10_000) {
      const res = await fetch(`http://127.0.0.1:${VM_PORT}/write?precision=ns`, { method: 'POST', body: enc(i, Math.min(t.nRows, i + 10_000)) });
      if (res.status >= 300) throw new Error(`victoria-metrics refused a batch: ${res.status}`);
    }
    await fetch(`http://127.0.0.1:${VM_PORT}/internal/force_flush`);
    await new Promise((r) => setTimeout(r, 10_000));
    await fetch(`http://127.0.0.1:${VM_PORT}/internal/force_merge`).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 10_000));
    return Number(execFileSync('du', ['-sb', `${dir}/data`], { encoding: 'utf8' }).split('\t')[0]) / t.nRows;
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(`W2 lab-logger rows: ${fmt(N)} over 10 days (10 chunks), ${REPS} repetitions for timings`);
  const random = dataLib.genW2(N);
  const real = realistic(random);
  console.log('\n1. Float codecs, bytes per value (one channel, segments of 10,000):');
  codecFigures('realistic ch0 (3 dp)', real.columns.find((c) => c.name === 'ch0')?.data as Float64Array);
  codecFigures('realistic ch7 (4 dp)', real.columns.find((c) => c.name === 'ch7')?.data as Float64Array);
  codecFigures('random W2 ch0', random.columns.find((c) => c.name === 'ch0')?.data as Float64Array);

  const { db, url, done } = await migratedBenchDb(20);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'strata-bench-compress-'));
  try {
    await ensureFirstAdminKey(db, ADMIN);
    const request = appOf(db, dataDir);
    const streams = { realistic: await newStream(db, 'w2real'), random: await newStream(db, 'w2rand') };
    // The realistic rows once more, never compressed: the baseline the reading figures compare with.
    const twin = await newStream(db, 'w2plain', null);
    await loadRows(db, url, streams.realistic, real);
    await loadRows(db, url, streams.random, random);
    await loadRows(db, url, twin, real);
    const run = await request('/v1/jobs/rollups/run', { method: 'POST' });
    if (run.status !== 200) throw new Error(`rollups refresh failed: ${await run.text()}`);
    await settle(url, [`${DATA_SCHEMA}.${streams.realistic.tableName}`, `${DATA_SCHEMA}.${streams.random.tableName}`, `${DATA_SCHEMA}.${twin.tableName}`]);
    const plainBytes = { realistic: await chunkBytes(db, streams.realistic), random: await chunkBytes(db, streams.random) };

    const packedBytes: Record<string, number> = {};
    const breakdown: Record<string, string> = {};
    const speed: Record<string, { wall: number; cpu: number }> = {};
    let segBefore = await segmentsBytes(db);
    for (const [label, s] of Object.entries(streams)) {
      const chunks = await chunksToCompress(db.pool, s, BigInt(Date.now()) * 1000n);
      const cpu0 = process.cpuUsage();
      const pg0 = await postgresCpuSeconds();
      const t0 = performance.now();
      let rows = 0;
      for (const c of chunks) rows += (await compressChunk(db, s, c, { runId: null }))?.rows ?? 0;
      const wall = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const cpuS = (cpu.user + cpu.system) / 1e6 + (await postgresCpuSeconds() - pg0);
      if (rows !== N) throw new Error(`${label}: compressed ${rows} rows of ${N}`);
      speed[label] = { wall: rows / wall, cpu: rows / cpuS };
      await settle(url, [`${DATA_SCHEMA}.segments`]);
      const segAfter = await segmentsBytes(db);
      const emptied = await chunkBytes(db, s);
      packedBytes[label] = segAfter - segBefore + emptied;
      if (label === 'realistic') breakdown[label] = `${await segmentBreakdown(db, s, N)}\n    emptied chunk tables ${(emptied / N).toFixed(3)} B/row`;
      segBefore = segAfter;
    }
    await settle(url, [`${DATA_SCHEMA}.${streams.realistic.tableName}`]);
    const loadBefore = load();
    // CSV: PostgreSQL writes plain chunks' rows itself, Node those of segments; Arrow: Node both.
    const exports = await alternated(REPS, (name) => exportSeconds(request, name, 'csv'));
    const arrowExports = await alternated(REPS, (name) => exportSeconds(request, name, 'arrow'));
    const autos = await alternated(Math.max(9, REPS), (name) => autoMs(request, name));
    const loadAfter = load();
    const d0 = performance.now();
    let decoded = 0;
    for await (const { batch } of compressedBatches(db.pool, streams.realistic, { from: null, to: null }, streams.realistic.columns)) decoded += batch.length;
    const decodeRate = decoded / ((performance.now() - d0) / 1000);

    const vm = { realistic: await vmBytesPerRow(real), random: await vmBytesPerRow(random) };

    console.log('\n2. Bytes per row on disk:');
    for (const label of ['realistic', 'random'] as const) {
      const p = plainBytes[label] / N; const c = packedBytes[label] / N; const v = vm[label];
      console.log(`  ${label.padEnd(10)} plain chunks ${p.toFixed(1).padStart(6)} · compressed ${c.toFixed(1).padStart(5)} (${(p / c).toFixed(1)}× smaller, ${(100 * c / p).toFixed(1)} %)`
        + ` · VictoriaMetrics ${v === null ? 'not installed' : `${v.toFixed(1)} (compressed/VM ${(c / v).toFixed(2)})`}`);
    }
    console.log(`  where the realistic rows' bytes go: ${breakdown.realistic}`);
    console.log('\n3. Compression speed:');
    for (const label of ['realistic', 'random'] as const) {
      console.log(`  ${label.padEnd(10)} ${fmt(speed[label].wall)} rows/s wall · ${fmt(speed[label].cpu)} rows per CPU-second (Node + PostgreSQL)`);
    }
    const ratios = (a: { plain: number[]; packed: number[] }): number => median(a.plain.map((p, i) => p / a.packed[i]));
    console.log(`\n4. Reading (realistic rows; the plain twin and the compressed stream alternated; load average ${loadBefore} before, ${loadAfter} after):`);
    console.log(`  raw export CSV   plain ${fmt(N / median(exports.plain))} rows/s · compressed ${fmt(N / median(exports.packed))} rows/s`
      + ` (ratio of medians ${(median(exports.plain) / median(exports.packed)).toFixed(2)}, median of pair ratios ${ratios(exports).toFixed(2)}; ${REPS} pairs)`);
    console.log(`  raw export Arrow plain ${fmt(N / median(arrowExports.plain))} rows/s · compressed ${fmt(N / median(arrowExports.packed))} rows/s`
      + ` (ratio of medians ${(median(arrowExports.plain) / median(arrowExports.packed)).toFixed(2)}, median of pair ratios ${ratios(arrowExports).toFixed(2)}; ${REPS} pairs)`);
    console.log(`  decoding alone   ${fmt(decodeRate)} rows/s (segments to ColumnBatches)`);
    console.log(`  auto, 10 days    plain ${median(autos.plain).toFixed(1)} ms · compressed ${median(autos.packed).toFixed(1)} ms`
      + ` (medians of ${autos.plain.length}; median of pair ratios compressed/plain ${median(autos.packed.map((p, i) => p / autos.plain[i])).toFixed(2)}; all: plain ${autos.plain.map((x) => x.toFixed(0)).join(' ')}, compressed ${autos.packed.map((x) => x.toFixed(0)).join(' ')})`);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
    await done();
  }
}

const PARTS = (process.env.COMPRESSION_BENCH ?? 'sizes,server').split(',');
if (PARTS.includes('sizes')) await main();
if (PARTS.includes('server')) await serverFigures();
