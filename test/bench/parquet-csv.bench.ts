// Parquet and CSV ingest against the Arrow-stream ingest of the same rows, measured in the same run:
//   1. 2 million lab-logger rows (time, a 20-value sample tag, 10 float64 channels, an int32
//      counter, a boolean flag) uploaded as an Arrow stream, as Parquet (polars, zstd, its default)
//      and as CSV (polars), each into a new stream (so the CSV's column types are inferred);
//   2. the server's peak RSS while it ingests a ~2 GB Parquet file and a ~2 GB CSV, each on a
//      fresh server process.
// Each run's bodies are its own (times shifted by a microsecond per run).
// TABULAR_BENCH=single,rss picks parts, TABULAR_BIG=parquet,csv the big files; BENCH_BIG_GB sets their size (2 by default).
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pl from 'nodejs-polars';
import { benchDatabase, fmt, median, settle, startBenchServer, upload } from './lib.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 2_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BIG_GB = Number(process.env.BENCH_BIG_GB ?? 2);
const T0 = 1_709_251_200_000_000n; // 2024-03-01T00:00:00Z
const PARTS = (process.env.TABULAR_BENCH ?? 'single,rss').split(',');
/** Which big files the rss part uploads. */
const BIG = (process.env.TABULAR_BIG ?? 'parquet,csv').split(',');
const ARROW = 'application/vnd.apache.arrow.stream';
const PARQUET = 'application/vnd.apache.parquet';
const CSV = 'text/csv';

function loggerFrame(n: number, offsetUs: bigint): pl.DataFrame {
  const time = new BigInt64Array(n);
  for (let i = 0; i < n; i++) time[i] = T0 + offsetUs + BigInt(i) * 10_000n; // 100 Hz
  const cols: pl.Series[] = [pl.Series('time', time, pl.Int64).cast(pl.Datetime('us', 'UTC'))];
  cols.push(pl.Series('sample', Array.from({ length: n }, (_, i) => `sample-${String(i % 20).padStart(2, '0')}`), pl.Utf8));
  for (let c = 0; c < 10; c++) {
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = Math.sin(i / (50 + c)) * (c + 1) + c;
    cols.push(pl.Series(`ch${c}`, v, pl.Float64));
  }
  cols.push(pl.Series('counter', Int32Array.from({ length: n }, (_, i) => i), pl.Int32));
  cols.push(pl.Series('flag', Array.from({ length: n }, (_, i) => i % 7 === 0), pl.Bool));
  return pl.DataFrame(cols);
}

function arrowStreamOf(df: pl.DataFrame): Buffer {
  const f = df.writeIPC({ compression: 'uncompressed' });
  const footerStart = f.length - 10 - f.readInt32LE(f.length - 10);
  return Buffer.from(f.subarray(8, footerStart));
}

/** Parquet as pandas and polars write it by default (zstd). */
function parquetOf(df: pl.DataFrame): Buffer {
  return Buffer.from(df.writeParquet(undefined as never, { compression: 'zstd' }) as unknown as Uint8Array);
}

async function main(): Promise<void> {
  const db = await benchDatabase();
  console.log(`rows: ${fmt(ROWS)}  runs: ${RUNS}`);
  let server = await startBenchServer(db.serverUrl);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'strata-bench-tabular-'));
  try {
    const warm = loggerFrame(100_000, 0n);
    await upload(server.url, '/v1/streams/warm-a/ingest', arrowStreamOf(warm), ARROW);
    await upload(server.url, '/v1/streams/warm-p/ingest', parquetOf(warm), PARQUET);
    await upload(server.url, '/v1/streams/warm-c/ingest', Buffer.from(warm.writeCSV() as unknown as Buffer), CSV);
    const rates: Record<string, number[]> = { arrow: [], parquet: [], csv: [] };
    const ratios: Record<string, number[]> = { parquet: [], csv: [] };
    for (let r = 0; r < (PARTS.includes('single') ? RUNS : 0); r++) {
      const df = loggerFrame(ROWS, BigInt(r + 1));
      const bodies = {
        arrow: { body: arrowStreamOf(df), type: ARROW },
        parquet: { body: parquetOf(df), type: PARQUET },
        csv: { body: Buffer.from(df.writeCSV() as unknown as Buffer), type: CSV },
      };
      const line: string[] = [];
      for (const [name, { body, type }] of Object.entries(bodies)) {
        await settle(db.url, []);
        const res = await upload(server.url, `/v1/streams/${name}-${r}/ingest`, body, type);
        if (res.status !== 201) throw new Error(`${name}: ${JSON.stringify(res.json)}`);
        rates[name].push(ROWS / res.seconds);
        line.push(`${name} ${fmt(ROWS / res.seconds)} rows/s (${fmt(body.length / 1e6)} MB)`);
      }
      const a = rates.arrow[r];
      ratios.parquet.push(rates.parquet[r] / a);
      ratios.csv.push(rates.csv[r] / a);
      console.log(`  run ${r + 1}: ${line.join('   ')}   Parquet/Arrow ${ratios.parquet[r].toFixed(2)}   CSV/Arrow ${ratios.csv[r].toFixed(2)}`);
    }
    if (rates.arrow.length > 0) {
      console.log(`medians of ${RUNS}: Arrow ${fmt(median(rates.arrow))}, Parquet ${fmt(median(rates.parquet))}, CSV ${fmt(median(rates.csv))} rows/s; `
        + `same-run ratios: Parquet ${median(ratios.parquet).toFixed(2)}×, CSV ${median(ratios.csv).toFixed(2)}×`);
    }
    if (!PARTS.includes('rss')) return;

    // The big files: the CSV is the 2M-row CSV's data lines repeated; the Parquet is the same
    // frame repeated, written by polars' streaming sink (row groups as polars makes them).
    const base = loggerFrame(ROWS, 0n);
    const csvFile = path.join(dir, 'big.csv');
    const csvBody = Buffer.from(base.writeCSV() as unknown as Buffer);
    const headerEnd = csvBody.indexOf(0x0a) + 1;
    const lines = csvBody.subarray(headerEnd);
    const csvCopies = Math.max(1, Math.round((BIG_GB * 1e9) / lines.length));
    const fh = await open(csvFile, 'w');
    await fh.write(csvBody.subarray(0, headerEnd));
    for (let i = 0; i < csvCopies; i++) await fh.write(lines);
    await fh.close();
    const pqFile = path.join(dir, 'big.parquet');
    const one = parquetOf(base);
    const pqCopies = Math.max(1, Math.round((BIG_GB * 1e9) / one.length));
    const lazy = pl.concat(Array.from({ length: pqCopies }, () => base.lazy()), { how: 'vertical' }) as unknown as pl.LazyDataFrame;
    lazy.sinkParquet(pqFile, { compression: 'zstd' }).collectSync();
    for (const [name, file, type, rows] of [['Parquet', pqFile, PARQUET, ROWS * pqCopies], ['CSV', csvFile, CSV, ROWS * csvCopies]] as const) {
      if (!BIG.includes(name.toLowerCase())) continue;
      await server.stop();
      server = await startBenchServer(db.serverUrl);
      const size = (await stat(file)).size;
      const before = await server.peakRss();
      const res = await upload(server.url, `/v1/streams/big-${name.toLowerCase()}/ingest`, { file, size }, type);
      if (res.status !== 201) throw new Error(`${name}: ${JSON.stringify(res.json)}`);
      const peak = await server.peakRss();
      console.log(`${fmt(size / 1e9, 2)} GB ${name}: ${fmt(rows)} rows in ${fmt(res.seconds, 1)} s (${fmt(rows / res.seconds)} rows/s); server peak RSS ${fmt(peak / 1e6)} MB (${fmt(before / 1e6)} MB before the upload)`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    await server.stop();
    await db.close();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
