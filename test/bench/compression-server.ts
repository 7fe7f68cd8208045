// Part of `npm run bench compression` (section 5): the conversion in a running server, as the
// compression job does it, against the server's own ingest in the same run.
//  - A chunk of BENCH_BIG_ROWS (default 10,000,000) logger rows with realistic values (3 and 4
//    decimals) is converted by POST /v1/jobs/compression/run, BENCH_BIG_REPS times (the chunk is
//    refilled between runs): rows/s, median, rows per CPU-second of the server (all threads), and
//    rows per CPU-second of the server and PostgreSQL together (the rate on one core).
//  - The single-upload Arrow ingest rate of the same layout (one upload of BENCH_UPLOAD_ROWS),
//    median of 3, in the same three forms: the conversion is asked to be ≥ 2× that.
//  - The ingest dip: a steady stream of uploads (one after another, 50,000 rows each) for
//    BENCH_STEADY_S seconds alone, then while a conversion of BENCH_DIP_ROWS (1,000,000) of the
//    chunk's rows runs, then alone again; the dip is 1 − rate beside the conversion / mean rate
//    alone, the median of BENCH_DIP_ROUNDS (6) rounds: the rate of uploads alone swings by up to
//    10 % between windows, so that three rounds' median moved by 4 points from run to run. Beside
//    uploads the conversion runs a twentieth of the time (STRATA_COMPRESSION_BUSY_PAUSE): a
//    conversion of 4M rows then lasts minutes, and the uploads meanwhile fill tens of GB.
//  - The ceiling any conversion that reads the chunk's rows from PostgreSQL has on this machine:
//    PostgreSQL's binary COPY of the chunk to a client that only counts the bytes, one COPY, and
//    two COPYs of its halves (by TID range) at once (medians of 3), and the one COPY's rows per
//    CPU-second of PostgreSQL.
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import pl from 'nodejs-polars';
import { ADMIN_KEY, type BenchServer, benchDatabase, fmt, median, postgresCpuSeconds, settle, startBenchServer, upload } from './lib.ts';

const BIG = Number(process.env.BENCH_BIG_ROWS ?? 10_000_000);
const BIG_REPS = Number(process.env.BENCH_BIG_REPS ?? 2);
const UPLOAD_ROWS = Number(process.env.BENCH_UPLOAD_ROWS ?? 1_000_000);
const STEADY_S = Number(process.env.BENCH_STEADY_S ?? 20);
const STEADY_ROWS = 50_000;
const DIP_ROUNDS = Number(process.env.BENCH_DIP_ROUNDS ?? 6);
const DIP_ROWS = Math.min(BIG, Number(process.env.BENCH_DIP_ROWS ?? 1_000_000));
const ARROW = 'application/vnd.apache.arrow.stream';
const T0 = 1_709_251_200_000_000n; // 2024-03-01T00:00:00Z: one 30-day chunk holds 10M rows at 100 Hz

function loggerFrame(start: number, n: number, offsetUs: bigint): pl.DataFrame {
  const time = new BigInt64Array(n);
  for (let i = 0; i < n; i++) time[i] = T0 + offsetUs + BigInt(start + i) * 10_000n;
  const cols: pl.Series[] = [pl.Series('time', time, pl.Int64).cast(pl.Datetime('us', 'UTC'))];
  cols.push(pl.Series('sample', Array.from({ length: n }, (_, i) => `sample-${String(Math.floor((start + i) / 1000) % 20).padStart(2, '0')}`), pl.Utf8));
  for (let c = 0; c < 10; c++) {
    const v = new Float64Array(n);
    const p = c < 5 ? 1e3 : 1e4;
    for (let i = 0; i < n; i++) v[i] = Math.round((Math.sin((start + i) / (50 + c)) * (c + 1) + c) * p) / p;
    cols.push(pl.Series(`ch${c}`, v, pl.Float64));
  }
  cols.push(pl.Series('counter', Int32Array.from({ length: n }, (_, i) => start + i), pl.Int32));
  cols.push(pl.Series('flag', Array.from({ length: n }, (_, i) => (start + i) % 20 === 0), pl.Bool));
  return pl.DataFrame(cols);
}

/** An Arrow IPC stream of `rows` logger rows (65,536-row batches), `offsetUs` later than T0. */
function loggerStream(rows: number, offsetUs = 0n): Buffer {
  const frames: pl.DataFrame[] = [];
  for (let s = 0; s < rows; s += 65_536) frames.push(loggerFrame(s, Math.min(65_536, rows - s), offsetUs));
  const f = pl.concat(frames, { how: 'vertical', rechunk: false }).writeIPC({ compression: 'uncompressed' });
  return Buffer.from(f.subarray(8, f.length - 10 - f.readInt32LE(f.length - 10)));
}

async function api(server: BenchServer, method: string, p: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(new URL(p, server.url), {
    method, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json() as Record<string, unknown>;
  if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

interface Big { table: string; chunkId: number }

/** The stream "big" with one 30-day chunk, and a staging table holding BIG rows for it. */
async function prepareBig(server: BenchServer, client: pg.Client): Promise<Big> {
  await api(server, 'POST', '/v1/streams', {
    name: 'big', chunk_interval: '30 days', compress_after: '7 days', tags: ['sample'],
    fields: [...Array.from({ length: 10 }, (_, c) => ({ name: `ch${c}`, type: 'float8' })), { name: 'counter', type: 'int4' }, { name: 'flag', type: 'bool' }],
  });
  const first = await upload(server.url, '/v1/streams/big/ingest', loggerStream(1000), ARROW);
  if (first.status !== 201) throw new Error(`setup upload: ${JSON.stringify(first.json)}`);
  const ingestId = (first.json as { ingest: { id: string } }).ingest.id;
  const s = await api(server, 'GET', '/v1/streams/big') as { table: string; fields: { name: string; column: string }[]; tags: { name: string; column: string }[] };
  const col = (n: string): string => `"${[...s.tags, ...s.fields].find((c) => c.name === n)?.column}"`;
  const [schema] = s.table.split('.');
  const { rows: [chunk] } = await client.query<{ id: string; table_name: string }>(
    `SELECT c.id::text, c.table_name FROM strata.chunks c JOIN strata.streams s ON s.id = c.stream_id WHERE s.name = 'big' AND c.level = 'raw'`);
  const table = `"${schema}"."${chunk.table_name}"`;
  await client.query(`DELETE FROM ${table}`);
  const chans = Array.from({ length: 10 }, (_, c) => `round((sin(i / ${50 + c}.0) * ${c + 1} + ${c})::numeric, ${c < 5 ? 3 : 4})::float8 AS ${col(`ch${c}`)}`);
  await client.query(`CREATE TABLE public.big_stage AS SELECT '2024-03-01T00:00:00Z'::timestamptz + i * interval '10 ms' AS "time",
      'sample-' || lpad(((i / 1000) % 20)::text, 2, '0') AS ${col('sample')}, ${chans.join(', ')}, i::int4 AS ${col('counter')}, (i % 20 = 0) AS ${col('flag')},
      ${Number(ingestId)}::bigint AS ingest_id
    FROM generate_series(0, ${BIG - 1}) i`);
  return { table, chunkId: Number(chunk.id) };
}

/** The chunk back to `rows` (BIG) plain rows, its segments gone. */
async function refill(client: pg.Client, big: Big, url: string, rows = BIG): Promise<void> {
  await client.query('DELETE FROM strata_data.segments WHERE chunk_id = $1', [big.chunkId]);
  await client.query('UPDATE strata.chunks SET compressed_at = NULL, compressed_rows = NULL, compressed_bytes = NULL WHERE id = $1', [big.chunkId]);
  await client.query(`TRUNCATE ${big.table}`);
  const cols = (await client.query<{ c: string }>(`SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS c FROM pg_attribute WHERE attrelid = 'public.big_stage'::regclass AND attnum > 0`)).rows[0].c;
  await client.query(`INSERT INTO ${big.table} (${cols}) SELECT ${cols} FROM public.big_stage${rows < BIG ? ` LIMIT ${rows}` : ''}`);
  await settle(url, [big.table, 'strata_data.segments']);
}

interface Rates {
  /** Rows/s. */
  rate: number;
  /** Rows per CPU-second of the server (all its threads). */
  cpuRate: number;
  /** Rows per CPU-second of the server and PostgreSQL together: the rate the work would have on one core. */
  coreRate: number;
}

/** Rates of `work` (which handles `rows` rows) from its wall time and the CPU the server and PostgreSQL spent meanwhile. */
async function measured(server: BenchServer, rows: number, work: () => Promise<number | undefined>): Promise<Rates> {
  const cpu0 = await server.cpuSeconds();
  const pg0 = await postgresCpuSeconds();
  const t0 = performance.now();
  const seconds = await work() ?? (performance.now() - t0) / 1000;
  const cpu = await server.cpuSeconds() - cpu0;
  const pgCpu = await postgresCpuSeconds() - pg0;
  return { rate: rows / seconds, cpuRate: rows / cpu, coreRate: rows / (cpu + pgCpu) };
}

async function convert(server: BenchServer, rows = BIG): Promise<Rates> {
  return measured(server, rows, async () => {
    const run = await api(server, 'POST', '/v1/jobs/compression/run?stream=big') as { outcome: string; rows: number };
    if (run.outcome !== 'succeeded' || run.rows !== rows) throw new Error(`conversion: ${JSON.stringify(run)}`);
    return undefined;
  });
}

/** Uploads of STEADY_ROWS one after another until `until` resolves; rows/s over the span. */
async function steady(server: BenchServer, next: () => Buffer, until: Promise<unknown>): Promise<number> {
  let done = false;
  void until.then(() => { done = true; });
  let rows = 0;
  const t0 = performance.now();
  while (!done) {
    const r = await upload(server.url, '/v1/streams/live/ingest', next(), ARROW);
    if (r.status !== 201) throw new Error(`steady upload: ${JSON.stringify(r.json)}`);
    rows += STEADY_ROWS;
  }
  return rows / ((performance.now() - t0) / 1000);
}

/** Bytes of a COPY … TO STDOUT, read on a connection of its own and dropped. */
async function drain(url: string, sql: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    let n = 0;
    for await (const piece of c.query(copyTo(sql))) n += (piece as Buffer).length;
    return n;
  } finally {
    await c.end();
  }
}

/**
 * PostgreSQL's delivery of the chunk's rows alone: one binary COPY, and its two halves at once
 * (rows/s, medians of 3); and the one COPY's rows per CPU-second of PostgreSQL (its rate on one
 * core, before the client does anything with the rows).
 */
async function readCeiling(client: pg.Client, url: string, big: Big): Promise<{ one: number; two: number; core: number }> {
  const cols = (await client.query<{ c: string }>(`SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS c FROM pg_attribute
     WHERE attrelid = '${big.table}'::regclass AND attnum > 0 AND NOT attisdropped`)).rows[0].c;
  const pages = Number((await client.query<{ p: string }>(`SELECT (pg_relation_size('${big.table}') / 8192)::text AS p`)).rows[0].p);
  const half = `'(${Math.floor(pages / 2)},0)'::tid`;
  const one: number[] = [];
  const two: number[] = [];
  const core: number[] = [];
  for (let r = 0; r < 3; r++) {
    const pg0 = await postgresCpuSeconds();
    let t0 = performance.now();
    await drain(url, `COPY ${big.table} (${cols}) TO STDOUT (FORMAT binary)`);
    one.push(BIG / ((performance.now() - t0) / 1000));
    core.push(BIG / (await postgresCpuSeconds() - pg0));
    t0 = performance.now();
    await Promise.all([
      drain(url, `COPY (SELECT ${cols} FROM ${big.table} WHERE ctid < ${half}) TO STDOUT (FORMAT binary)`),
      drain(url, `COPY (SELECT ${cols} FROM ${big.table} WHERE ctid >= ${half}) TO STDOUT (FORMAT binary)`),
    ]);
    two.push(BIG / ((performance.now() - t0) / 1000));
  }
  return { one: median(one), two: median(two), core: median(core) };
}

const sleep = (s: number): Promise<void> => new Promise((r) => setTimeout(r, s * 1000));

export async function serverFigures(): Promise<void> {
  const db = await benchDatabase();
  const url = db.url;
  const server = await startBenchServer(db.serverUrl);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    console.log(`\n5. Conversion in the server (a ${fmt(BIG)}-row chunk, realistic values) against its own ingest:`);
    const big = await prepareBig(server, client);
    await refill(client, big, url);
    await upload(server.url, '/v1/streams/warmup/ingest', loggerStream(100_000), ARROW);
    let shift = 0n;
    const fresh = (rows: number): Buffer => loggerStream(rows, 100_000_000_000n + (shift += 1n));
    const single: Rates[] = [];
    for (let r = 0; r < 3; r++) {
      const body = fresh(UPLOAD_ROWS);
      single.push(await measured(server, UPLOAD_ROWS, async () => {
        const res = await upload(server.url, `/v1/streams/single-${r}/ingest`, body, ARROW);
        if (res.status !== 201) throw new Error(JSON.stringify(res.json));
        return res.seconds;
      }));
    }
    const ingest = single.map((u) => u.rate);
    const ingestCpu = single.map((u) => u.cpuRate);
    const ingestCore = single.map((u) => u.coreRate);
    const ceiling = await readCeiling(client, url, big);
    const conv: Rates[] = [];
    for (let r = 0; r < BIG_REPS; r++) {
      if (r > 0) await refill(client, big, url);
      conv.push(await convert(server));
      console.log(`  conversion ${r + 1}: ${fmt(conv[r].rate)} rows/s (${(BIG / conv[r].rate).toFixed(1)} s), ${fmt(conv[r].cpuRate)} rows per server CPU-second, `
        + `${fmt(conv[r].coreRate)} rows per CPU-second of the server and PostgreSQL`);
    }
    // Each upload has a body of its own (a repeated body would be a duplicate, stored once), made
    // by this process between uploads in every phase alike. Rounds of (refill, uploads alone,
    // uploads beside a conversion, uploads alone): the rate of uploads alone swings by several
    // per cent between windows of the same run (checkpoints, the stream's growth), so each round
    // has its own windows, and the median dip is reported.
    const take = (): Buffer => fresh(STEADY_ROWS);
    const dips: { before: number; beside: number; after: number; conv: number; dip: number }[] = [];
    for (let r = 0; r < DIP_ROUNDS; r++) {
      await refill(client, big, url, DIP_ROWS);
      const before = await steady(server, take, sleep(STEADY_S));
      const job = convert(server, DIP_ROWS);
      const beside = await steady(server, take, job);
      const during = await job;
      const after = await steady(server, take, sleep(STEADY_S));
      dips.push({ before, beside, after, conv: during.rate, dip: 100 * (1 - beside / ((before + after) / 2)) });
    }
    const convRate = median(conv.map((c) => c.rate));
    const convCpu = median(conv.map((c) => c.cpuRate));
    const convCore = median(conv.map((c) => c.coreRate));
    console.log(`  single upload (Arrow, ${fmt(UPLOAD_ROWS)} rows): ${fmt(median(ingest))} rows/s, ${fmt(median(ingestCpu))} rows per server CPU-second, `
      + `${fmt(median(ingestCore))} rows per CPU-second of the server and PostgreSQL (medians of 3)`);
    console.log(`  conversion: ${fmt(convRate)} rows/s, ${(BIG / convRate).toFixed(1)} s for ${fmt(BIG)} rows (median of ${BIG_REPS}), `
      + `${fmt(convCpu)} rows per server CPU-second; ${(convRate / median(ingest)).toFixed(2)}× the single-upload rate (${(convCpu / median(ingestCpu)).toFixed(2)}× per server CPU-second); `
      + `on one core (rows per CPU-second of the server and PostgreSQL) ${fmt(convCore)} rows/s, ${(convCore / median(ingestCore)).toFixed(2)}× the single upload's`);
    console.log(`  the chunk read from PostgreSQL and dropped (no conversion): one binary COPY ${fmt(ceiling.one)} rows/s (${(ceiling.one / median(ingest)).toFixed(2)}× the single-upload rate), `
      + `its two halves at once ${fmt(ceiling.two)} rows/s (${(ceiling.two / median(ingest)).toFixed(2)}×) (medians of 3); `
      + `the one COPY on one core: ${fmt(ceiling.core)} rows per PostgreSQL CPU-second, ${(ceiling.core / median(ingestCore)).toFixed(2)}× the single upload's rate on one core`);
    for (const [i, d] of dips.entries()) {
      console.log(`  steady uploads (${fmt(STEADY_ROWS)} rows each), round ${i + 1}: alone ${fmt(d.before)} and ${fmt(d.after)} rows/s, beside the conversion ${fmt(d.beside)} rows/s `
        + `(dip ${d.dip.toFixed(1)} %); that conversion ${fmt(d.conv)} rows/s`);
    }
    console.log(`  uploads beside a conversion (${fmt(DIP_ROWS)} rows): median dip ${median(dips.map((d) => d.dip)).toFixed(1)} % over ${dips.length} rounds`);
  } finally {
    await client.query('DROP TABLE IF EXISTS public.big_stage').catch(() => undefined);
    await client.end();
    await server.stop();
    await db.close();
  }
}
