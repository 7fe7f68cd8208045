// GET /metrics: prom-client's process metrics under one strata_ prefix, and per-stream series
// (ingests, rows, bytes, last ingest time, rejections by code) whose stream label only takes the
// names of streams that exist.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_STREAM } from '../helpers/fixtures.ts';
import { loggerBody } from '../helpers/uploads.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

const scrape = async (app = t.app): Promise<string> => (await app.request('/metrics')).text();
const value = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};
const post = (stream: string, body: Uint8Array, query = ''): Promise<Response> =>
  t.request(`/v1/streams/${stream}/ingest${query}`, { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body });

describe('metric names', () => {
  it('carry the strata_ prefix once', async () => {
    const text = await createMetrics(true).registry.metrics();
    expect(text).not.toContain('strata_process_process_');
    expect(text).not.toMatch(/^process_/m);
    expect(text).toContain('strata_process_cpu_seconds_total');
    expect(text).toContain('strata_nodejs_heap_size_total_bytes');
  });
});

describe('per-stream metrics', () => {
  it('count committed ingests, rows and bytes, and give the time of the latest', async () => {
    const body = loggerBody({ n: 12 });
    const res = await post('m-one', body);
    expect(res.status).toBe(201);
    const { ingest } = await res.json() as { ingest: { committed_at: string } };
    const text = await scrape();
    expect(value(text, 'strata_stream_ingests_total{stream="m-one"}')).toBe(1);
    expect(value(text, 'strata_stream_rows_total{stream="m-one"}')).toBe(12);
    expect(value(text, 'strata_stream_bytes_total{stream="m-one"}')).toBe(body.length);
    expect(value(text, 'strata_stream_last_ingest_timestamp_seconds{stream="m-one"}')).toBeCloseTo(Date.parse(ingest.committed_at) / 1000, 2);
  });

  it('take the last ingest time from the database, so a restarted server (or another replica) reports it', async () => {
    const made = await post('m-two', loggerBody({ n: 3 }));
    expect(made.status, await made.clone().text()).toBe(201);
    const fresh = createApp({ ...t.deps, metrics: createMetrics(false) });
    const text = await scrape(fresh);
    expect(value(text, 'strata_stream_last_ingest_timestamp_seconds{stream="m-two"}')).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(value(text, 'strata_stream_rows_total{stream="m-two"}')).toBeUndefined();
  });

  it('count refusals by stream and code; streams that do not exist share one label value', async () => {
    const made = await post('m-bad', loggerBody({ n: 2 }));
    expect(made.status, await made.clone().text()).toBe(201);
    expect((await post('m-bad', loggerBody({ n: 2 }).subarray(0, 120))).status).toBe(400);
    for (let i = 0; i < 20; i++) expect((await post(`m-nope-${i}`, Buffer.from('x'), '?create=false')).status).toBe(404);
    const text = await scrape();
    expect(value(text, 'strata_stream_rejections_total{stream="m-bad",code="truncated_arrow"}')).toBe(1);
    expect(value(text, 'strata_stream_rejections_total{stream="",code="stream_not_found"}')).toBe(20);
    expect(text).not.toContain('m-nope-');
  });
});
