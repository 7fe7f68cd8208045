// Raw export throughput against a Node client reading `COPY (SELECT …) TO STDOUT (FORMAT binary)`
// of the same rows, measured in the same run:
//   1. 2 million lab-logger rows (time, a 20-value sample tag, 10 float64 channels, an int32
//      counter, a boolean flag) as Arrow, CSV, Parquet and JSON over HTTP, each body read to its
//      end, vs. the binary COPY of the same SELECT read to its end over the server's kind of
//      connection;
//   2. the server's peak RSS while it exports 10 million rows as Arrow (a server started after the
//      rows were loaded, so that the ingest's peak does not count);
//   3. `strata push` of a 1 GB Arrow file vs. curl posting the same file (each to a stream of
//      its own, so that neither is a duplicate of the other).
// EXPORT_BENCH=formats,rss,push picks parts (all by default); BENCH_PUSH_MB sets the push file's size.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pl from 'nodejs-polars';
import { to as copyTo } from 'pg-copy-streams';
import { ADMIN_KEY, type BenchServer, benchDatabase, fmt, median, root, settle, startBenchServer, upload } from './lib.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 2_000_000);
const RSS_ROWS = Number(process.env.BENCH_RSS_ROWS ?? 10_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const PUSH_MB = Number(process.env.BENCH_PUSH_MB ?? 1024);
const PARTS = (process.env.EXPORT_BENCH ?? 'formats,rss,push').split(',');
const BATCH = 65_536;
const T0 = 1_709_251_200_000_000n;
const ARROW = 'application/vnd.apache.arrow.stream';

function loggerFrame(start: number, n: number): pl.DataFrame {
  const time = new BigInt64Array(n);
  for (let i = 0; i < n; i++) time[i] = T0 + BigInt(start + i) * 10_000n; // 100 Hz
  const cols: pl.Series[] = [pl.Series('time', time, pl.Int64).cast(pl.Datetime('us', 'UTC'))];
  cols.push(pl.Series('sample', Array.from({ length: n }, (_, i) => `sample-${String((start + i) % 20).padStart(2, '0')}`), pl.Utf8));
  for (let c = 0; c < 10; c++) {
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = Math.sin((start + i) / (50 + c)) * (c + 1) + c;
    cols.push(pl.Series(`ch${c}`, v, pl.Float64));
  }
  cols.push(pl.Series('counter', Int32Array.from({ length: n }, (_, i) => start + i), pl.Int32));
  cols.push(pl.Series('flag', Array.from({ length: n }, (_, i) => (start + i) % 7 === 0), pl.Bool));
  return pl.DataFrame(cols);
}

function loggerStream(start: number, rows: number): Buffer {
  const frames: pl.DataFrame[] = [];
  for (let s = 0; s < rows; s += BATCH) frames.push(loggerFrame(start + s, Math.min(BATCH, rows - s)));
  const f = pl.concat(frames, { how: 'vertical', rechunk: false }).writeIPC({ compression: 'uncompressed' });
  const footerStart = f.length - 10 - f.readInt32LE(f.length - 10);
  return Buffer.from(f.subarray(8, footerStart));
}

/** Loads rows [from, to) into `stream` in 500k-row uploads. */
async function load(server: BenchServer, stream: string, from: number, to: number): Promise<void> {
  for (let s = from; s < to; s += 500_000) {
    const r = await upload(server.url, `/v1/streams/${stream}/ingest`, loggerStream(s, Math.min(500_000, to - s)), ARROW);
    if (r.status !== 201) throw new Error(`load failed: ${JSON.stringify(r.json)}`);
  }
}

/** GETs a URL and reads the body to its end: seconds and bytes. */
function download(url: string): Promise<{ seconds: number; bytes: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    http.get(url, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, agent: false }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`GET ${url}: ${res.statusCode}`));
      let bytes = 0;
      res.on('data', (d: Buffer) => { bytes += d.length; });
      res.on('end', () => resolve({ seconds: (performance.now() - started) / 1000, bytes }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** The baseline: a Node client reading the binary COPY of the same SELECT the export runs. */
async function binaryCopy(dbUrl: string, table: string, columns: string[]): Promise<{ seconds: number; bytes: number }> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    const started = performance.now();
    const stream = client.query(copyTo(`COPY (SELECT ${columns.join(', ')} FROM ${table} ORDER BY "time") TO STDOUT (FORMAT binary)`));
    let bytes = 0;
    for await (const chunk of stream) bytes += (chunk as Buffer).length;
    return { seconds: (performance.now() - started) / 1000, bytes };
  } finally {
    await client.end();
  }
}

async function streamLayout(server: BenchServer, stream: string): Promise<{ table: string; columns: string[] }> {
  const res = await fetch(new URL(`/v1/streams/${stream}`, server.url), { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  const s = await res.json() as { table: string; tags: { column: string }[]; fields: { column: string }[] };
  return { table: s.table, columns: ['"time"', ...[...s.tags, ...s.fields].map((c) => `"${c.column}"`)] };
}

async function formats(dbUrl: string): Promise<void> {
  const server = await startBenchServer(dbUrl);
  try {
    await load(server, 'logger', 0, ROWS);
    const { table, columns } = await streamLayout(server, 'logger');
    await settle(dbUrl, [table]);
    console.log(`\n${fmt(ROWS)} lab-logger rows (14 columns), ${RUNS} runs each, medians; rows/s`);
    const results: Record<string, number[]> = { copy: [], arrow: [], csv: [], parquet: [], json: [] };
    const sizes: Record<string, number> = {};
    for (let run = 0; run < RUNS; run++) {
      // Interleaved, so that drift over the run touches every format alike.
      const b = await binaryCopy(dbUrl, table, columns);
      results.copy.push(b.seconds);
      sizes.copy = b.bytes;
      for (const f of ['arrow', 'csv', 'parquet', 'json']) {
        const r = await download(`${server.url}/v1/streams/logger/query?format=${f}`);
        results[f].push(r.seconds);
        sizes[f] = r.bytes;
      }
    }
    const base = ROWS / median(results.copy);
    console.log(`| what | rows/s | MB | ratio to binary COPY |\n|---|---|---|---|`);
    for (const [name, secs] of Object.entries(results)) {
      const rate = ROWS / median(secs);
      console.log(`| ${name === 'copy' ? 'binary COPY read by a Node client (baseline)' : `export ${name}`} | ${fmt(rate)} | ${fmt(sizes[name] / 1e6, 1)} | ${(rate / base).toFixed(2)} |`);
    }
  } finally {
    await server.stop();
  }
}

async function rss(dbUrl: string): Promise<void> {
  let server = await startBenchServer(dbUrl);
  try {
    await load(server, 'big', 0, RSS_ROWS);
    await server.stop();
    server = await startBenchServer(dbUrl);
    const before = await server.peakRss();
    const r = await download(`${server.url}/v1/streams/big/query?format=arrow`);
    const peak = await server.peakRss();
    console.log(`\nexport of ${fmt(RSS_ROWS)} rows as Arrow: ${fmt(r.bytes / 1e6)} MB in ${r.seconds.toFixed(1)} s (${fmt(RSS_ROWS / r.seconds)} rows/s); server peak RSS ${fmt(peak / 1e6)} MB (${fmt(before / 1e6)} MB before)`);
  } finally {
    await server.stop();
  }
}

async function pushVsCurl(dbUrl: string): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'strata-push-bench-'));
  const server = await startBenchServer(dbUrl);
  try {
    // One file of about PUSH_MB MB, written 500k rows at a time: the schema once, then the
    // record batches of each piece, then the end-of-stream marker.
    const file = path.join(dir, 'big.arrows');
    const fh = await open(file, 'w');
    let size = 0;
    let totalRows = 0;
    const EOS = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    for (let s = 0; size < PUSH_MB * 1e6; s += 500_000) {
      let piece = loggerStream(s, 500_000);
      if (piece.subarray(piece.length - 8).equals(EOS)) piece = piece.subarray(0, piece.length - 8);
      if (s > 0) piece = piece.subarray(8 + piece.readInt32LE(4)); // the schema message only once
      await fh.write(piece);
      size += piece.length;
      totalRows += 500_000;
    }
    await fh.write(EOS);
    size += 8;
    await fh.close();
    console.log(`\npush of one ${fmt(size / 1e6)} MB Arrow file (${fmt(totalRows)} rows), curl vs strata push, ${Math.min(RUNS, 3)} runs each, medians`);
    const curl: number[] = [];
    const push: number[] = [];
    for (let run = 0; run < Math.min(RUNS, 3); run++) {
      let t = performance.now();
      const c = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '-H', `Authorization: Bearer ${ADMIN_KEY}`,
        '-H', `Content-Type: ${ARROW}`, '--data-binary', `@${file}`, `${server.url}/v1/streams/curl${run}/ingest`], { encoding: 'utf8' });
      if (c.stdout !== '201') throw new Error(`curl: ${c.stdout} ${c.stderr}`);
      curl.push((performance.now() - t) / 1000);
      t = performance.now();
      const p = await new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [path.join(root, 'bin/strata.mjs'), 'push', file, '--stream', `push${run}`, '--json'],
          { env: { ...process.env, STRATA_URL: server.url, STRATA_KEY: ADMIN_KEY }, stdio: ['ignore', 'ignore', 'inherit'] });
        child.on('exit', resolve);
      });
      if (p !== 0) throw new Error(`strata push exited ${p}`);
      push.push((performance.now() - t) / 1000);
    }
    const curlRate = size / median(curl);
    const pushRate = size / median(push);
    console.log(`| client | MB/s | s |\n|---|---|---|`);
    console.log(`| curl --data-binary (baseline) | ${fmt(curlRate / 1e6, 1)} | ${median(curl).toFixed(1)} |`);
    console.log(`| strata push (SHA-256 first, then the upload) | ${fmt(pushRate / 1e6, 1)} | ${median(push).toFixed(1)} |`);
    console.log(`ratio strata push / curl: ${(pushRate / curlRate).toFixed(2)}`);
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const bench = await benchDatabase();
try {
  if (PARTS.includes('formats')) await formats(bench.serverUrl);
  if (PARTS.includes('rss')) await rss(bench.serverUrl);
  if (PARTS.includes('push')) await pushVsCurl(bench.serverUrl);
} finally {
  await bench.close();
}
