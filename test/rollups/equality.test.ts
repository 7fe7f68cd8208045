// The proof of the rollups: for random data over several days and three samples — with NaN,
// ±Infinity and NULL among the readings, and NaN at the same instants as numbers — every level and
// ad-hoc resolution, every aggregate, with and without group_by and tag filters, in both NaN modes
// (nan=skip and nan=propagate), the API answers exactly what the same aggregation computed
// directly in SQL over the raw rows answers — before the refresh (raw rows serve), after it
// (levels serve), and with the range's edges unaligned.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { DAY_US, T0 } from '../helpers/polars.ts';
import {
  HOUR_US, MIN_US, NAN_AGGS, NAN_COLUMNS, type RefBuckets, createLabStream, expectSame, ingestLab, labRows, query, reference, refresh,
} from '../helpers/rollups.ts';
import { formatMicros } from '../../src/domain/time.ts';
import { parseInterval } from '../../src/domain/interval.ts';

let t: TestApp;
const FROM = T0 + 7n * MIN_US + 13_000_000n; // not aligned to any level
const TO = T0 + 2n * DAY_US + 5n * HOUR_US + 30n * MIN_US;
const ALIGNED = { from: T0, to: T0 + 3n * DAY_US };

beforeAll(async () => {
  t = await createTestApp();
  await createLabStream(t, 'lab');
  // Three days of irregular readings (mean 20 s apart) from three samples, in two uploads.
  await ingestLab(t, 'lab', labRows(11, T0, 6500, 20_000_000n, ['A', 'B', 'C'], true));
  await ingestLab(t, 'lab', labRows(12, T0 + DAY_US + 3n * HOUR_US, 6500, 20_000_000n, ['A', 'B', 'C'], true));
});
afterAll(async () => { await t.close(); });

const RESOLUTIONS = ['1m', '1h', '1d', '15s', '5m', '2h', '90m', '2d'];
const MODES = ['skip', 'propagate'] as const;
type Mode = typeof MODES[number];

/** Checks both NaN modes; returns the served sources (the same in both). */
async function check(resolution: string, range: { from: bigint; to: bigint }, extra: { groupBy?: boolean; samples?: string[] } = {}): Promise<{ served: string[] }> {
  const skip = await checkMode(resolution, range, 'skip', extra);
  const propagate = await checkMode(resolution, range, 'propagate', extra);
  expect(propagate.served).toEqual(skip.served);
  return skip;
}

async function checkMode(resolution: string, range: { from: bigint; to: bigint }, nan: Mode, extra: { groupBy?: boolean; samples?: string[] }): Promise<{ served: string[] }> {
  const params: Record<string, string> = { resolution, from: formatMicros(range.from), to: formatMicros(range.to), agg: NAN_AGGS.join(','), nan };
  if (extra.groupBy) params.group_by = 'sample';
  const url = new URLSearchParams(params);
  for (const s of extra.samples ?? []) url.append('tag.sample', s);
  const res = await t.request(`/v1/streams/lab/query?${url}`);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  const api = JSON.parse(text);
  const buckets: RefBuckets = { kind: 'fixed', widthUs: parseInterval(resolution) as bigint };
  const ref = await reference(t, 'lab', { ...range, buckets, groupBy: extra.groupBy, samples: extra.samples, columns: NAN_COLUMNS, nan });
  expect(ref.length).toBeGreaterThan(0);
  expectSame(api, ref, { groupBy: extra.groupBy, columns: NAN_COLUMNS });
  return { served: (api.served as { source: string }[]).map((s) => s.source) };
}

describe('before the first refresh', () => {
  it.each(RESOLUTIONS)('resolution=%s equals the raw aggregation (served from raw)', async (resolution) => {
    const { served } = await check(resolution, { from: FROM, to: TO });
    expect(served).toEqual(['raw']);
  });
});

describe('after the refresh', () => {
  beforeAll(async () => { await refresh(t, 'lab'); });

  it.each(RESOLUTIONS)('resolution=%s, unaligned range, equals the raw aggregation', async (resolution) => {
    const { served } = await check(resolution, { from: FROM, to: TO });
    if (resolution !== '15s') expect(served).not.toEqual(['raw']);
  });

  it.each(RESOLUTIONS)('resolution=%s, aligned range, is served by rollup levels only', async (resolution) => {
    const { served } = await check(resolution, ALIGNED);
    if (resolution === '15s') expect(served).toEqual(['raw']);
    else expect(served).not.toContain('raw');
  });

  it.each(['1m', '1h', '5m', '1d'])('resolution=%s with group_by=sample, one series per sample', async (resolution) => {
    await check(resolution, { from: FROM, to: TO }, { groupBy: true });
  });

  it.each(['1h', '15m'])('resolution=%s with tag filters (one and two samples)', async (resolution) => {
    await check(resolution, { from: FROM, to: TO }, { samples: ['B'] });
    await check(resolution, { from: FROM, to: TO }, { samples: ['A', 'C'], groupBy: true });
  });

  it('names every level in the served parts, coarsest where the buckets allow', async () => {
    const body = await query(t, 'lab', { resolution: '1d', from: formatMicros(FROM), to: formatMicros(TO), fields: 'temp_c' });
    const parts = body.served.map((s) => s.source);
    expect(parts).toEqual(['1d', '1h', '1m', 'raw']);
    const d = body.served.find((s) => s.source === '1d');
    expect(d?.ranges).toEqual([{ from: '2024-03-02T00:00:00.000000Z', to: '2024-03-03T00:00:00.000000Z' }]);
  });

  it.each(MODES)('auto, nan=%s: the coarsest level with at least max_points buckets, re-bucketed to (to − from) / max_points', async (nan) => {
    const body = await query(t, 'lab', { resolution: 'auto', max_points: '100', from: formatMicros(FROM), to: formatMicros(TO), agg: NAN_AGGS.join(','), nan });
    // 2 days 5 h 23 min / 100 → about 32 min: the 1h level gives fewer than 100 buckets, so 1m serves.
    expect(body.level).toBe('1m');
    expect(body.rows.length).toBeLessThanOrEqual(100);
    const width = (TO - FROM) / 100n;
    const ref = await reference(t, 'lab', { from: FROM, to: TO, buckets: { kind: 'auto', levelUs: MIN_US, widthUs: width, n: 100 }, columns: NAN_COLUMNS, nan });
    expectSame(body, ref, { columns: NAN_COLUMNS });
    expect(body.served.map((s) => s.source)).toContain('1m');
  });

  it('the data holds what the modes differ on: buckets with NaN, all NaN, and ±Infinity', async () => {
    const params = { resolution: '1m', from: formatMicros(ALIGNED.from), to: formatMicros(ALIGNED.to), fields: 'temp_c', agg: 'avg,count,nan_count,max' };
    const skip = await query(t, 'lab', params);
    const propagate = await query(t, 'lab', { ...params, nan: 'propagate' });
    expect(skip.served.map((s) => s.source)).toEqual(['1m']);
    expect(skip.rows.length).toBe(propagate.rows.length);
    const withNaN = skip.rows.filter((r) => (r[3] as number) > 0).length;
    expect(withNaN).toBeGreaterThan(100);
    // Every reading of a minute NaN: skip has no average, propagate a NaN.
    expect(skip.rows.some((r, i) => r[2] === 0 && r[1] === null && propagate.rows[i][1] === 'NaN')).toBe(true);
    expect(skip.rows.some((r) => r[4] === 'Infinity')).toBe(true);
    for (let i = 0; i < skip.rows.length; i++) {
      const [, avg, count, nans] = skip.rows[i] as [string, unknown, number, number];
      const p = propagate.rows[i];
      expect(p[2]).toBe(count + nans);
      expect(p[3]).toBe(nans);
      if (nans > 0) expect(p[1]).toBe('NaN'); else expect(p[1]).toEqual(avg);
    }
  });

  it('fields, agg and formats: columns named <field>_<agg> in JSON, CSV and Arrow', async () => {
    const base = `/v1/streams/lab/query?resolution=1h&from=${formatMicros(ALIGNED.from)}&to=${formatMicros(ALIGNED.to)}&fields=temp_c,ok&agg=avg,count`;
    const csv = await (await t.request(`${base}&format=csv`)).text();
    expect(csv.split('\n')[0]).toBe('time,temp_c_avg,temp_c_count,ok_avg,ok_count');
    const { tableFromIPC } = await import('apache-arrow');
    const arrow = tableFromIPC(new Uint8Array(await (await t.request(`${base}&format=arrow`)).arrayBuffer()));
    expect(arrow.schema.fields.map((f) => f.name)).toEqual(['time', 'temp_c_avg', 'temp_c_count', 'ok_avg', 'ok_count']);
    const json = await query(t, 'lab', { resolution: '1h', from: formatMicros(ALIGNED.from), to: formatMicros(ALIGNED.to), fields: 'temp_c,ok', agg: 'avg,count' });
    expect(arrow.numRows).toBe(json.rows.length);
    expect(Number(arrow.getChild('temp_c_count')?.get(0))).toBe(json.rows[0][2]);
    const res = await t.request(`${base}&format=csv`);
    expect(res.headers.get('strata-served-by')).toBe('1h');
  });
});
