// Calendar buckets — months, quarters and years at local midnight in the query's zone, across
// DST — against the raw aggregation by local calendar unit; the level that serves them; what a
// resolution means (min for minutes, a bare M refused); and the bucket limit at exactly its value.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ALL_AGGS, HOUR_US, MIN_US, type QueryBody, createLabStream, expectSame, ingestLab, labRows, query, reference, refresh } from '../helpers/rollups.ts';

let t: TestApp;
const START = BigInt(Date.UTC(2023, 11, 15)) * 1000n;
const END = BigInt(Date.UTC(2025, 0, 20)) * 1000n;

beforeAll(async () => {
  t = await createTestApp();
  await createLabStream(t, 'cal');
  // A reading every hour at :17, from 15 December 2023 to 19 January 2025 (UTC).
  const n = Number((END - START) / HOUR_US);
  const rows = labRows(61, 0n, n, 1n, ['A', 'B']);
  rows.time = Array.from({ length: n }, (_, i) => START + BigInt(i) * HOUR_US + 17n * MIN_US);
  await ingestLab(t, 'cal', rows);
  await refresh(t, 'cal');
});
afterAll(async () => { await t.close(); });

const us = (text: string): bigint => BigInt(Date.parse(text)) * 1000n;
type Served = { served: { source: string; ranges: unknown[] }[] };

async function status(params: Record<string, string>): Promise<{ status: number; body: { detail?: string; code?: string } }> {
  const res = await t.request(`/v1/streams/cal/query?${new URLSearchParams({ fields: 'temp_c', agg: 'count', ...params })}`);
  return { status: res.status, body: await res.json() as { detail?: string; code?: string } };
}

describe('calendar buckets', () => {
  it.each([
    ['1mo', 'month', 'Europe/Berlin', '2024-01-01T00:00:00+01:00', '2025-01-01T00:00:00+01:00', 12],
    ['3mo', 'quarter', 'Europe/Berlin', '2024-01-01T00:00:00+01:00', '2025-01-01T00:00:00+01:00', 4],
    ['1y', 'year', 'America/New_York', '2023-12-20T00:00:00Z', '2025-01-10T00:00:00Z', 3],
    ['1mo', 'month', 'UTC', '2024-02-10T06:30:00Z', '2024-06-03T00:00:00Z', 5],
    ['1mo', 'month', 'Asia/Kolkata', '2024-01-01T00:00:00+05:30', '2024-04-01T00:00:00+05:30', 3],
  ] as const)('resolution=%s (%s) in %s from %s to %s: %i buckets, each the raw aggregation of its local calendar unit', async (resolution, unit, tz, fromText, toText, n) => {
    const body = await query(t, 'cal', { resolution, tz, from: fromText, to: toText, agg: ALL_AGGS.join(',') });
    expect(body.rows.length).toBe(n);
    expectSame(body, await reference(t, 'cal', { from: us(fromText), to: us(toText), buckets: { kind: 'local', unit, tz } }));
    expect(body).toMatchObject({ tz });
  });

  it('starts each month at local midnight of its first day, in winter and summer time', async () => {
    const body = await query(t, 'cal', { resolution: '1mo', tz: 'Europe/Berlin', from: '2024-01-01T00:00:00+01:00', to: '2025-01-01T00:00:00+01:00', fields: 'temp_c', agg: 'count' });
    expect(body.rows.map((r) => r[0])).toEqual([
      '2023-12-31T23:00:00.000000Z', '2024-01-31T23:00:00.000000Z', '2024-02-29T23:00:00.000000Z', '2024-03-31T22:00:00.000000Z',
      '2024-04-30T22:00:00.000000Z', '2024-05-31T22:00:00.000000Z', '2024-06-30T22:00:00.000000Z', '2024-07-31T22:00:00.000000Z',
      '2024-08-31T22:00:00.000000Z', '2024-09-30T22:00:00.000000Z', '2024-10-31T23:00:00.000000Z', '2024-11-30T23:00:00.000000Z',
    ]);
  });

  it('is served by the 1d level where local midnight is a UTC day boundary, and by 1h at the edges of days it is not', async () => {
    const utc = await query(t, 'cal', { resolution: '3mo', tz: 'UTC', from: '2024-01-01T00:00:00Z', to: '2025-01-01T00:00:00Z', fields: 'temp_c', agg: 'count' }) as QueryBody & Served;
    expect(utc.served.map((s) => s.source)).toEqual(['1d']);
    const berlin = await query(t, 'cal', { resolution: '3mo', tz: 'Europe/Berlin', from: '2024-01-01T00:00:00+01:00', to: '2025-01-01T00:00:00+01:00', fields: 'temp_c', agg: 'count' }) as QueryBody & Served;
    expect(berlin.served.map((s) => s.source)).toEqual(['1d', '1h']);
    // The 1h level serves the hours around each quarter's start: 5 edges.
    expect(berlin.served[1].ranges.length).toBe(5);
  });

  it('without tz, calendar buckets are UTC', async () => {
    const body = await query(t, 'cal', { resolution: '1mo', from: '2024-01-01T00:00:00Z', to: '2024-03-01T00:00:00Z', fields: 'temp_c', agg: 'count' });
    expect(body.rows.map((r) => r[0])).toEqual(['2024-01-01T00:00:00.000000Z', '2024-02-01T00:00:00.000000Z']);
    expect(body).toMatchObject({ bucket: '1 month', tz: 'UTC' });
  });

  it('fill=null gives every month a row', async () => {
    const body = await query(t, 'cal', { resolution: '1mo', from: '2023-10-01T00:00:00Z', to: '2024-02-01T00:00:00Z', fields: 'temp_c', agg: 'count', fill: 'null' });
    expect(body.rows).toEqual([['2023-10-01T00:00:00.000000Z', 0], ['2023-11-01T00:00:00.000000Z', 0], expect.any(Array), expect.any(Array)]);
  });
});

describe('what a resolution means', () => {
  it('a bare M is refused, saying to write mo or min', async () => {
    for (const resolution of ['1M', 'M', '15M']) {
      const r = await status({ resolution, from: '2024-01-01T00:00:00Z', to: '2024-02-01T00:00:00Z' });
      expect(r.status, resolution).toBe(400);
      expect(r.body.code).toBe('invalid_request');
      const n = resolution === 'M' ? '1' : resolution.slice(0, -1);
      expect(r.body.detail).toContain(`${n}mo`);
      expect(r.body.detail).toContain(`${n}min`);
    }
  });

  it('min means minutes', async () => {
    const params = { from: '2024-01-01T00:00:00Z', to: '2024-01-02T00:00:00Z', fields: 'temp_c', agg: 'count,avg' };
    const min = await query(t, 'cal', { ...params, resolution: '90min' });
    expect(min.rows.length).toBe(16);
    expect(min.rows).toEqual((await query(t, 'cal', { ...params, resolution: '90m' })).rows);
  });

  it('months that do not divide a year are refused', async () => {
    const r = await status({ resolution: '5mo', from: '2024-01-01T00:00:00Z', to: '2024-02-01T00:00:00Z' });
    expect(r.status).toBe(400);
    expect(r.body.detail).toContain('1mo, 3mo');
  });
});

describe('the bucket limit', () => {
  const from = '2024-01-01T00:00:00Z';
  const plus = (s: bigint): string => new Date(Date.parse(from) + Number(s) * 1000).toISOString();

  it('answers exactly 1,000,000 buckets', async () => {
    const body = await query(t, 'cal', { resolution: '1s', from, to: plus(1_000_000n), fields: 'temp_c', agg: 'count' });
    expect(body.rows.length).toBe(Math.ceil(1_000_000 / 3600));
  });

  it('refuses 1,000,001, naming that count', async () => {
    const r = await status({ resolution: '1s', from, to: plus(1_000_001n) });
    expect(r.status).toBe(400);
    expect(r.body.detail).toContain('1000001 buckets');
  });

  it('counts the bucket a range starting mid-bucket begins in', async () => {
    const r = await status({ resolution: '1s', from: '2024-01-01T00:00:00.500Z', to: plus(1_000_000n) });
    expect(r.status).toBe(200);
    const over = await status({ resolution: '1s', from: '2024-01-01T00:00:00.500Z', to: new Date(Date.parse(plus(1_000_000n)) + 500).toISOString() });
    expect(over.body.detail).toContain('1000001 buckets');
  });

  it('refuses calendar buckets beyond the limit', async () => {
    const r = await status({ resolution: '1d', tz: 'Europe/Berlin', from: '1000-01-01T00:00:00Z', to: '9000-01-01T00:00:00Z' });
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(/about \d+ buckets/);
  });
});
