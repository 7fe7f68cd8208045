// Arrow ingest throughput against a raw binary COPY of the same rows into the same table layout,
// measured in the same run:
//   1. one 2-million-row lab-logger upload (time, a 20-value sample tag, 10 float64 channels, an
//      int32 counter, a boolean flag) over HTTP vs. one COPY connection of the pre-encoded rows;
//   2. four concurrent uploads (500k rows each) vs. two concurrent COPY connections (1M each);
//   3. the server's peak RSS while it ingests a ~1 GB Arrow stream.
// The Arrow bodies are written by nodejs-polars (one record batch per 65,536 rows). Every timed
// upload has a body of its own (its times shifted by a microsecond per run), as instruments'
// uploads do: an identical body would find its original already archived and have its spooled
// copy deleted, work that distinct uploads never cause.
// ARROW_BENCH=single,concurrent,rss picks parts (all by default).
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pl from 'nodejs-polars';
import { ArrowDecoder } from '../../src/ingest/decoders/arrow.ts';
import { encodeRows, estimateRowBytes, sliceRanges } from '../../src/copy/encoder.ts';
import type { StreamColumn } from '../../src/domain/types.ts';
import { ADMIN_KEY, type BenchServer, benchDatabase, fmt, median, postgresCpuSeconds, rawCopy, settle, startBenchServer, upload } from './lib.ts';
import pg from 'pg';

const ROWS = Number(process.env.BENCH_ROWS ?? 2_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const BATCH = 65_536;
const T0 = 1_709_251_200_000_000n; // 2024-03-01T00:00:00Z
const ARROW = 'application/vnd.apache.arrow.stream';
const PARTS = (process.env.ARROW_BENCH ?? 'single,concurrent,rss').split(',');

function loggerFrame(start: number, n: number, offsetUs: bigint): pl.DataFrame {
  const time = new BigInt64Array(n);
  for (let i = 0; i < n; i++) time[i] = T0 + offsetUs + BigInt(start + i) * 10_000n; // 100 Hz
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

/** An Arrow IPC stream of `rows` rows in 65,536-row batches (polars' file writer, unwrapped). */
function loggerStream(rows: number, offsetUs = 0n): Buffer {
  const frames: pl.DataFrame[] = [];
  for (let s = 0; s < rows; s += BATCH) frames.push(loggerFrame(s, Math.min(BATCH, rows - s), offsetUs));
  const df = pl.concat(frames, { how: 'vertical', rechunk: false });
  const f = df.writeIPC({ compression: 'uncompressed' });
  const footerStart = f.length - 10 - f.readInt32LE(f.length - 10);
  return Buffer.from(f.subarray(8, footerStart));
}

interface Layout { table: string; columns: string[]; bound: Map<string, StreamColumn> }

/** Creates a stream with the logger's layout (one tiny upload), empties it, returns how to COPY into it. */
async function emptyStream(server: BenchServer, dbUrl: string, name: string, sample: Buffer): Promise<Layout> {
  const r = await upload(server.url, `/v1/streams/${name}/ingest`, sample, ARROW);
  if (r.status !== 201) throw new Error(`setup upload failed: ${JSON.stringify(r.json)}`);
  const res = await fetch(new URL(`/v1/streams/${name}`, server.url), { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  const s = await res.json() as { table: string; tags: { name: string; column: string; type: string }[]; fields: { name: string; column: string; type: string }[] };
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  const [schema, table] = s.table.split('.');
  await client.query(`DELETE FROM "${schema}"."${table}"`);
  await client.query(`VACUUM "${schema}"."${table}"`).catch(() => undefined);
  await client.end();
  const bound = new Map<string, StreamColumn>();
  for (const c of [...s.tags.map((x) => ({ ...x, role: 'tag' as const })), ...s.fields.map((x) => ({ ...x, role: 'field' as const }))]) {
    bound.set(c.name, { name: c.name, columnName: c.column, role: c.role, type: c.type as StreamColumn['type'], unit: null, description: null });
  }
  const order = ['sample', ...Array.from({ length: 10 }, (_, i) => `ch${i}`), 'counter', 'flag'];
  return { table: `"${schema}"."${table}"`, columns: ['"time"', ...order.map((n) => `"${bound.get(n)?.columnName}"`), 'ingest_id'], bound };
}

/** The same rows, decoded and encoded as binary COPY before the clock starts. */
async function preEncode(body: Buffer, bound: Map<string, StreamColumn>): Promise<Buffer[]> {
  const d = await ArrowDecoder.openStream((async function* () { yield body; })(), { maxBatchBytes: 1 << 30 });
  const out: Buffer[] = [];
  const { copyHeader, copyTrailer } = await import('../../src/copy/binary-format.ts');
  out.push(copyHeader());
  const order = ['sample', ...Array.from({ length: 10 }, (_, i) => `ch${i}`), 'counter', 'flag'];
  const ordered = new Map(order.map((n) => [n, bound.get(n) as StreamColumn]));
  for await (const b of d.batches('time', ordered)) {
    b.columns.sort((x, y) => order.indexOf(x.column.name) - order.indexOf(y.column.name));
    for (const [s, e] of sliceRanges(b.length, estimateRowBytes(b), 1 << 20)) out.push(encodeRows(b, 1n, s, e));
  }
  out.push(copyTrailer());
  return out;
}

async function main(): Promise<void> {
  const db = await benchDatabase();
  console.log(`PostgreSQL: ${db.adminUrl.replace(/:[^:@/]*@/, ':…@')}  rows: ${fmt(ROWS)}  runs: ${RUNS}`);
  const body = loggerStream(ROWS);
  const sample = loggerStream(10);
  /** Run r's body: the same rows, 1 + r µs later. */
  const runBody = (r: number): Buffer => loggerStream(ROWS, BigInt(r + 1));
  console.log(`Arrow body: ${fmt(body.length / 1e6, 1)} MB in ${Math.ceil(ROWS / BATCH)} record batches`);
  let server = await startBenchServer(db.serverUrl);
  try {
    // warm-up (JIT, caches)
    await upload(server.url, '/v1/streams/warmup/ingest', loggerStream(200_000), ARROW);

    const e2e: number[] = [];
    const raw: number[] = [];
    // Each timed measurement starts from a settled database (see settle()).
    let written: string[] = [];
    const quiet = async (): Promise<void> => { await settle(db.url, written); written = []; };
    for (let r = 0; r < (PARTS.includes('single') ? RUNS : 0); r++) {
      const target = await emptyStream(server, db.url, `e2e-${r}`, sample);
      const own = runBody(r);
      await quiet();
      const cpu0 = await server.cpuSeconds();
      const pg0 = await postgresCpuSeconds();
      const res = await upload(server.url, `/v1/streams/e2e-${r}/ingest`, own, ARROW);
      const cpu = (await server.cpuSeconds()) - cpu0;
      const pgCpu = (await postgresCpuSeconds()) - pg0;
      if (res.status !== 201) throw new Error(JSON.stringify(res.json));
      e2e.push(ROWS / res.seconds);
      written.push(target.table);
      const base = await emptyStream(server, db.url, `raw-${r}`, sample);
      const buffers = await preEncode(own, base.bound);
      await quiet();
      const rawPg0 = await postgresCpuSeconds();
      raw.push(ROWS / (await rawCopy(db.url, base.table, base.columns, buffers)));
      const rawPgCpu = (await postgresCpuSeconds()) - rawPg0;
      written.push(base.table);
      console.log(`  run ${r + 1}: ingest ${fmt(e2e[r])} rows/s   raw COPY ${fmt(raw[r])} rows/s   ratio ${(e2e[r] / raw[r]).toFixed(2)}   `
        + `CPU µs/row: server ${fmt(cpu * 1e6 / ROWS, 2)}, PostgreSQL ${fmt(pgCpu * 1e6 / ROWS, 2)} (raw COPY ${fmt(rawPgCpu * 1e6 / ROWS, 2)})`);
    }
    const m = median(e2e), b = median(raw);
    if (e2e.length > 0) console.log(`single upload: ingest ${fmt(m)} rows/s, raw COPY ${fmt(b)} rows/s, ratio ${(m / b).toFixed(2)} (median of ${RUNS})`);

    // 4 concurrent uploads vs. 2 concurrent COPY connections
    const quarter = Math.floor(ROWS / 4);
    const conc: number[] = [];
    const conc2: number[] = [];
    for (let r = 0; r < (PARTS.includes('concurrent') ? Math.max(3, Math.ceil(RUNS / 2)) : 0); r++) {
      const parts = [0, 1, 2, 3].map((q) => loggerStream(quarter, BigInt(q) * BigInt(quarter) * 10_000n + BigInt(r + 1)));
      const target = await emptyStream(server, db.url, `c4-${r}`, sample);
      await quiet();
      const cpu0 = await server.cpuSeconds();
      const pg0 = await postgresCpuSeconds();
      const self0 = process.cpuUsage();
      const started = performance.now();
      const results = await Promise.all(parts.map((p) => upload(server.url, `/v1/streams/c4-${r}/ingest`, p, ARROW)));
      if (results.some((x) => x.status !== 201)) throw new Error('concurrent upload failed');
      const wall = (performance.now() - started) / 1000;
      conc.push((quarter * 4) / wall);
      const cpu = (await server.cpuSeconds()) - cpu0;
      const pgCpu = (await postgresCpuSeconds()) - pg0;
      const self = process.cpuUsage(self0);
      const busy = (cpu + pgCpu + (self.user + self.system) / 1e6) / (wall * os.cpus().length);
      written.push(target.table);
      const base = await emptyStream(server, db.url, `c2-${r}`, sample);
      const enc = await Promise.all([0, 1].map(async (h) => {
        const a = await preEncode(parts[2 * h], base.bound);
        const bb = await preEncode(parts[2 * h + 1], base.bound);
        return [...a.slice(0, -1), ...bb.slice(1)];
      }));
      await quiet();
      const rawPg0 = await postgresCpuSeconds();
      const rawSelf0 = process.cpuUsage();
      const s2 = performance.now();
      await Promise.all(enc.map((bufs) => rawCopy(db.url, base.table, base.columns, bufs)));
      const rawWall = (performance.now() - s2) / 1000;
      conc2.push((quarter * 4) / rawWall);
      const rawPgCpu = (await postgresCpuSeconds()) - rawPg0;
      const rawSelf = process.cpuUsage(rawSelf0);
      const rawBusy = (rawPgCpu + (rawSelf.user + rawSelf.system) / 1e6) / (rawWall * os.cpus().length);
      written.push(base.table);
      const rows = quarter * 4;
      console.log(`  run ${r + 1}: 4 uploads ${fmt(conc[r])} rows/s   2 COPY connections ${fmt(conc2[r])} rows/s   ratio ${(conc[r] / conc2[r]).toFixed(2)}   `
        + `CPU µs/row: server ${fmt(cpu * 1e6 / rows, 2)}, PostgreSQL ${fmt(pgCpu * 1e6 / rows, 2)} (raw COPY ${fmt(rawPgCpu * 1e6 / rows, 2)}); `
        + `cores busy ${fmt(busy * 100)} % (raw COPY ${fmt(rawBusy * 100)} %)`);
    }
    if (conc.length > 0) console.log(`4 concurrent uploads: ${fmt(median(conc))} rows/s, 2 raw COPY connections ${fmt(median(conc2))} rows/s, ratio ${(median(conc) / median(conc2)).toFixed(2)}`);

    // peak RSS while ingesting a ~1 GB stream, on a fresh server process
    if (!PARTS.includes('rss')) return;
    await server.stop();
    server = await startBenchServer(db.serverUrl);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'strata-bench-1g-'));
    const file = path.join(dir, 'big.arrows');
    const fh = await open(file, 'w');
    const schemaLen = 8 + body.readInt32LE(4);
    await fh.write(body.subarray(0, schemaLen));
    const batches = body.subarray(schemaLen, body.length - 8);
    const copies = Math.max(1, Math.round(1.05e9 / batches.length));
    for (let i = 0; i < copies; i++) await fh.write(batches);
    await fh.write(body.subarray(body.length - 8));
    await fh.close();
    const size = (await stat(file)).size;
    const before = await server.peakRss();
    const big = await upload(server.url, '/v1/streams/big/ingest', { file, size }, ARROW);
    if (big.status !== 201) throw new Error(JSON.stringify(big.json));
    const peak = await server.peakRss();
    console.log(`1 GB stream: ${fmt(size / 1e9, 2)} GB, ${fmt(ROWS * copies)} rows in ${fmt(big.seconds, 1)} s (${fmt((ROWS * copies) / big.seconds)} rows/s); server peak RSS ${fmt(peak / 1e6)} MB (${fmt(before / 1e6)} MB before the upload)`);
    await rm(dir, { recursive: true, force: true });
  } finally {
    await server.stop();
    await db.close();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
