// `npm run bench console`: the console in chromium against the real server (a child process, jobs
// off), on a stream of BENCH_CONSOLE_DAYS (30) days × 10 tags at 1 Hz (≈ 26M rows) with its
// rollups refreshed (the rollups job run once over HTTP):
// for two views of the whole 30 days — all tags as one line (what opening the stream from the
// list shows), and one line per tag (10 lines, ten times the rows from the levels) —
//  1. open: from setting the chart's URL to the chart drawn (uPlot's draw hook), median of
//     BENCH_CONSOLE_RUNS (9) after one warm-up. Target < 1 s.
//  2. zoom: from the drag's mouseup to the redrawn chart (a new query of the narrower range), median
//     of BENCH_CONSOLE_RUNS zooms, each followed by a double-click back. Target < 250 ms.
//  Baseline in the same run: the same query fetched by this process (time to the whole body): the
//  page's cost is the rest.
//  3. uPlot against a plain canvas: 1,000,000 points drawn in the page (median of 5 each).
import {
  Field, Float64, RecordBatch, Schema, Struct, Table, TimestampMicrosecond, Utf8, makeData, tableToIPC,
} from 'apache-arrow';
import type { Page } from 'playwright-core';
import { ADMIN_KEY, benchDatabase, fmt, median, startBenchServer, upload } from './lib.ts';
import { launchChromium } from '../web/browser.ts';

const DAYS = Number(process.env.BENCH_CONSOLE_DAYS ?? 30);
const RUNS = Math.max(5, Number(process.env.BENCH_CONSOLE_RUNS ?? 9));
const TAGS = 10;
const DAY_S = 86_400;
const T0 = 1_709_251_200_000_000n; // 2024-03-01T00:00:00Z
const STREAM = 'console-bench';

const schema = new Schema([
  new Field('time', new TimestampMicrosecond('UTC'), false),
  new Field('sample', new Utf8(), false),
  new Field('temp_c', new Float64(), false),
]);
const TAG_BYTES = new TextEncoder().encode(Array.from({ length: TAGS }, (_, k) => `s-0${k}`).join(''));

/** Day d: every tag every second, a daily cycle plus deterministic noise, one spike per day and tag. */
function dayBody(d: number): Buffer {
  const n = DAY_S * TAGS;
  const batches: RecordBatch[] = [];
  const BATCH = 65_536;
  const time = new BigInt64Array(n);
  const value = new Float64Array(n);
  const offsets = new Int32Array(n + 1);
  const bytes = new Uint8Array(n * 4);
  let i = 0;
  for (let s = 0; s < DAY_S; s++) {
    for (let k = 0; k < TAGS; k++) {
      const sec = d * DAY_S + s;
      time[i] = T0 + BigInt(sec) * 1_000_000n;
      const noise = (((sec * 2654435761 + k * 40503) >>> 0) % 1000) / 1000 - 0.5;
      value[i] = 20 + k + 5 * Math.sin((2 * Math.PI * sec) / DAY_S) + noise + (s === 40_000 + k * 997 ? 30 : 0);
      bytes.set(TAG_BYTES.subarray(k * 4, k * 4 + 4), i * 4);
      offsets[i + 1] = (i + 1) * 4;
      i++;
    }
  }
  for (let s = 0; s < n; s += BATCH) {
    const e = Math.min(n, s + BATCH);
    const m = e - s;
    const off = offsets.slice(s, e + 1).map((x) => x - offsets[s]);
    const children = [
      makeData({ type: new TimestampMicrosecond('UTC'), length: m, nullCount: 0, data: time.subarray(s, e) }),
      makeData({ type: new Utf8(), length: m, nullCount: 0, valueOffsets: off, data: bytes.subarray(s * 4, e * 4) }),
      makeData({ type: new Float64(), length: m, nullCount: 0, data: value.subarray(s, e) }),
    ];
    batches.push(new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: m, nullCount: 0, children })));
  }
  return Buffer.from(tableToIPC(new Table(schema, batches), 'stream'));
}

const ms = (x: number): string => `${x.toFixed(x < 10 ? 2 : 0)} ms`;

async function call(url: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${url}${path}`, {
    method, headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(3_600_000),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Sets the hash and resolves with the ms until the chart's draw counter moves past `after`. */
async function timeToDraw(page: Page, hash: string | null, action?: () => Promise<void>): Promise<number> {
  await page.evaluate(`(() => {
    window.__draw = new Promise((resolve) => {
      const before = document.querySelector('.plot')?.dataset.draws ?? '0';
      const check = () => {
        const el = document.querySelector('.plot');
        if (el && el.dataset.draws && el.dataset.draws !== before && el.dataset.draws !== '0' && !document.querySelector('.info')?.textContent.startsWith('Loading')) { resolve(performance.now()); return true; }
        return false;
      };
      const mo = new MutationObserver(() => { if (check()) mo.disconnect(); });
      mo.observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-draws'] });
    });
    window.__up = 0;
    window.addEventListener('mouseup', () => { window.__up = performance.now(); }, { capture: true, once: true });
  })()`);
  let t0: number;
  if (hash !== null) {
    t0 = await page.evaluate(`(() => { const t = performance.now(); location.hash = ${JSON.stringify(hash)}; return t; })()`) as number;
  } else {
    await action!();
    t0 = await page.evaluate('window.__up') as number;
  }
  const t1 = await page.evaluate('window.__draw') as number;
  return t1 - t0;
}

async function main(): Promise<void> {
  const db = await benchDatabase();
  const server = await startBenchServer(db.serverUrl);
  const browser = await launchChromium();
  try {
    console.log(`## ${DAYS} days × ${TAGS} tags at 1 Hz: load and refresh rollups`);
    let rows = 0;
    let t = performance.now();
    for (let d = 0; d < DAYS; d++) {
      const body = dayBody(d);
      const r = await upload(server.url, `/v1/streams/${STREAM}/ingest`, body, 'application/vnd.apache.arrow.stream');
      if (r.status !== 201) throw new Error(`upload day ${d}: ${r.status} ${JSON.stringify(r.json)}`);
      rows += (r.json as { ingest: { rows: number } }).ingest.rows;
    }
    console.log(`loaded ${fmt(rows)} rows in ${fmt((performance.now() - t) / 1000, 1)} s`);
    t = performance.now();
    const run = await call(server.url, 'POST', `/v1/jobs/rollups/run?stream=${STREAM}`) as { outcome: string };
    console.log(`rollups refreshed (${run.outcome}) in ${fmt((performance.now() - t) / 1000, 1)} s`);

    if (process.env.BENCH_CONSOLE_PROBE) {
      // Where a view's time goes: the same query with fewer aggregates, no group_by, CSV.
      const base = `/v1/streams/${STREAM}/query?from=2024-03-01T00:00:00Z&to=2024-03-31T00:00:00Z&resolution=auto&max_points=1156&fields=temp_c`;
      const zoomRange = `/v1/streams/${STREAM}/query?from=2024-03-10T00:00:00Z&to=2024-03-19T00:00:00Z&resolution=auto&max_points=1156&fields=temp_c`;
      for (const [label, q] of [['30d min,max,avg by sample', `${base}&agg=min,max,avg&group_by=sample`], ['30d avg by sample', `${base}&agg=avg&group_by=sample`],
        ['30d min,max,avg all tags', `${base}&agg=min,max,avg`], ['30d min,max,avg by sample csv', `${base}&agg=min,max,avg&group_by=sample&format=csv`],
        ['9d min,max,avg by sample', `${zoomRange}&agg=min,max,avg&group_by=sample`], ['9d avg all tags', `${zoomRange}&agg=avg`]]) {
        const times: number[] = [];
        let served = '';
        for (let i = 0; i < 7; i++) {
          const s = performance.now();
          const res = await fetch(`${server.url}${q}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
          await res.arrayBuffer();
          served = res.headers.get('strata-served-by') ?? '';
          times.push(performance.now() - s);
        }
        console.log(`  ${label}: median ${ms(median(times))} (${served})`);
      }
    }

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: server.url });
    const page = await context.newPage();
    await page.goto('/');
    await page.getByLabel('API key').fill(ADMIN_KEY);
    await page.keyboard.press('Enter');
    await page.locator('#who strong').waitFor();
    let lastQuery = '';
    page.on('request', (r) => { if (r.url().includes('/query?')) lastQuery = r.url(); });
    const fetchMs = async (url: string): Promise<number> => {
      const q = new URL(url);
      const t0 = performance.now();
      await (await fetch(`${server.url}${q.pathname}${q.search}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).arrayBuffer();
      return performance.now() - t0;
    };
    const results: { label: string; open: number; openQuery: number; zoom: number; zoomQuery: number }[] = [];
    const views: [string, string][] = [
      ['the whole stream, all tags in one line', `#/chart?stream=${STREAM}&fields=temp_c&range=30d&tz=UTC`],
      ['the whole stream, one line per tag (10 lines)', `#/chart?stream=${STREAM}&fields=temp_c&range=30d&tz=UTC&group=sample`],
    ];
    for (const [label, view] of views) {
      console.log(`\n## ${label}`);
      const opens: number[] = [];
      for (let i = 0; i <= RUNS; i++) {
        await page.evaluate('location.hash = "#/streams"');
        await page.locator('main h1', { hasText: 'Streams' }).waitFor();
        await page.waitForLoadState('networkidle');
        const x = await timeToDraw(page, view);
        if (i > 0) opens.push(x);
      }
      const q = new URL(lastQuery);
      const base: number[] = [];
      for (let i = 0; i < RUNS; i++) base.push(await fetchMs(lastQuery));
      console.log(`  the query: ${decodeURIComponent(q.search)} (served by 1m level rows)`);
      console.log(`  1. open → drawn: median ${ms(median(opens))} (runs: ${opens.map((x) => x.toFixed(0)).join(', ')}); the same query alone from Node: median ${ms(median(base))} → page/API ${(median(opens) / median(base)).toFixed(2)}×; target < 1000 ms`);
      const zooms: number[] = [];
      const zoomBase: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const over = (await page.locator('.u-over').boundingBox())!;
        const y = over.y + over.height / 2;
        zooms.push(await timeToDraw(page, null, async () => {
          await page.mouse.move(over.x + over.width * (0.3 + i * 0.01), y);
          await page.mouse.down();
          await page.mouse.move(over.x + over.width * 0.45, y, { steps: 3 });
          await page.mouse.move(over.x + over.width * (0.6 - i * 0.01), y, { steps: 3 });
          await page.mouse.up();
        }));
        zoomBase.push(await fetchMs(lastQuery));
        await timeToDraw(page, null, async () => { await page.locator('.u-over').dblclick(); });
      }
      console.log(`  2. zoom (drag over ~30 % of the range) → redrawn: median ${ms(median(zooms))} (runs: ${zooms.map((x) => x.toFixed(0)).join(', ')}); its query alone from Node: median ${ms(median(zoomBase))} → page/API ${(median(zooms) / median(zoomBase)).toFixed(2)}×; target < 250 ms`);
      results.push({ label, open: median(opens), openQuery: median(base), zoom: median(zooms), zoomQuery: median(zoomBase) });
    }

    console.log('\n## 3. drawing 1,000,000 points in chromium: uPlot vs a plain canvas path');
    const draw = await page.evaluate(`(async () => {
      const { default: uPlot } = await import('/ui/uplot.esm.js');
      const n = 1_000_000;
      const x = new Float64Array(n), y = new Float64Array(n);
      for (let i = 0; i < n; i++) { x[i] = 1.7e9 + i; y[i] = Math.sin(i / 5000) * 10 + ((i * 2654435761) % 1000) / 500; }
      const box = document.createElement('div');
      document.body.append(box);
      const up = [], canvas = [];
      for (let r = 0; r < 6; r++) {
        let t = performance.now();
        let drawn;
        const done = new Promise((resolve) => { drawn = resolve; });
        const u = new uPlot({ width: 1200, height: 400, series: [{}, { stroke: 'blue' }], scales: { x: { time: false } },
          hooks: { draw: [() => drawn()] } }, [x, y], box);
        await done;
        u.ctx.getImageData(0, 0, 1, 1); // wait for the raster
        up.push(performance.now() - t);
        u.destroy();
        t = performance.now();
        const c = document.createElement('canvas'); c.width = 1200; c.height = 400; box.append(c);
        const ctx = c.getContext('2d');
        let lo = Infinity, hi = -Infinity;
        for (let i = 0; i < n; i++) { if (y[i] < lo) lo = y[i]; if (y[i] > hi) hi = y[i]; }
        const sx = 1200 / (x[n - 1] - x[0]), sy = 400 / (hi - lo);
        ctx.beginPath(); ctx.moveTo(0, 400 - (y[0] - lo) * sy);
        for (let i = 1; i < n; i++) ctx.lineTo((x[i] - x[0]) * sx, 400 - (y[i] - lo) * sy);
        ctx.strokeStyle = 'blue'; ctx.stroke();
        ctx.getImageData(0, 0, 1, 1); // wait for the raster
        canvas.push(performance.now() - t);
        c.remove();
      }
      box.remove();
      const med = (a) => a.slice(1).sort((p, q) => p - q)[Math.floor((a.length - 1) / 2)];
      return { uplot: med(up), canvas: med(canvas) };
    })()`) as { uplot: number; canvas: number };
    console.log(`1M points: uPlot ${ms(draw.uplot)} (create + draw, median of 5), plain canvas lineTo path ${ms(draw.canvas)} → uPlot/canvas ${(draw.uplot / draw.canvas).toFixed(2)}×`);

    console.log('\n## summary');
    console.log(`| figure | median | target |\n|---|---|---|`);
    for (const r of results) {
      console.log(`| open ${DAYS} days (${fmt(rows)} rows, 10 tags), ${r.label} → chart drawn | ${ms(r.open)} (query alone ${ms(r.openQuery)}) | < 1 s |`);
      console.log(`| zoom, ${r.label}: drag end → redrawn | ${ms(r.zoom)} (query alone ${ms(r.zoomQuery)}) | < 250 ms |`);
    }
    console.log(`| 1M points: uPlot vs plain canvas | ${ms(draw.uplot)} vs ${ms(draw.canvas)} | |`);
    await context.close();
  } finally {
    await browser.close();
    await server.stop();
    await db.close();
  }
}

await main();
