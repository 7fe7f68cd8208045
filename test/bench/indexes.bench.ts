// Which secondary index each chunk gets, decided by measurement: for every candidate, a raw
// binary COPY of the 2-million-row lab-logger rows into a one-chunk partitioned table carrying
// that index, then the look-ups Strata does inside a chunk — a one-hour raw read, a one-hour read
// of one tag, a rollup-style aggregation of one tag's hour, and a provenance look-up of one
// reading (time + tag).
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { encodeRows, estimateRowBytes, sliceRanges } from '../../src/copy/encoder.ts';
import { copyHeader, copyTrailer } from '../../src/copy/binary-format.ts';
import type { ColumnBatch, ColumnData, StreamColumn } from '../../src/domain/types.ts';
import { benchDatabase, fmt, median } from './lib.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 2_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const T0 = 1_709_251_200_000_000n;

const candidates: Record<string, string[]> = {
  none: [],
  'brin(time)': ['CREATE INDEX ON bench USING brin ("time") WITH (pages_per_range = 32)'],
  'btree(time)': ['CREATE INDEX ON bench ("time")'],
  'btree(sample, time)': ['CREATE INDEX ON bench (sample, "time")'],
};

function column(name: string, type: StreamColumn['type'], role: 'tag' | 'field', values: ColumnData['values']): ColumnData {
  return { column: { name, columnName: name, role, type, unit: null, description: null }, values, validity: null };
}

/** The lab-logger rows, already encoded as binary COPY (built in memory, outside the timing). */
function encoded(): Buffer[] {
  const out: Buffer[] = [copyHeader()];
  const step = 200_000;
  const samples = Array.from({ length: 20 }, (_, i) => new TextEncoder().encode(`sample-${String(i).padStart(2, '0')}`));
  for (let s = 0; s < ROWS; s += step) {
    const n = Math.min(step, ROWS - s);
    const time = BigInt64Array.from({ length: n }, (_, i) => T0 + BigInt(s + i) * 10_000n);
    const cols: ColumnData[] = [column('sample', 'text', 'tag', { kind: 'dictionary', entries: samples, indices: Int32Array.from({ length: n }, (_, i) => (s + i) % 20) })];
    for (let c = 0; c < 10; c++) cols.push(column(`ch${c}`, 'float8', 'field', { kind: 'number', values: Float64Array.from({ length: n }, (_, i) => Math.sin((s + i) / (50 + c))) }));
    cols.push(column('counter', 'int4', 'field', { kind: 'number', values: Int32Array.from({ length: n }, (_, i) => s + i) }));
    cols.push(column('flag', 'bool', 'field', { kind: 'number', values: Uint8Array.from({ length: n }, (_, i) => ((s + i) % 7 === 0 ? 1 : 0)) }));
    const b: ColumnBatch = { length: n, time, minTime: time[0], maxTime: time[n - 1], columns: cols };
    for (const [a, e] of sliceRanges(n, estimateRowBytes(b), 1 << 20)) out.push(encodeRows(b, 1n, a, e));
  }
  out.push(copyTrailer());
  return out;
}

async function copyInto(client: pg.Client, buffers: Buffer[]): Promise<number> {
  const cols = ['"time"', 'sample', ...Array.from({ length: 10 }, (_, i) => `ch${i}`), 'counter', 'flag', 'ingest_id'];
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const stream = client.query(copyFrom(`COPY bench (${cols.join(', ')}) FROM STDIN (FORMAT binary)`, { highWaterMark: 8 << 20 }));
    stream.on('error', reject);
    stream.on('finish', () => resolve());
    let i = 0;
    const pump = (): void => {
      while (i < buffers.length) if (!stream.write(buffers[i++])) { stream.once('drain', pump); return; }
      stream.end();
    };
    pump();
  });
  return (performance.now() - started) / 1000;
}

/** Server-side execution time (EXPLAIN ANALYZE), so that moving rows to the client is not measured. */
async function timed(client: pg.Client, sql: string, params: unknown[]): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const { rows } = await client.query(`EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ${sql}`, params);
    xs.push((rows[0]['QUERY PLAN'] as { 'Execution Time': number }[])[0]['Execution Time']);
  }
  return median(xs);
}

async function main(): Promise<void> {
  const db = await benchDatabase();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const buffers = encoded();
  const hourFrom = '2024-03-01 02:00:00+00';
  const hourTo = '2024-03-01 03:00:00+00';
  console.log(`rows: ${fmt(ROWS)}; COPY rows/s is the median of ${RUNS} runs; query times in ms (median of 5)`);
  console.log('index               | COPY rows/s | vs none | 1h all tags | 1h one tag | 1h agg one tag | one reading');
  let baseline = 0;
  try {
    for (const [name, ddl] of Object.entries(candidates)) {
      const speeds: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        await client.query('DROP TABLE IF EXISTS bench');
        await client.query(`CREATE TABLE bench ("time" timestamptz NOT NULL, sample text, ${Array.from({ length: 10 }, (_, i) => `ch${i} float8`).join(', ')},
          counter int4, flag bool, ingest_id bigint NOT NULL) PARTITION BY RANGE ("time")`);
        await client.query(`CREATE TABLE bench_c PARTITION OF bench FOR VALUES FROM ('2024-03-01') TO ('2024-03-02')`);
        for (const sql of ddl) await client.query(sql);
        await client.query('CHECKPOINT');
        speeds.push(ROWS / (await copyInto(client, buffers)));
      }
      await client.query('VACUUM ANALYZE bench');
      const speed = median(speeds);
      if (name === 'none') baseline = speed;
      const all = await timed(client, `SELECT * FROM bench WHERE "time" >= $1 AND "time" < $2 ORDER BY "time"`, [hourFrom, hourTo]);
      const one = await timed(client, `SELECT * FROM bench WHERE "time" >= $1 AND "time" < $2 AND sample = $3 ORDER BY "time"`, [hourFrom, hourTo, 'sample-07']);
      const agg = await timed(client, `SELECT date_trunc('minute', "time"), count(*), sum(ch0), min(ch0), max(ch0) FROM bench
        WHERE "time" >= $1 AND "time" < $2 AND sample = $3 GROUP BY 1`, [hourFrom, hourTo, 'sample-07']);
      const point = await timed(client, `SELECT ingest_id FROM bench WHERE "time" = $1 AND sample = $2`, ['2024-03-01 02:30:00.07+00', 'sample-07']);
      console.log(`${name.padEnd(19)} | ${fmt(speed).padStart(11)} | ${(speed / baseline).toFixed(2).padStart(7)} | ${fmt(all, 1).padStart(11)} | ${fmt(one, 1).padStart(10)} | ${fmt(agg, 1).padStart(14)} | ${fmt(point, 2).padStart(11)}`);
    }
  } finally {
    await client.end();
    await db.close();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
