// `npm run bench zoom-query`: the console's chart query alone, over HTTP against the real server (a
// child process, jobs off), on BENCH_ZOOM_DAYS (30) days × 10 tags at one reading per 10 s with the
// rollups refreshed. The 1m level holds one row per minute and tag however often the tags are read,
// so these are the level rows of the console benchmark (432,000 over 30 days) from a tenth of its
// raw rows. The queries are the page's: resolution=auto, max_points = the plot width (1,156 px),
// agg=min,max,avg, tz=UTC; the zoom over 9 days with edges on the 1m grid (as the page snaps
// them), the open over the whole 30 days; each with one line per tag (group_by=sample) and as one
// line. Median of BENCH_ZOOM_RUNS (15) after two warm-ups; baseline in the same run: the same range
// as one line (the grouped query reads ten times its level rows). BENCH_ZOOM_AGAINST=<directory of
// another checkout> also serves the same database from that code, its queries alternated with
// these (a before/after under the same load), and compares the answers.
import {
  Field, Float64, RecordBatch, Schema, Struct, Table, TimestampMicrosecond, Utf8, makeData, tableToIPC,
} from 'apache-arrow';
import path from 'node:path';
import { ADMIN_KEY, type BenchServer, benchDatabase, fmt, median, startBenchServer, upload } from './lib.ts';

const DAYS = Number(process.env.BENCH_ZOOM_DAYS ?? 30);
const RUNS = Math.max(5, Number(process.env.BENCH_ZOOM_RUNS ?? 15));
const TAGS = 10;
const STEP_S = 10;
const DAY_S = 86_400;
const T0 = 1_709_251_200_000_000n; // 2024-03-01T00:00:00Z
const STREAM = 'zoom-bench';

const schema = new Schema([
  new Field('time', new TimestampMicrosecond('UTC'), false),
  new Field('sample', new Utf8(), false),
  new Field('temp_c', new Float64(), false),
]);
const TAG_BYTES = new TextEncoder().encode(Array.from({ length: TAGS }, (_, k) => `s-0${k}`).join(''));

/** Day d: every tag every STEP_S seconds, a daily cycle plus deterministic noise. */
function dayBody(d: number): Buffer {
  const n = (DAY_S / STEP_S) * TAGS;
  const time = new BigInt64Array(n);
  const value = new Float64Array(n);
  const offsets = new Int32Array(n + 1);
  const bytes = new Uint8Array(n * 4);
  let i = 0;
  for (let s = 0; s < DAY_S; s += STEP_S) {
    for (let k = 0; k < TAGS; k++) {
      const sec = d * DAY_S + s;
      time[i] = T0 + BigInt(sec) * 1_000_000n;
      const noise = (((sec * 2654435761 + k * 40503) >>> 0) % 1000) / 1000 - 0.5;
      value[i] = 20 + k + 5 * Math.sin((2 * Math.PI * sec) / DAY_S) + noise;
      bytes.set(TAG_BYTES.subarray(k * 4, k * 4 + 4), i * 4);
      offsets[i + 1] = (i + 1) * 4;
      i++;
    }
  }
  const children = [
    makeData({ type: new TimestampMicrosecond('UTC'), length: n, nullCount: 0, data: time }),
    makeData({ type: new Utf8(), length: n, nullCount: 0, valueOffsets: offsets, data: bytes }),
    makeData({ type: new Float64(), length: n, nullCount: 0, data: value }),
  ];
  const batch = new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children }));
  return Buffer.from(tableToIPC(new Table(schema, [batch]), 'stream'));
}

async function call(url: string, method: string, path: string): Promise<unknown> {
  const res = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: AbortSignal.timeout(3_600_000) });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

const iso = (day: number, minute = 0): string => new Date(Number(T0 / 1000n) + day * 86_400_000 + minute * 60_000).toISOString();

async function main(): Promise<void> {
  const db = await benchDatabase();
  const server = await startBenchServer(db.serverUrl);
  let other: BenchServer | null = null;
  try {
    let rows = 0;
    let t = performance.now();
    for (let d = 0; d < DAYS; d++) {
      const r = await upload(server.url, `/v1/streams/${STREAM}/ingest`, dayBody(d), 'application/vnd.apache.arrow.stream');
      if (r.status !== 201) throw new Error(`upload day ${d}: ${r.status} ${JSON.stringify(r.json)}`);
      rows += (r.json as { ingest: { rows: number } }).ingest.rows;
    }
    console.log(`loaded ${fmt(rows)} rows (${DAYS} days × ${TAGS} tags, every ${STEP_S} s) in ${fmt((performance.now() - t) / 1000, 1)} s`);
    t = performance.now();
    // The first run builds the coarser levels from the raw rows and leaves the finest level's
    // invalidations (uploads below its watermark) to the next: run until nothing is left to do.
    let written = 0;
    for (let i = 0; i < 5; i++) {
      const run = await call(server.url, 'POST', `/v1/jobs/rollups/run?stream=${STREAM}`) as { rows: number | null };
      written += run.rows ?? 0;
      if (i > 0 && !run.rows) break;
    }
    console.log(`rollups refreshed (${fmt(written)} level rows) in ${fmt((performance.now() - t) / 1000, 1)} s`);

    // BENCH_ZOOM_AGAINST: another checkout of the project (e.g. `git worktree add /tmp/before HEAD~3`
    // with its node_modules) served from the same database, its queries alternated with these.
    const against = process.env.BENCH_ZOOM_AGAINST;
    other = against ? await startBenchServer(db.serverUrl, {}, path.resolve(against)) : null;
    const q = (from: string, to: string, group: boolean): string =>
      `/v1/streams/${STREAM}/query?from=${from}&to=${to}&resolution=auto&max_points=1156&fields=temp_c&agg=min,max,avg&tz=UTC${group ? '&group_by=sample' : ''}`;
    const zoomDays = Math.min(9, DAYS - 1);
    const zoomFrom = Math.floor(DAYS * 0.3);
    const views: [string, string, string][] = [
      [`zoom ${zoomDays} days`, iso(zoomFrom, 7), iso(zoomFrom + zoomDays, 13)],
      [`open ${DAYS} days`, iso(0), iso(DAYS)],
    ];
    const time = async (url: string, path: string): Promise<{ ms: number; body: Buffer; served: string }> => {
      const s = performance.now();
      const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      const body = Buffer.from(await res.arrayBuffer());
      if (!res.ok) throw new Error(`${path}: ${res.status} ${body.toString()}`);
      return { ms: performance.now() - s, body, served: res.headers.get('strata-served-by') ?? '' };
    };
    const servers: [string, string][] = [['this checkout', server.url], ...(other ? [[`${against}`, other.url] as [string, string]] : [])];
    console.log(`\nmedian of ${RUNS} after two warm-ups${other ? '; the two servers\' queries alternate' : ''}`);
    console.log('\n| query | server | one line per tag (10) | one line (baseline) | ratio |\n|---|---|---|---|---|');
    for (const [label, from, to] of views) {
      const times = servers.map(() => ({ grouped: [] as number[], single: [] as number[] }));
      const bodies: Buffer[] = [];
      let info = '';
      for (let i = 0; i < RUNS + 2; i++) {
        // Alternate, so that all see the same load on the machine, each first every other time.
        const order = [...servers.entries()];
        for (const [k, [, url]] of i % 2 ? order.reverse() : order) {
          const g = await time(url, q(from, to, true));
          const o = await time(url, q(from, to, false));
          if (i >= 2) { times[k].grouped.push(g.ms); times[k].single.push(o.ms); }
          if (i === 0) bodies[k] = g.body;
          info = `${fmt(g.body.length)} bytes, served by ${g.served}`;
        }
      }
      for (const [k, [name]] of servers.entries()) {
        const t = times[k];
        console.log(`| ${label} (${info}) | ${name} | ${median(t.grouped).toFixed(0)} ms | ${median(t.single).toFixed(0)} ms | ${(median(t.grouped) / median(t.single)).toFixed(2)}× |`);
      }
      if (other) {
        // The same rows, but for the watermarks (the servers read them at different times) and the last digits of sums.
        const rowsOf = (b: Buffer): number[][] => (JSON.parse(b.toString()) as { rows: [string, string, number, number, number][] }).rows.map((r) => [Date.parse(r[0]), r[2], r[3], r[4]]);
        const [a, b] = bodies.map(rowsOf);
        const worst = a.length !== b.length ? Infinity : Math.max(0, ...a.flatMap((r, i) => r.map((x, c) => (c === 0 ? (x === b[i][c] ? 0 : Infinity) : Math.abs(x - b[i][c]) / Math.max(1e-300, Math.abs(x))))));
        console.log(`|  | this / other | ${(median(times[0].grouped) / median(times[1].grouped)).toFixed(2)}× | ${(median(times[0].single) / median(times[1].single)).toFixed(2)}× | rows ${a.length} vs ${b.length}, largest relative difference ${worst.toExponential(1)} |`);
      }
    }
  } finally {
    await other?.stop();
    await server.stop();
    await db.close();
  }
}

await main();
