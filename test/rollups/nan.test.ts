// What NaN does to aggregates, on readings small enough to know the answers by hand: skipped by
// default (as pandas and numpy's nan-functions), IEEE semantics with nan=propagate, nan_count in
// both, ±Infinity as values — from raw rows and from the levels alike, in JSON, CSV and Arrow, for
// M4 and LTTB; and the NULL and NaN counts of the ingest record.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableFromIPC } from 'apache-arrow';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_STREAM } from '../helpers/fixtures.ts';
import { T0, arrowStream, pl } from '../helpers/polars.ts';
import { MIN_US, query, refresh } from '../helpers/rollups.ts';
import { json } from '../helpers/uploads.ts';
import { formatMicros } from '../../src/domain/time.ts';

let t: TestApp;
let ingest: Record<string, unknown>;
const S = 1_000_000n;

/**
 * Minute 0: 1 … 9 one a second from 1 s, a NaN at 1 s (beside the 1) and at 10 s.
 * Minute 1: three NaN and a null. Minute 2: +∞, −∞ and 1. Minute 3: +∞, 2 and NaN.
 */
const READINGS: [bigint, number | null][] = [
  [1n * S, 1], [1n * S, NaN], [2n * S, 2], [3n * S, 3], [4n * S, 4], [5n * S, 5], [6n * S, 6], [7n * S, 7], [8n * S, 8], [9n * S, 9], [10n * S, NaN],
  [MIN_US + 1n * S, NaN], [MIN_US + 2n * S, null], [MIN_US + 3n * S, NaN], [MIN_US + 4n * S, NaN],
  [2n * MIN_US + 1n * S, Infinity], [2n * MIN_US + 2n * S, -Infinity], [2n * MIN_US + 3n * S, 1],
  [3n * MIN_US + 1n * S, Infinity], [3n * MIN_US + 2n * S, 2], [3n * MIN_US + 3n * S, NaN],
];

const AGG = 'avg,sum,min,max,count,nan_count,first,last';

/** Expected temp_c (and gain) per minute, in AGG order. */
const SKIP: unknown[][] = [
  [5, 45, 1, 9, 9, 2, 1, 9],
  [null, null, null, null, 0, 3, null, null],
  ['NaN', 'NaN', '-Infinity', 'Infinity', 3, 0, 'Infinity', 1],
  ['Infinity', 'Infinity', 2, 'Infinity', 2, 1, 'Infinity', 2],
];
const PROPAGATE: unknown[][] = [
  // At 1 s the 1 comes before the NaN (NaN orders after numbers); at 10 s the NaN is last.
  ['NaN', 'NaN', 'NaN', 'NaN', 11, 2, 1, 'NaN'],
  ['NaN', 'NaN', 'NaN', 'NaN', 3, 3, 'NaN', 'NaN'],
  ['NaN', 'NaN', '-Infinity', 'Infinity', 3, 0, 'Infinity', 1],
  ['NaN', 'NaN', 'NaN', 'NaN', 3, 1, 'Infinity', 'NaN'],
];

beforeAll(async () => {
  t = await createTestApp();
  const res0 = await t.request('/v1/streams', json({
    method: 'POST',
    body: { name: 'nan', tags: ['sample'], fields: [{ name: 'temp_c', type: 'float8' }, { name: 'gain', type: 'float4' }, { name: 'cnt', type: 'int4' }, { name: 'note', type: 'text' }] },
  }));
  expect(res0.status, await res0.text()).toBe(201);
  const n = READINGS.length;
  const body = arrowStream([pl.DataFrame([
    pl.Series('time', BigInt64Array.from(READINGS, ([dt]) => T0 + dt), pl.Int64).cast(pl.Datetime('us', 'UTC')),
    pl.Series('sample', READINGS.map((_, i) => (i % 2 ? 'A' : 'B')), pl.Utf8),
    pl.Series('temp_c', READINGS.map(([, v]) => v), pl.Float64),
    pl.Series('gain', READINGS.map(([, v]) => v), pl.Float32),
    pl.Series('cnt', Array.from({ length: n }, (_, i) => (i % 5 === 0 ? null : i)), pl.Int32),
    pl.Series('note', Array.from({ length: n }, (_, i) => (i % 4 === 0 ? null : `n${i}`)), pl.Utf8),
  ])]);
  const res = await t.request('/v1/streams/nan/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body });
  const out = await res.json() as { ingest: Record<string, unknown> };
  expect(res.status, JSON.stringify(out)).toBe(201);
  ingest = out.ingest;
});
afterAll(async () => { await t.close(); });

const range = { from: formatMicros(T0), to: formatMicros(T0 + 4n * MIN_US) };

function expectMinutes(rows: unknown[][], want: unknown[][], offset: number): void {
  expect(rows.length).toBe(4);
  for (let m = 0; m < 4; m++) {
    expect(rows[m][0]).toBe(formatMicros(T0 + BigInt(m) * MIN_US));
    expect(rows[m].slice(offset, offset + 8), `minute ${m}`).toEqual(want[m]);
  }
}

describe.each(['before', 'after'])('%s the refresh', (when) => {
  beforeAll(async () => { if (when === 'after') await refresh(t, 'nan'); });

  it.each([['skip', SKIP], ['propagate', PROPAGATE]] as const)('nan=%s answers every aggregate as the rule says, for float8 and float4', async (nan, want) => {
    const body = await query(t, 'nan', { resolution: '1m', ...range, fields: 'temp_c,gain', agg: AGG, ...(nan === 'skip' ? {} : { nan }) });
    expect(body.served.map((s) => s.source)).toEqual([when === 'after' ? '1m' : 'raw']);
    expect(body.nan).toBe(nan);
    expectMinutes(body.rows, want, 1);
    expectMinutes(body.rows, want, 9);
  });

  it('a field that cannot hold NaN answers the same in both modes, with nan_count 0', async () => {
    const params = { resolution: '1m', ...range, fields: 'cnt', agg: AGG };
    const skip = await query(t, 'nan', params);
    expect(await query(t, 'nan', { ...params, nan: 'propagate' })).toMatchObject({ rows: skip.rows });
    expect(skip.rows.every((r) => r[6] === 0)).toBe(true);
  });

  it.each([['skip', 7], ['propagate', 10]] as const)('nan=%s: group_by combines each tag set\'s parts', async (nan, count) => {
    const body = await query(t, 'nan', { resolution: '1h', ...range, fields: 'temp_c', agg: 'count,nan_count', group_by: 'sample', nan });
    // Samples take turns: each has 7 numbers (±∞ among them), 3 NaN and, B, the null.
    expect(body.rows.map((r) => r.slice(1))).toEqual([['A', count, 3], ['B', count, 3]]);
  });
});

describe('outputs', () => {
  it('writes NaN and ±Infinity in CSV and Arrow as in JSON', async () => {
    const base = `/v1/streams/nan/query?resolution=1m&from=${range.from}&to=${range.to}&fields=temp_c&agg=avg,max&nan=propagate`;
    const csv = (await (await t.request(`${base}&format=csv`)).text()).trim().split('\n');
    expect(csv[0]).toBe('time,temp_c_avg,temp_c_max');
    expect(csv.slice(1).map((l) => l.split(',').slice(1))).toEqual([['NaN', 'NaN'], ['NaN', 'NaN'], ['NaN', 'Infinity'], ['NaN', 'NaN']]);
    const arrow = tableFromIPC(new Uint8Array(await (await t.request(`${base}&format=arrow`)).arrayBuffer()));
    expect([...arrow.getChild('temp_c_max')!.toArray()]).toEqual([NaN, NaN, Infinity, NaN]);
    const skip = tableFromIPC(new Uint8Array(await (await t.request(`${base.replace('nan=propagate', 'nan=skip')}&format=arrow`)).arrayBuffer()));
    expect(skip.getChild('temp_c_avg')!.get(0)).toBe(5);
    expect(skip.getChild('temp_c_avg')!.get(1)).toBeNull();
  });

  it('refuses an unknown nan mode, on aggregates and on raw rows', async () => {
    for (const resolution of ['1m', 'raw']) {
      const res = await t.request(`/v1/streams/nan/query?resolution=${resolution}&from=${range.from}&to=${range.to}&nan=ignore`);
      expect(res.status).toBe(400);
      expect((await res.json() as { detail: string }).detail).toMatch(/nan="ignore": use skip .* or propagate/);
    }
    const raw = await query(t, 'nan', { ...range, fields: 'temp_c', nan: 'skip' });
    expect(raw.rows.filter((r) => r[r.length - 1] === 'NaN')).toHaveLength(6);
  });

  it('fills empty buckets: nan_count counts 0 there', async () => {
    const body = await query(t, 'nan', { resolution: '1m', from: range.from, to: formatMicros(T0 + 6n * MIN_US), fields: 'temp_c', agg: 'nan_count', fill: 'null' });
    expect(body.rows.map((r) => r[1])).toEqual([2, 3, 0, 1, 0, 0]);
  });
});

describe('M4 and LTTB', () => {
  it('M4: skip picks among the numbers; propagate has NaN as min (at the first NaN) and max (at the last), and a NaN last', async () => {
    const params = { resolution: '1m', from: range.from, to: formatMicros(T0 + MIN_US), fields: 'temp_c', agg: 'm4' };
    const at = (s: bigint): string => formatMicros(T0 + s * S);
    const skip = await query(t, 'nan', params);
    expect(skip.rows[0].slice(1)).toEqual([1, at(1n), 9, at(9n), 1, at(1n), 9, at(9n)]);
    const propagate = await query(t, 'nan', { ...params, nan: 'propagate' });
    expect(propagate.rows[0].slice(1)).toEqual([1, at(1n), 'NaN', at(10n), 'NaN', at(1n), 'NaN', at(10n)]);
  });

  it('LTTB: skip leaves NaN points out; propagate shows a bucket that holds one as its first NaN', async () => {
    // From 2 s: 2 … 9, then NaN at 10 s and in minute 1.
    const params = { resolution: 'lttb', max_points: '3', from: formatMicros(T0 + 2n * S), to: formatMicros(T0 + 2n * MIN_US), fields: 'temp_c' };
    const skip = await query(t, 'nan', params);
    expect(skip.rows).toHaveLength(3);
    expect(skip.rows[0]).toEqual([formatMicros(T0 + 2n * S), 2]);
    expect(skip.rows[2]).toEqual([formatMicros(T0 + 9n * S), 9]);
    const propagate = await query(t, 'nan', { ...params, nan: 'propagate' });
    expect(propagate.rows).toEqual([
      [formatMicros(T0 + 2n * S), 2], [formatMicros(T0 + 10n * S), 'NaN'], [formatMicros(T0 + MIN_US + 4n * S), 'NaN'],
    ]);
  });
});

describe('the ingest record', () => {
  it('counts NULL per column and NaN per float column', async () => {
    expect(ingest.field_stats).toEqual({
      sample: { null: 0 }, temp_c: { nan: 6, null: 1 }, gain: { nan: 6, null: 1 }, cnt: { null: 5 }, note: { null: 6 },
    });
    const res = await t.request(`/v1/ingests/${ingest.id as string}`);
    expect((await res.json() as { field_stats: unknown }).field_stats).toEqual(ingest.field_stats);
  });
});
