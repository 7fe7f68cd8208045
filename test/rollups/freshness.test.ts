// Late data cannot fool the rollups: (a) a late ingest into an already-refreshed hour for one
// sample, before and after the refresh, recomputing only that sample's buckets; (b) an ingest
// spanning the watermark; (c) a query that ends in the future. The answer always equals the raw
// aggregation, whatever the refresh has done so far.
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { FakeClock, onClock } from '../helpers/clock.ts';
import { DAY_US, T0 } from '../helpers/polars.ts';
import { ALL_AGGS, HOUR_US, MIN_US, createLabStream, expectSame, ingestLab, labRows, reference, refresh, type QueryBody } from '../helpers/rollups.ts';
import { formatMicros } from '../../src/domain/time.ts';
import { parseInterval } from '../../src/domain/interval.ts';

let t: TestApp;
const clock = new FakeClock(Number((T0 + DAY_US + 12n * HOUR_US) / 1000n)); // day 2, 12:00
onClock(clock, async () => { t = await createTestApp(); }, () => t.close());

async function api(stream: string, resolution: string, from: bigint, to: bigint): Promise<QueryBody> {
  const res = await t.request(`/v1/streams/${stream}/query?resolution=${resolution}&from=${formatMicros(from)}&to=${formatMicros(to)}&agg=${ALL_AGGS.join(',')}`);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as QueryBody;
}

async function expectEqualsRaw(stream: string, from: bigint, to: bigint, resolutions = ['1m', '1h', '1d', '5m']): Promise<Record<string, string[]>> {
  const served: Record<string, string[]> = {};
  for (const resolution of resolutions) {
    const body = await api(stream, resolution, from, to);
    expectSame(body, await reference(t, stream, { from, to, buckets: { kind: 'fixed', widthUs: parseInterval(resolution) as bigint } }));
    served[resolution] = body.served.map((s) => s.source);
  }
  return served;
}

interface RefreshRow { level: string; kind: string; tag_values: string[] | null; range_start: Date; range_end: Date; source: string; rows_read: string; rows_written: string }

async function refreshesOf(runId: number): Promise<RefreshRow[]> {
  const { rows } = await t.db.pool.query<RefreshRow>('SELECT * FROM strata.rollup_refreshes WHERE run_id = $1 ORDER BY id', [runId]);
  return rows;
}

describe('(a) a late ingest into an already-refreshed hour, for one sample', () => {
  const LATE_HOUR = T0 + 5n * HOUR_US;
  let runId = 0;

  beforeAll(async () => {
    await createLabStream(t, 'late');
    await ingestLab(t, 'late', labRows(21, T0, 5000, 15_000_000n, ['A', 'B', 'C']));
    await refresh(t, 'late');
  });

  it('is answered exactly before the refresh, from finer data where the level is stale', async () => {
    // 300 more readings of sample B within 05:00–06:00, an hour every level has materialised.
    const late = labRows(22, LATE_HOUR, 300, 11_000_000n, ['B']);
    expect(late.time[late.time.length - 1] < LATE_HOUR + HOUR_US).toBe(true);
    await ingestLab(t, 'late', late);
    const { rows } = await t.db.pool.query<{ level: string; tag_values: string[] | null; s: Date; e: Date }>(
      `SELECT i.level, i.tag_values, i.range_start AS s, i.range_end AS e FROM strata.rollup_invalidations i
         JOIN strata.streams s ON s.id = i.stream_id WHERE s.name = 'late' ORDER BY i.level`);
    expect(rows.map((r) => [r.level, r.tag_values, r.s.toISOString(), r.e.toISOString()])).toEqual([
      ['1d', ['B'], '2024-03-01T00:00:00.000Z', '2024-03-02T00:00:00.000Z'],
      ['1h', ['B'], '2024-03-01T05:00:00.000Z', '2024-03-01T06:00:00.000Z'],
      ['1m', ['B'], expect.any(String), expect.any(String)],
    ]);
    expect(rows[2].s >= new Date(Number(LATE_HOUR / 1000n)) && rows[2].e <= new Date(Number((LATE_HOUR + HOUR_US) / 1000n))).toBe(true);
    const served = await expectEqualsRaw('late', T0, T0 + DAY_US);
    expect(served['1h']).toContain('raw');
  });

  it('is recomputed by the refresh for that sample and that hour only', async () => {
    const run = await refresh(t, 'late');
    runId = run.id;
    const done = await refreshesOf(runId);
    const invalidations = done.filter((r) => r.kind === 'invalidation');
    expect(invalidations.map((r) => r.level).sort()).toEqual(['1d', '1h', '1m']);
    for (const r of invalidations) expect(r.tag_values).toEqual(['B']);
    const m1 = invalidations.find((r) => r.level === '1m') as RefreshRow;
    const h1 = invalidations.find((r) => r.level === '1h') as RefreshRow;
    const d1 = invalidations.find((r) => r.level === '1d') as RefreshRow;
    expect(m1.source).toBe('raw');
    expect(h1.source).toBe('1m');
    expect(d1.source).toBe('1h');
    expect(h1.range_start.toISOString()).toBe('2024-03-01T05:00:00.000Z');
    expect(h1.range_end.toISOString()).toBe('2024-03-01T06:00:00.000Z');
    // Rows read: B's raw rows within the late range, not the stream's 5,300.
    const { rows: [b] } = await t.db.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM strata_data."${(await t.db.pool.query('SELECT table_name FROM strata.streams WHERE name = $1', ['late'])).rows[0].table_name}"
        WHERE "time" >= $1 AND "time" < $2 AND "${(await t.db.pool.query("SELECT c.column_name FROM strata.stream_columns c JOIN strata.streams s ON s.id = c.stream_id WHERE s.name = 'late' AND c.name = 'sample'")).rows[0].column_name}" = 'B'`,
      [m1.range_start, m1.range_end]);
    expect(Number(m1.rows_read)).toBe(Number(b.n));
    expect(Number(m1.rows_read)).toBeLessThan(700);
    expect(Number(h1.rows_read)).toBeLessThanOrEqual(60);
    expect(Number(d1.rows_read)).toBeLessThanOrEqual(24);
    const left = await t.db.pool.query("SELECT count(*)::int AS n FROM strata.rollup_invalidations i JOIN strata.streams s ON s.id = i.stream_id WHERE s.name = 'late'");
    expect(left.rows[0].n).toBe(0);
  });

  it('is answered exactly after the refresh, from the levels alone', async () => {
    const served = await expectEqualsRaw('late', T0, T0 + DAY_US);
    expect(served['1h']).toEqual(['1h']);
    expect(served['1d']).toEqual(['1d']);
  });
});

describe('(b) an ingest spanning the watermark, (c) a query that ends in the future', () => {
  beforeAll(async () => {
    await createLabStream(t, 'span');
    await ingestLab(t, 'span', labRows(31, T0, 4000, 30_000_000n, ['A', 'B'])); // up to about day 2, 09:20
    await refresh(t, 'span'); // now = day 2, 12:00: 1m and 1h up to 11:00/11:59, 1d up to day 2
  });

  it('records invalidations below the watermark only and answers exactly before and after the refresh', async () => {
    const start = T0 + DAY_US + 10n * HOUR_US;
    await ingestLab(t, 'span', labRows(32, start, 800, 18_000_000n, ['A', 'C'])); // 10:00 to about 14:00, across 12:00
    const { rows } = await t.db.pool.query<{ level: string; e: Date }>(
      `SELECT i.level, max(i.range_end) AS e FROM strata.rollup_invalidations i JOIN strata.streams s ON s.id = i.stream_id
        WHERE s.name = 'span' GROUP BY 1 ORDER BY 1`);
    const wm = await t.db.pool.query<{ level: string; watermark: Date }>(
      `SELECT l.level, l.watermark FROM strata.rollup_levels l JOIN strata.streams s ON s.id = l.stream_id WHERE s.name = 'span'`);
    for (const r of rows) expect(r.e <= (wm.rows.find((w) => w.level === r.level) as { watermark: Date }).watermark).toBe(true);
    expect(rows.map((r) => r.level)).toEqual(['1h', '1m']); // the 1d level is not yet past day 2
    await expectEqualsRaw('span', T0, T0 + 3n * DAY_US);
    clock.advance(6 * 3600_000); // 18:00
    await refresh(t, 'span');
    const served = await expectEqualsRaw('span', T0, T0 + 3n * DAY_US);
    expect(served['1h']).toEqual(['1h', '1m', 'raw']); // above the 1h watermark (17:00) 1m serves, above 17:59 raw
  });

  it('(c) answers a query ending in the future: the part above the watermarks from the raw rows', async () => {
    const future = BigInt(Date.now()) * 1000n + DAY_US;
    const body = await api('span', '1h', T0, future);
    const ref = await reference(t, 'span', { from: T0, to: future, buckets: { kind: 'fixed', widthUs: HOUR_US } });
    expectSame(body, ref);
    const last = body.served[body.served.length - 1];
    expect(last.source).toBe('raw');
    expect(last.ranges[last.ranges.length - 1].to).toBe(formatMicros(future));
    void MIN_US;
  });
});
