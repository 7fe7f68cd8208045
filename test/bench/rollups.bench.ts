// `npm run bench rollups`: what rollups cost and what they save, against the real server (a child
// process, background jobs off: the benchmark runs the `rollups` job itself over HTTP).
//  1. BENCH_ROLLUP_DAYS (30) days of 1-second readings for 10 tag values (≈ 26M rows), uploaded
//     as one Arrow stream per day; the first refresh (the whole job run, timed: rows/s); then a
//     `resolution=auto&max_points=1000&agg=avg` query over the whole range (median of
//     BENCH_QUERY_RUNS ≥ 7 after two warm-ups) against the same aggregation computed in SQL directly
//     over the raw rows with the same buckets (median of BENCH_RAW_RUNS ≥ 3). Target: ≥ 50× faster
//     and < 50 ms. The two answers are compared bucket by bucket.
//  2. Late uploads of one hour of one tag into hours already refreshed (an hour a logger missed,
//     and a second reading per second into a full hour): the rows the next refresh reads per level
//     (target: proportional to that hour, not to the stream).
//  3. Ingest throughput (50k-row uploads one after another, timestamps at now) while the rollups
//     job runs every second, against the same uploads without it: cycles of three rounds of
//     BENCH_ROLLUP_WINDOW_S seconds (60: use whole minutes, so that each refreshed round has one
//     round of rows due), BENCH_ROLLUP_ROUNDS ≥ 3 cycles, medians (target: < 10 % lower). The third
//     round refreshes another stream, to tell CPU and I/O contention from waiting on the stream.
// 1b (levels). What if: the same auto query once a 15m level is added to the stream (PATCH).
// ROLLUP_BENCH=query,late,levels,ingest picks parts (all by default; late and levels need query's data).
// Uses DATABASE_URL (a server to create a scratch database on) or an embedded PostgreSQL. Part 3
// writes about 3 × BENCH_ROLLUP_WINDOW_S × (ingest rate) rows per cycle (≈ 60 bytes each on disk).
import http from 'node:http';
import {
  Field, Float64, RecordBatch, Schema, Struct, Table, TimestampMicrosecond, Utf8, makeData, tableToIPC,
} from 'apache-arrow';
import pg from 'pg';
import { ADMIN_KEY, type BenchServer, benchDatabase, fmt, median, startBenchServer, upload } from './lib.ts';

const DAYS = Number(process.env.BENCH_ROLLUP_DAYS ?? 30);
const QUERY_RUNS = Math.max(7, Number(process.env.BENCH_QUERY_RUNS ?? 9));
const RAW_RUNS = Math.max(3, Number(process.env.BENCH_RAW_RUNS ?? 3));
const ROUNDS = Math.max(3, Number(process.env.BENCH_ROLLUP_ROUNDS ?? 3));
const WINDOW_S = Number(process.env.BENCH_ROLLUP_WINDOW_S ?? 60);
const PARTS = (process.env.ROLLUP_BENCH ?? 'query,late,levels,ingest').split(',');

const TAGS = 10;
const SEC_US = 1_000_000;
const HOUR_S = 3600;
const DAY_S = 86_400;
const DAY_US = 86_400_000_000n;
const T0 = 1_709_251_200_000_000n; // 2024-03-01T00:00:00Z
const BATCH = 65_536;
const ARROW = 'application/vnd.apache.arrow.stream';
const HIST = 'rollup-hist';
/** Where the stream's logger was down for an hour: tag GAP_TAG misses hour GAP_HOUR of day GAP_DAY. */
const GAP_DAY = Math.floor(DAYS / 2);
const GAP_HOUR = 12;
const GAP_TAG = 7;
/** An hour whose readings of tag DENSE_TAG get a second reading per second, late. */
const DENSE_HOUR = 14;
const DENSE_TAG = 3;

const tagName = (k: number): string => `s-0${k}`; // 4 bytes each

// ---------------------------------------------------------------------------------------------
// Arrow bodies (apache-arrow with hand-made buffers: no per-row JS strings, so generating a day
// of 864k rows takes a few milliseconds)

const schema = new Schema([
  new Field('time', new TimestampMicrosecond('UTC'), false),
  new Field('sample', new Utf8(), false),
  new Field('value', new Float64(), false),
]);
const TAG_BYTES = new TextEncoder().encode(Array.from({ length: TAGS }, (_, k) => tagName(k)).join(''));

function recordBatch(time: BigInt64Array, tag: Uint8Array, value: Float64Array): RecordBatch {
  const n = time.length;
  const offsets = new Int32Array(n + 1);
  const bytes = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    offsets[i + 1] = (i + 1) * 4;
    bytes.set(TAG_BYTES.subarray(tag[i] * 4, tag[i] * 4 + 4), i * 4);
  }
  const children = [
    makeData({ type: new TimestampMicrosecond('UTC'), length: n, nullCount: 0, data: time }),
    makeData({ type: new Utf8(), length: n, nullCount: 0, valueOffsets: offsets, data: bytes }),
    makeData({ type: new Float64(), length: n, nullCount: 0, data: value }),
  ];
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children }));
}

/** Rows (time µs, tag index, value) as an Arrow IPC stream of BATCH-row record batches. */
function arrowBody(time: BigInt64Array, tag: Uint8Array, value: Float64Array): Buffer {
  const batches: RecordBatch[] = [];
  for (let s = 0; s < time.length; s += BATCH) {
    const e = Math.min(time.length, s + BATCH);
    batches.push(recordBatch(time.subarray(s, e), tag.subarray(s, e), value.subarray(s, e)));
  }
  return Buffer.from(tableToIPC(new Table(schema, batches), 'stream'));
}

/** A reading: a daily cycle per tag plus a little deterministic noise. */
function reading(secondOfRun: number, k: number): number {
  const noise = (((secondOfRun * 2654435761 + k * 40503) >>> 0) % 1000) / 1000 - 0.5;
  return Math.round((20 + k + 5 * Math.sin((2 * Math.PI * secondOfRun) / DAY_S) + noise) * 1e6) / 1e6;
}

/** Day d of the historical stream: every tag every second, except the logger gap. */
function dayBody(d: number): { body: Buffer; rows: number } {
  const n = DAY_S * TAGS;
  const time = new BigInt64Array(n);
  const tag = new Uint8Array(n);
  const value = new Float64Array(n);
  const dayStart = T0 + BigInt(d) * DAY_US;
  let i = 0;
  for (let s = 0; s < DAY_S; s++) {
    const t = dayStart + BigInt(s * SEC_US);
    const gap = d === GAP_DAY && Math.floor(s / HOUR_S) === GAP_HOUR;
    for (let k = 0; k < TAGS; k++) {
      if (gap && k === GAP_TAG) continue;
      time[i] = t;
      tag[i] = k;
      value[i] = reading(d * DAY_S + s, k);
      i++;
    }
  }
  return { body: arrowBody(time.subarray(0, i), tag.subarray(0, i), value.subarray(0, i)), rows: i };
}

/** One hour of one tag on day GAP_DAY, every second, starting `offsetUs` into each second. */
function hourBody(hour: number, k: number, offsetUs: number): Buffer {
  const time = new BigInt64Array(HOUR_S);
  const value = new Float64Array(HOUR_S);
  const start = T0 + BigInt(GAP_DAY) * DAY_US + BigInt(hour * HOUR_S * SEC_US + offsetUs);
  for (let s = 0; s < HOUR_S; s++) {
    time[s] = start + BigInt(s * SEC_US);
    value[s] = reading(GAP_DAY * DAY_S + hour * HOUR_S + s, k);
  }
  return arrowBody(time, new Uint8Array(HOUR_S).fill(k), value);
}

// ---------------------------------------------------------------------------------------------
// HTTP (node:http: no client-side timeout, a refresh of 26M rows takes minutes)

interface Answer { status: number; json: unknown; ms: number }

function api(server: BenchServer, method: 'GET' | 'POST' | 'PATCH', pathname: string, body?: unknown): Promise<Answer> {
  const started = performance.now();
  const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string | number> = { authorization: `Bearer ${ADMIN_KEY}` };
  if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': payload.length });
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(pathname, server.url), { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, json: JSON.parse(text || 'null'), ms: performance.now() - started });
      });
    });
    req.on('error', reject);
    req.end(payload ?? undefined);
  });
}

interface LevelSummary { ranges: number; rows_read: number; rows_written: number }
interface RecomputedRange { level: string; kind: string; tags: (string | null)[] | null; from: string; to: string; source: string; rowsRead: number; rowsWritten: number }
interface StreamSummary { levels: Record<string, LevelSummary>; recomputed: RecomputedRange[]; recomputed_more?: number }
interface RunRecord { id: number; outcome: string; duration_ms: number | null; rows: number | null; error: string | null; details: { streams?: Record<string, StreamSummary> } }

async function refresh(server: BenchServer, stream: string): Promise<{ run: RunRecord; ms: number }> {
  const r = await api(server, 'POST', `/v1/jobs/rollups/run?stream=${encodeURIComponent(stream)}`);
  const run = r.json as RunRecord;
  if (r.status !== 200 || run.outcome !== 'succeeded') throw new Error(`rollups run failed: ${r.status} ${JSON.stringify(r.json)}`);
  return { run, ms: r.ms };
}

/** A query timed QUERY_RUNS times after two warm-ups: each run's ms and the last answer. */
async function timedQuery(server: BenchServer, path: string): Promise<{ times: number[]; body: QueryBody }> {
  for (let i = 0; i < 2; i++) await api(server, 'GET', path);
  const times: number[] = [];
  let body: QueryBody | null = null;
  for (let i = 0; i < QUERY_RUNS; i++) {
    const r = await api(server, 'GET', path);
    if (r.status !== 200) throw new Error(`query failed: ${r.status} ${JSON.stringify(r.json)}`);
    times.push(r.ms);
    body = r.json as QueryBody;
  }
  if (!body) throw new Error('no query answer');
  return { times, body };
}

async function ingest(server: BenchServer, stream: string, body: Buffer): Promise<{ rows: number; seconds: number }> {
  const r = await upload(server.url, `/v1/streams/${stream}/ingest`, body, ARROW);
  if (r.status !== 201) throw new Error(`upload into ${stream} failed: ${r.status} ${JSON.stringify(r.json)}`);
  return { rows: (r.json as { ingest: { rows: number } }).ingest.rows, seconds: r.seconds };
}

interface StreamInfo { table: string; tags: { name: string; column: string }[]; fields: { name: string; column: string }[] }

async function streamInfo(server: BenchServer, name: string): Promise<{ table: string; sample: string; value: string }> {
  const r = await api(server, 'GET', `/v1/streams/${name}`);
  const s = r.json as StreamInfo;
  const col = (list: { name: string; column: string }[], n: string): string => `"${list.find((c) => c.name === n)?.column}"`;
  const [schemaName, table] = s.table.split('.');
  return { table: `"${schemaName}"."${table}"`, sample: col(s.tags, 'sample'), value: col(s.fields, 'value') };
}

// ---------------------------------------------------------------------------------------------

const summary: [string, string, string][] = [];
const ms = (x: number): string => (x < 10 ? `${x.toFixed(2)} ms` : x < 1000 ? `${x.toFixed(1)} ms` : `${fmt(x / 1000, 2)} s`);
const pgTime = (us: bigint): string => new Date(Number(us / 1000n)).toISOString();
const levelUs = (name: string): bigint => {
  const m = /^(\d+)(s|m|h|d|w)$/.exec(name);
  if (!m) throw new Error(`level ${name}?`);
  return BigInt(m[1]) * { s: 1n, m: 60n, h: 3600n, d: 86400n, w: 604800n }[m[2] as 's']! * 1_000_000n;
};

interface QueryBody { served: { source: string; ranges: { from: string; to: string }[] }[]; level?: string; bucket?: string; rows: [string, number | null][]; row_count: number }

async function loadAndQuery(server: BenchServer, client: pg.Client): Promise<number> {
  console.log(`\n## 1. ${DAYS} days of 1-second readings × ${TAGS} tags: load, first refresh, auto query vs. raw SQL`);
  // load: one upload per day
  let rows = 0;
  let uploadS = 0;
  let genS = 0;
  let bytes = 0;
  for (let d = 0; d < DAYS; d++) {
    const g = performance.now();
    const { body, rows: n } = dayBody(d);
    genS += (performance.now() - g) / 1000;
    bytes += body.length;
    const r = await ingest(server, HIST, body);
    if (r.rows !== n) throw new Error(`day ${d}: ${r.rows} rows stored, ${n} sent`);
    rows += r.rows;
    uploadS += r.seconds;
    if (d % 5 === 4 || d === DAYS - 1) process.stdout.write(`  loaded day ${d + 1}/${DAYS}: ${fmt(rows)} rows, ${fmt(rows / uploadS)} rows/s\n`);
  }
  console.log(`load: ${fmt(rows)} rows (${fmt(bytes / 1e6)} MB of Arrow) in ${DAYS} uploads, ${fmt(uploadS, 1)} s of uploads → ${fmt(rows / uploadS)} rows/s (bodies generated in ${fmt(genS, 1)} s, not counted)`);
  summary.push(['load (Arrow uploads, one per day)', `${fmt(rows)} rows at ${fmt(rows / uploadS)} rows/s`, '']);

  const info = await streamInfo(server, HIST);
  // Autovacuum would visit every freshly written chunk soon; done now, so that it does not fall into the figures.
  let t = performance.now();
  await client.query(`VACUUM (ANALYZE) ${info.table}`);
  console.log(`VACUUM (ANALYZE) of the raw table (setup, not counted): ${ms(performance.now() - t)}`);

  // the first refresh: every level from nothing
  const first = await refresh(server, HIST);
  const levels = first.run.details.streams?.[HIST]?.levels ?? {};
  const { rows: perLevel } = await client.query<{ level: string; ranges: number; first_at: Date; last_at: Date }>(
    `SELECT level, count(*)::int AS ranges, min("at") AS first_at, max("at") AS last_at FROM strata.rollup_refreshes WHERE run_id = $1 GROUP BY level ORDER BY min("at")`,
    [first.run.id]);
  console.log(`first refresh (job run over ${fmt(rows)} raw rows): ${ms(first.ms)} → ${fmt(rows / (first.ms / 1000))} raw rows/s`);
  for (let i = 0; i < perLevel.length; i++) {
    const l = perLevel[i];
    const s = levels[l.level];
    const next = perLevel[i + 1]?.first_at.getTime();
    const took = next !== undefined ? `≈ ${ms(next - l.first_at.getTime())}` : '(rest of the run)';
    console.log(`  ${l.level}: ${l.ranges} transactions, read ${fmt(s?.rows_read ?? 0)}, wrote ${fmt(s?.rows_written ?? 0)} ${took}`);
  }
  summary.push(['first refresh (rollups job, all levels from nothing)', `${ms(first.ms)}, ${fmt(rows / (first.ms / 1000))} raw rows/s`, '']);

  // the auto query
  const from = T0;
  const to = T0 + BigInt(DAYS) * DAY_US;
  const qs = `resolution=auto&max_points=1000&from=${pgTime(from)}&to=${pgTime(to)}&fields=value&agg=avg`;
  const path = `/v1/streams/${HIST}/query?${qs}`;
  const { times: autoMs, body } = await timedQuery(server, path);
  const level = body.level ?? 'raw';
  console.log(`auto query (GET ${path.replace(/\?.*/, '')}?${qs}): ${body.row_count} points, bucket ${body.bucket}, level ${level}`);
  console.log(`  served: ${body.served.map((p) => `${p.source} [${p.ranges.map((x) => `${x.from} … ${x.to}`).join(', ')}]`).join('; ')}`);
  console.log(`  runs: ${autoMs.map(ms).join(', ')}`);

  // the same aggregation over the raw rows, in SQL; same buckets (the reading's serving-level bucket start, then the query bucket)
  const w = (to - from) / 1000n;
  const last = from + 999n * w;
  const inner = level === 'raw' ? 'r."time"' : `date_bin('${levelUs(level)} microseconds'::interval, r."time", '1970-01-01 00:00:00+00'::timestamptz)`;
  const rawSql = `SELECT (extract(epoch FROM b) * 1000000)::bigint::text AS b, avg(v) AS v FROM (
      SELECT LEAST(GREATEST(date_bin('${w} microseconds'::interval, ${inner}, $1::timestamptz), $1::timestamptz), $3::timestamptz) AS b, r.${info.value} AS v
        FROM ${info.table} r WHERE r."time" >= $1::timestamptz AND r."time" < $2::timestamptz) x
    GROUP BY b ORDER BY b`;
  const rawMs: number[] = [];
  let rawRows: { b: string; v: number }[] = [];
  for (let i = 0; i < RAW_RUNS; i++) {
    t = performance.now();
    const r = await client.query<{ b: string; v: number }>(rawSql, [pgTime(from), pgTime(to), pgTime(last)]);
    rawMs.push(performance.now() - t);
    rawRows = r.rows;
  }
  console.log(`raw SQL, same buckets (${RAW_RUNS} runs): ${rawMs.map(ms).join(', ')}`);

  // the same over the serving level's table in SQL alone (what the query costs without HTTP, planning and JSON)
  let levelSqlMs: number | null = null;
  if (level !== 'raw') {
    const { rows: lt } = await client.query<{ table_name: string }>(
      `SELECT l.table_name FROM strata.rollup_levels l JOIN strata.streams s ON s.id = l.stream_id WHERE s.name = $1 AND l.level = $2`, [HIST, level]);
    const { rows: cols } = await client.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = 'strata_data' AND table_name = $1 AND (column_name LIKE '%\\_sum' OR column_name LIKE '%\\_n')`, [lt[0].table_name]);
    const sum = cols.find((c) => c.column_name.endsWith('_sum'))?.column_name;
    const n = cols.find((c) => c.column_name.endsWith('_n'))?.column_name;
    const levelSql = `SELECT LEAST(GREATEST(date_bin('${w} microseconds'::interval, l."time", $1::timestamptz), $1::timestamptz), $3::timestamptz) AS b, sum(l."${sum}") / sum(l."${n}") AS v
        FROM strata_data."${lt[0].table_name}" l WHERE l."time" >= $1::timestamptz AND l."time" < $2::timestamptz AND l.all_tags GROUP BY 1 ORDER BY 1`;
    const lm: number[] = [];
    for (let i = 0; i < QUERY_RUNS + 2; i++) {
      t = performance.now();
      await client.query(levelSql, [pgTime(from), pgTime(to), pgTime(last)]);
      lm.push(performance.now() - t);
    }
    levelSqlMs = median(lm.slice(2));
  }

  // the answers must agree
  const got = body.rows.filter((r) => r[1] !== null);
  let worst = 0;
  if (got.length !== rawRows.length) throw new Error(`auto query answered ${got.length} buckets, raw SQL ${rawRows.length}`);
  for (let i = 0; i < got.length; i++) {
    const a = BigInt(Date.parse(got[i][0])) * 1000n;
    if (a !== BigInt(rawRows[i].b)) throw new Error(`bucket ${i}: auto ${got[i][0]}, raw ${pgTime(BigInt(rawRows[i].b))}`);
    worst = Math.max(worst, Math.abs(Number(got[i][1]) - Number(rawRows[i].v)));
  }
  const a = median(autoMs);
  const b = median(rawMs);
  console.log(`auto query median ${ms(a)} (of ${QUERY_RUNS}) vs raw SQL median ${ms(b)} (of ${RAW_RUNS}) → ${fmt(b / a, 0)}× faster; the same ${got.length} buckets, largest difference ${worst.toExponential(1)}`);
  if (levelSqlMs !== null) console.log(`  (the same aggregation over the ${level} level table in SQL alone: median ${ms(levelSqlMs)})`);
  summary.push([`auto query, ${DAYS} days, 1,000 points (served by ${body.served.map((p) => p.source).join(' + ')})`, `${ms(a)} (median of ${QUERY_RUNS})`, '< 50 ms']);
  summary.push(['the same aggregation over the raw rows in SQL', `${ms(b)} (median of ${RAW_RUNS})`, '']);
  summary.push(['auto query vs raw SQL', `${fmt(b / a, 0)}× faster`, '≥ 50×']);
  if (levelSqlMs !== null) summary.push([`  (the auto query's aggregation over the ${level} table, SQL alone)`, ms(levelSqlMs), '']);

  // the same view for one tag, and one series per tag: these read the level's rows per tag set
  for (const [label, extra] of [[`one tag (tag.sample=${tagName(DENSE_TAG)})`, `&tag.sample=${tagName(DENSE_TAG)}`], [`group_by=sample (${TAGS} series)`, '&group_by=sample']]) {
    const { times: m } = await timedQuery(server, `${path}${extra}`);
    console.log(`auto query, ${label}: median ${ms(median(m))} (of ${QUERY_RUNS}) → ${fmt(b / median(m), 0)}× the raw SQL over all tags`);
    summary.push([`  the same auto query, ${label}`, `${ms(median(m))} (median of ${QUERY_RUNS})`, '']);
  }
  return rows;
}

async function lateIngest(server: BenchServer, client: pg.Client, totalRows: number): Promise<void> {
  console.log(`\n## 2. Late uploads of one hour of one tag into hours already refreshed (stream of ${fmt(totalRows)} rows)`);
  const { rows: wm } = await client.query<{ level: string; watermark: Date | null }>(
    `SELECT l.level, l.watermark FROM strata.rollup_levels l JOIN strata.streams s ON s.id = l.stream_id WHERE s.name = $1 ORDER BY l.interval_us`, [HIST]);
  console.log(`watermarks: ${wm.map((r) => `${r.level} ${r.watermark?.toISOString() ?? 'none'}`).join(', ')}`);
  const day = pgTime(T0 + BigInt(GAP_DAY) * DAY_US).slice(0, 10);
  const cases = [
    { label: `the hour a logger missed: ${tagName(GAP_TAG)}, ${day} ${GAP_HOUR}:00–${GAP_HOUR + 1}:00 (no rows of that tag there before)`, body: hourBody(GAP_HOUR, GAP_TAG, 0), short: 'gap filled' },
    { label: `a second reading per second: ${tagName(DENSE_TAG)}, ${day} ${DENSE_HOUR}:00–${DENSE_HOUR + 1}:00 (3,600 rows of that tag there already)`, body: hourBody(DENSE_HOUR, DENSE_TAG, 500_000), short: 'hour doubled' },
  ];
  for (const c of cases) {
    const up = await ingest(server, HIST, c.body);
    const { rows: inv } = await client.query<{ level: string; n: number }>(
      `SELECT i.level, count(*)::int AS n FROM strata.rollup_invalidations i JOIN strata.streams s ON s.id = i.stream_id WHERE s.name = $1 GROUP BY 1 ORDER BY 1`, [HIST]);
    const before = await rawTuples(server, client, HIST);
    const r = await refresh(server, HIST);
    // A backend that flushed its statistics less than a second before flushes again when it has
    // been idle for 10 s (PostgreSQL ≥ 15).
    await new Promise((res) => setTimeout(res, 11_000));
    const after = await rawTuples(server, client, HIST);
    totalRows += up.rows;
    const s = r.run.details.streams?.[HIST];
    console.log(`${c.label}:`);
    console.log(`  upload of ${fmt(up.rows)} rows: ${ms(up.seconds * 1000)}, invalidations recorded: ${inv.map((x) => `${x.level} ${x.n}`).join(', ') || 'none'}; refresh: ${ms(r.ms)}`);
    for (const x of s?.recomputed ?? []) {
      console.log(`  ${x.level.padEnd(3)} ${x.kind} ${JSON.stringify(x.tags)} ${x.from} … ${x.to} from ${x.source}: read ${fmt(x.rowsRead)}, wrote ${fmt(x.rowsWritten)}`);
    }
    const read = Object.values(s?.levels ?? {}).reduce((n, l) => n + l.rows_read, 0);
    console.log(`  rows read, all levels: ${fmt(read)} = ${(100 * read / totalRows).toPrecision(2)} % of the stream's ${fmt(totalRows)} rows`);
    console.log(`  raw rows the refresh's scans went through (PostgreSQL statistics of the raw chunks): ${fmt(after.seq - before.seq)} by sequential scans, ${fmt(after.idx - before.idx)} fetched through the time index`);
    const per = Object.entries(s?.levels ?? {}).sort(([a], [b]) => (levelUs(a) < levelUs(b) ? -1 : 1)).map(([l, v]) => `${l} ${fmt(v.rows_read)}`).join(', ');
    summary.push([`late hour (${c.short}): rows read by the refresh per level`, `${per} (of ${fmt(totalRows)} in the stream); refresh ${ms(r.ms)}`, c.short === 'gap filled' ? '1m ≈ 3,600, 1h ≈ 60, 1d ≈ 24' : '1m ≈ 7,200, 1h ≈ 60, 1d ≈ 24']);
  }
}

/** What-if: the same auto query with a 15m level between 1m and 1h (auto then serves from it). */
async function extraLevel(server: BenchServer): Promise<void> {
  console.log(`\n## 1b. What if the stream had a 15m level: PATCH {"rollups": ["1m", "15m", "1h", "1d"]}, refresh, the same auto query`);
  const p = await api(server, 'PATCH', `/v1/streams/${HIST}`, { rollups: ['1m', '15m', '1h', '1d'] });
  if (p.status !== 200) throw new Error(`PATCH failed: ${p.status} ${JSON.stringify(p.json)}`);
  const r = await refresh(server, HIST);
  const levels = Object.entries(r.run.details.streams?.[HIST]?.levels ?? {}).map(([l, v]) => `${l} read ${fmt(v.rows_read)} wrote ${fmt(v.rows_written)}`).join(', ');
  console.log(`refresh building 15m from 1m and rebuilding 1h and 1d from it: ${ms(r.ms)} (${levels})`);
  const qs = `resolution=auto&max_points=1000&from=${pgTime(T0)}&to=${pgTime(T0 + BigInt(DAYS) * DAY_US)}&fields=value&agg=avg`;
  const path = `/v1/streams/${HIST}/query?${qs}`;
  const { times, body } = await timedQuery(server, path);
  const served = body.served.map((x) => x.source).join(' + ');
  console.log(`auto query: ${body.row_count} points from ${served}, median ${ms(median(times))} (${times.map(ms).join(', ')})`);
  summary.push([`  what-if: the same auto query with a 15m level added (served by ${served})`, `${ms(median(times))} (median of ${QUERY_RUNS})`, '< 50 ms']);
}

// ---------------------------------------------------------------------------------------------
// 3. ingest beside the refresh loop

const LIVE_PER_TAG = 5000;
const LIVE_ROWS = LIVE_PER_TAG * TAGS;
const liveTag = new Uint8Array(LIVE_ROWS).map((_, i) => i % TAGS);
const liveValue = Float64Array.from({ length: LIVE_ROWS }, (_, i) => reading(Math.floor(i / TAGS), i % TAGS));
const lastStamp = new Map<string, number>();

/** 50k rows stamped over the time since the stream's previous upload (at most 1 s): data at now. */
function liveBody(stream: string): Buffer {
  const now = Date.now() * 1000;
  const prev = lastStamp.get(stream);
  const start = prev !== undefined && prev > now - 1_000_000 ? prev : now - 1_000_000;
  lastStamp.set(stream, now);
  const time = new BigInt64Array(LIVE_ROWS);
  const step = (now - start) / LIVE_PER_TAG;
  for (let j = 0; j < LIVE_PER_TAG; j++) {
    const t = BigInt(Math.floor(start + j * step));
    for (let k = 0; k < TAGS; k++) time[j * TAGS + k] = t;
  }
  return arrowBody(time, liveTag, liveValue);
}

interface Stop { done: boolean; error?: unknown }

/** Uploads into `stream` one after another for `seconds` (or until stopped); rows/s, each upload's latency. */
async function ingestFor(server: BenchServer, stream: string, seconds: number, latencies: number[], stop?: Stop): Promise<{ rate: number; rows: number }> {
  const started = performance.now();
  const end = started + seconds * 1000;
  let rows = 0;
  while (performance.now() < end && !stop?.error) {
    const r = await ingest(server, stream, liveBody(stream));
    latencies.push(r.seconds * 1000);
    rows += r.rows;
  }
  return { rate: rows / ((performance.now() - started) / 1000), rows };
}

interface LoopStats { runs: number; busyMs: number; longestMs: number; read: number; written: number; overrunMs: number }

/** The rollups job on `stream`, started every second (right after the previous run when that took longer). */
async function refreshLoop(server: BenchServer, stream: string, stop: Stop): Promise<LoopStats> {
  const st: LoopStats = { runs: 0, busyMs: 0, longestMs: 0, read: 0, written: 0, overrunMs: 0 };
  while (!stop.done) {
    const t = performance.now();
    const { run, ms: took } = await refresh(server, stream);
    st.runs++;
    st.busyMs += took;
    st.longestMs = Math.max(st.longestMs, took);
    for (const l of Object.values(run.details.streams?.[stream]?.levels ?? {})) { st.read += l.rows_read; st.written += l.rows_written; }
    const wait = 1000 - (performance.now() - t);
    if (wait > 0 && !stop.done) await new Promise((r) => setTimeout(r, wait));
  }
  return st;
}

/** Samples (every 100 ms) whether an upload is waiting for a lock held by the refresh. */
async function sampleLockWaits(client: pg.Client, stop: Stop): Promise<{ samples: number; waiting: number; longestS: number }> {
  let samples = 0;
  let waiting = 0;
  let longestS = 0;
  while (!stop.done) {
    const { rows } = await client.query<{ n: number; s: number | null }>(
      `SELECT count(*)::int AS n, max(extract(epoch FROM now() - state_change))::float8 AS s FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%rollup_levels%FOR SHARE%'`);
    samples++;
    if (rows[0].n > 0) { waiting++; longestS = Math.max(longestS, rows[0].s ?? 0); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { samples, waiting, longestS };
}

/** One round of uploads into `stream` with the refresh loop on `refreshed` (and the lock sampler) running beside it. */
async function busyRound(server: BenchServer, client: pg.Client, refreshed: string, seconds: number, latencies: number[], stream = refreshed) {
  const stop: Stop = { done: false };
  const loop = refreshLoop(server, refreshed, stop).catch((err: unknown) => { stop.error = err; return null; });
  const locks = sampleLockWaits(client, stop).catch(() => ({ samples: 0, waiting: 0, longestS: 0 }));
  let r: { rate: number; rows: number };
  try {
    r = await ingestFor(server, stream, seconds, latencies, stop);
  } finally {
    stop.done = true;
  }
  const windowEnd = performance.now();
  const st = await loop;
  if (stop.error || !st) throw stop.error;
  st.overrunMs = performance.now() - windowEnd;
  return { ...r, st, locks: await locks };
}

async function truncateStream(server: BenchServer, client: pg.Client, stream: string): Promise<void> {
  await client.query(`TRUNCATE ${(await streamInfo(server, stream)).table}`);
}

/** Rows read from a stream's raw chunks so far, by sequential scans and through indexes (statistics flush about once a second). */
async function rawTuples(server: BenchServer, client: pg.Client, stream: string): Promise<{ seq: number; idx: number }> {
  await client.query('SELECT pg_stat_force_next_flush()').catch(() => undefined); // this connection's own scans (PostgreSQL ≥ 15)
  const table = (await streamInfo(server, stream)).table.split('.')[1].replace(/"/g, '');
  const { rows } = await client.query<{ seq: string; idx: string }>(
    `SELECT coalesce(sum(seq_tup_read), 0)::text AS seq, coalesce(sum(idx_tup_fetch), 0)::text AS idx FROM pg_stat_user_tables
      WHERE schemaname = 'strata_data' AND relname ~ $1`, [`^${table}_p[0-9]`]); // chunks, not the pending table
  return { seq: Number(rows[0].seq), idx: Number(rows[0].idx) };
}

/** Sequential scans of a stream's raw chunks so far (PostgreSQL's statistics, flushed about once a second). */
async function rawScans(server: BenchServer, client: pg.Client, stream: string): Promise<{ scans: number; tuples: number }> {
  await client.query('SELECT pg_stat_force_next_flush()').catch(() => undefined);
  const table = (await streamInfo(server, stream)).table.split('.')[1].replace(/"/g, '');
  const { rows } = await client.query<{ scans: string; tuples: string }>(
    `SELECT coalesce(sum(seq_scan), 0)::text AS scans, coalesce(sum(seq_tup_read), 0)::text AS tuples FROM pg_stat_user_tables
      WHERE schemaname = 'strata_data' AND relname ~ $1`, [`^${table}_p[0-9]`]); // chunks, not the pending table
  return { scans: Number(rows[0].scans), tuples: Number(rows[0].tuples) };
}

async function ingestBesideRefresh(server: BenchServer, client: pg.Client): Promise<void> {
  console.log(`\n## 3. Ingest (uploads of ${fmt(LIVE_ROWS)} rows one after another, timestamps at now) with the rollups job running every second vs. without`);
  console.log(`Rounds of ${WINDOW_S} s; ${ROUNDS} cycles of three rounds:`);
  console.log('  without: uploads into live-a (emptied first), no refreshes;');
  console.log('  refresh of the same stream: uploads go on into live-a while the job refreshes live-a, whose rows of the round before come due');
  console.log('    second by second (STRATA_ROLLUP_LAG, 1 minute by default) — the steady state of a refresh following a live stream;');
  console.log('  refresh of another stream: uploads into live-c (emptied first) while the job refreshes live-a, whose rows of the round before come due —');
  console.log('  the same work, without the uploads and the refresh meeting on a stream (CPU and I/O only).');
  const idle: number[] = [];
  const same: number[] = [];
  const other: number[] = [];
  const lat = { idle: [] as number[], same: [] as number[], other: [] as number[] };
  // warm-up: both streams exist
  await ingestFor(server, 'live-a', Math.min(10, WINDOW_S), []);
  await ingestFor(server, 'live-c', 1, []);
  const describe = (b: Awaited<ReturnType<typeof busyRound>>): string =>
    `${b.st.runs} runs busy ${ms(b.st.busyMs)} (longest ${ms(b.st.longestMs)}, the last ended ${ms(b.st.overrunMs)} after the round), read ${fmt(b.st.read)} rows; ` +
    `uploads waited for the refresh's lock in ${b.locks.waiting}/${b.locks.samples} samples (longest wait seen ${fmt(b.locks.longestS, 1)} s)`;
  const scansBefore = await rawScans(server, client, 'live-a');
  let readB = 0;
  for (let r = 0; r < ROUNDS; r++) {
    await truncateStream(server, client, 'live-a');
    idle.push((await ingestFor(server, 'live-a', WINDOW_S, lat.idle)).rate);
    const b = await busyRound(server, client, 'live-a', WINDOW_S, lat.same);
    same.push(b.rate);
    readB += b.st.read;
    await truncateStream(server, client, 'live-c');
    const c = await busyRound(server, client, 'live-a', WINDOW_S, lat.other, 'live-c');
    other.push(c.rate);
    console.log(`  cycle ${r + 1}: without ${fmt(idle[r])} rows/s; refresh of the same stream ${fmt(same[r])} rows/s (${(100 * (1 - same[r] / idle[r])).toFixed(1)} % lower); ` +
      `refresh of another stream ${fmt(other[r])} rows/s (${(100 * (1 - other[r] / idle[r])).toFixed(1)} % lower)`);
    console.log(`    same stream:    ${describe(b)}`);
    console.log(`    another stream: ${describe(c)}`);
  }
  await new Promise((r) => setTimeout(r, 1500));
  const scansAfter = await rawScans(server, client, 'live-a');
  const pct = (xs: number[], p: number): string => ms([...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(xs.length * p))]);
  const lats = (xs: number[]): string => `${pct(xs, 0.5)}, ${pct(xs, 0.95)}, ${pct(xs, 1)}`;
  const dipSame = 1 - median(same) / median(idle);
  const dipOther = 1 - median(other) / median(idle);
  console.log(`ingest with the refresh loop on the same stream: ${fmt(median(same))} rows/s vs ${fmt(median(idle))} rows/s without → ${(dipSame * 100).toFixed(1)} % lower (target < 10 %)`);
  console.log(`ingest with the refresh loop on another stream:  ${fmt(median(other))} rows/s → ${(dipOther * 100).toFixed(1)} % lower`);
  console.log(`  upload latency (${fmt(LIVE_ROWS)} rows; median, p95, max) without: ${lats(lat.idle)}; refresh of the same stream: ${lats(lat.same)}; of another: ${lats(lat.other)}`);
  console.log(`  live-a's raw chunks: ${scansAfter.scans - scansBefore.scans} sequential scans read ${fmt(scansAfter.tuples - scansBefore.tuples)} rows during the measured rounds, for ${fmt(readB)} rows the same-stream refreshes rolled up`);
  summary.push([`ingest with the rollups job every second on the same stream (${ROUNDS} × ${WINDOW_S} s rounds, medians)`, `${fmt(median(same))} vs ${fmt(median(idle))} rows/s → ${(dipSame * 100).toFixed(1)} % lower`, '< 10 %']);
  // Paired within each cycle (the rounds of a cycle run back to back, so drift of the machine
  // between cycles cancels out): the median of the cycles' dips.
  const pairedSame = median(same.map((x, r) => 1 - x / idle[r]));
  const pairedOther = median(other.map((x, r) => 1 - x / idle[r]));
  console.log(`  paired per cycle (median of the ${ROUNDS} cycles' dips): same stream ${(pairedSame * 100).toFixed(1)} % lower, another stream ${(pairedOther * 100).toFixed(1)} % lower`);
  summary.push(['  the same, paired per cycle (median of the cycles\' dips)', `${(pairedSame * 100).toFixed(1)} % lower (another stream: ${(pairedOther * 100).toFixed(1)} %)`, '< 10 %']);
  summary.push(['  the same, the job refreshing another stream (same work, no lock between them)', `${fmt(median(other))} rows/s → ${(dipOther * 100).toFixed(1)} % lower`, '']);
  summary.push(['  upload latency (median, p95, max): without / same / another', `${lats(lat.idle)} / ${lats(lat.same)} / ${lats(lat.other)}`, '']);
}

async function main(): Promise<void> {
  const db = await benchDatabase();
  console.log(`PostgreSQL: ${db.adminUrl.replace(/:[^:@/]*@/, ':…@')}  days: ${DAYS}  query runs: ${QUERY_RUNS}  raw runs: ${RAW_RUNS}  rounds: ${ROUNDS} × ${WINDOW_S} s  parts: ${PARTS.join(',')}`);
  const server = await startBenchServer(db.serverUrl, { STRATA_JOBS: 'off', STRATA_JOB_ROLLUPS_TIMEOUT: '4 hours' });
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    let rows = 0;
    if (PARTS.includes('query')) rows = await loadAndQuery(server, client);
    if (PARTS.includes('late') && rows > 0) await lateIngest(server, client, rows);
    if (PARTS.includes('levels') && rows > 0) await extraLevel(server);
    if (PARTS.includes('ingest')) await ingestBesideRefresh(server, client);
    const w = [Math.max(...summary.map((s) => s[0].length)), Math.max(...summary.map((s) => s[1].length))];
    console.log('\n## Summary');
    console.log(`${'what'.padEnd(w[0])} | ${'figure'.padEnd(w[1])} | target`);
    console.log(`${'-'.repeat(w[0])}-|-${'-'.repeat(w[1])}-|-------`);
    for (const [a, b, c] of summary) console.log(`${a.padEnd(w[0])} | ${b.padEnd(w[1])} | ${c}`);
  } finally {
    await client.end();
    await server.stop();
    await db.close();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
