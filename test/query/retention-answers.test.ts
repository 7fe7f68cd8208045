// Answers after retention: each part of a range is served by what still holds it, never a
// silently smaller answer. Stream "tiers" keeps raw rows 10 days and the 1m level 20 days (1h and
// 1d forever); its data covers days 161–200 and the clock stands at the end of day 200, so raw
// rows are gone for days 161–190 and the 1m level for days 161–180. Stream "lost" keeps only an
// 1h level, for 100 days, so nothing holds days 1–40 any more.
import { beforeAll, describe, expect, it } from 'vitest';
import { tableFromIPC } from 'apache-arrow';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { FakeClock, onClock } from '../helpers/clock.ts';
import { type QueryBody, createLabStream, query, refresh } from '../helpers/rollups.ts';
import { HOUR_US, day, iso, levelTables, loadDays, registry, runRetention } from '../retention/helpers.ts';

const MIN_US = 60_000_000n;
const clock = new FakeClock(Number(day(201) / 1000n));
let t: TestApp;
onClock(clock, async () => { t = await createTestApp(); }, () => t.close());

type Served = { source: string; coarsened?: boolean; ranges: { from: string; to: string }[] };
type Body = QueryBody & { served: Served[]; gaps: { from: string; to: string; held_by?: string[] }[] };

const total = (body: QueryBody): number => body.rows.reduce((n, r) => n + (r[1] as number), 0);

async function get(stream: string, params: Record<string, string>): Promise<Response> {
  const res = await t.request(`/v1/streams/${stream}/query?${new URLSearchParams(params)}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return res;
}

describe('stream tiers: raw 10 days, 1m 20 days, 1h and 1d forever', () => {
  const before: Record<string, Body> = {};
  const autoDay = { resolution: 'auto', from: iso(day(170)), to: iso(day(171)), fields: 'temp_c', agg: 'count,sum' };
  const edgeGone = { resolution: '1h', from: iso(day(165) + 30n * MIN_US + 20_000_000n), to: iso(day(175)), fields: 'temp_c', agg: 'count' };
  const edgeMinute = { resolution: '1h', from: iso(day(185) + 30n * MIN_US + 20_000_000n), to: iso(day(188)), fields: 'temp_c', agg: 'count' };
  const lttbGone = { resolution: 'lttb', from: iso(day(165)), to: iso(day(175)), fields: 'temp_c', max_points: '200' };

  beforeAll(async () => {
    await createLabStream(t, 'tiers', { retention: { raw: '10 days', '1m': '20 days' } });
    await loadDays(t, 'tiers', 161, 40);
    await refresh(t, 'tiers');
    for (const [name, params] of Object.entries({ autoDay, edgeGone, edgeMinute, lttbGone })) before[name] = await query(t, 'tiers', params) as Body;
    const run = await runRetention(t, 'tiers');
    expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
  });

  it('answered everything exactly before retention, declaring nothing', () => {
    for (const body of Object.values(before)) {
      expect(body.gaps).toEqual([]);
      expect(body.served.some((s) => s.coarsened)).toBe(false);
    }
    expect(before.autoDay.level).toBe('1m');
    expect(total(before.autoDay)).toBeGreaterThan(80);
  });

  it('auto over a day whose raw rows and 1m buckets are gone: the 1h level answers, declared as coarsened', async () => {
    const res = await get('tiers', autoDay);
    const after = await res.json() as Body;
    expect(after.rows.length).toBe(24);
    expect(total(after)).toBe(total(before.autoDay));
    expect(after.served).toEqual([{ source: '1h', coarsened: true, ranges: [{ from: iso(day(170)), to: iso(day(171)) }] }]);
    expect(after.gaps).toEqual([]);
    expect(res.headers.get('strata-coarsened')).toBe(`1h ${iso(day(170))}/${iso(day(171))}`);
    // Every reading is counted, in the bucket where its hour starts: as many as the 1h level holds per hour.
    const hours = await query(t, 'tiers', { ...autoDay, resolution: '1h' });
    const w = (day(171) - day(170)) / 1000n; // max_points 1000
    const autoBucket = (time: string): string => iso(day(170) + ((BigInt(Date.parse(time)) * 1000n - day(170)) / w) * w);
    expect(after.rows.map((r) => [r[0], r[1]])).toEqual(hours.rows.map((r) => [autoBucket(r[0] as string), r[1]]));
  });

  it('a 1h query from a point inside an hour whose raw rows and 1m buckets are gone: that hour is served whole by 1h, declared', async () => {
    const res = await get('tiers', edgeGone);
    const after = await res.json() as Body;
    const firstHour = { from: iso(day(165)), to: iso(day(165) + HOUR_US) };
    expect(after.served).toEqual([
      { source: '1h', ranges: [{ from: firstHour.to, to: iso(day(175)) }] },
      { source: '1h', coarsened: true, ranges: [firstHour] },
    ]);
    expect(res.headers.get('strata-coarsened')).toBe(`1h ${firstHour.from}/${firstHour.to}`);
    // Every other bucket is as it was; the first holds the whole hour's readings, more than before.
    expect(after.rows.slice(1)).toEqual(before.edgeGone.rows.slice(1));
    const whole = await query(t, 'tiers', { resolution: '1h', from: firstHour.from, to: firstHour.to, fields: 'temp_c', agg: 'count' });
    expect(after.rows[0]).toEqual(whole.rows[0]);
    expect(after.rows[0][1] as number).toBeGreaterThanOrEqual(before.edgeGone.rows[0][1] as number);
  });

  it('where the 1m level is kept, the edge is served by its whole minute only', async () => {
    const after = await query(t, 'tiers', edgeMinute) as Body;
    const minute = day(185) + 30n * MIN_US;
    expect(after.served.filter((s) => s.coarsened)).toEqual([{ source: '1m', coarsened: true, ranges: [{ from: iso(minute), to: iso(minute + MIN_US) }] }]);
    expect(after.rows.slice(1)).toEqual(before.edgeMinute.rows.slice(1));
    expect(after.gaps).toEqual([]);
  });

  it('lttb over days whose raw rows are gone picks its points from the finest level left, declared', async () => {
    expect(before.lttbGone.source).toBe('raw');
    const after = await query(t, 'tiers', lttbGone) as Body;
    expect(after.rows.length).toBe(200);
    expect(after.served).toEqual([
      { source: '1h', coarsened: true, ranges: [{ from: iso(day(165)), to: iso(day(175)) }] },
    ]);
    for (const r of after.rows) expect(BigInt(Date.parse(r[0] as string)) * 1000n % HOUR_US).toBe(0n);
  });

  it('a raw query over dropped days declares them as gaps', async () => {
    const res = await get('tiers', { from: iso(day(189)), to: iso(day(192)), format: 'csv' });
    expect(res.headers.get('strata-gaps')).toBe(`${iso(day(189))}/${iso(day(191))}`);
    expect((await res.text()).trim().split('\n').length).toBe(1 + 96);
  });
});

describe('stream lost: one 1h level kept 100 days, raw 5 days', () => {
  const params = { resolution: '1h', from: iso(day(30)), to: iso(day(201)), fields: 'temp_c', agg: 'count' };
  const recent = { ...params, from: iso(day(190)) };
  const day196 = { ...params, resolution: '1m', from: iso(day(196)), to: iso(day(197)) };
  const before: Record<string, QueryBody> = {};

  beforeAll(async () => {
    await createLabStream(t, 'lost', { rollups: ['1h'], retention: { raw: '5 days', '1h': '100 days' } });
    await loadDays(t, 'lost', 1, 40);
    await loadDays(t, 'lost', 190, 11);
    await refresh(t, 'lost');
    before.recent = await query(t, 'lost', recent);
    before.day196 = await query(t, 'lost', day196);
    const run = await runRetention(t, 'lost');
    expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
  });

  it('declares in JSON what nothing holds any more, and answers the rest', async () => {
    const body = await query(t, 'lost', params) as Body;
    expect(body.gaps).toEqual([{ from: iso(day(30)), to: iso(day(41)) }]);
    expect(total(body)).toBe(total(before.recent));
    expect(body.served.map((s) => s.source)).toEqual(['1h', 'raw']);
  });

  it('says so in a header for CSV, and in a header and the schema metadata for Arrow', async () => {
    const csv = await get('lost', { ...params, format: 'csv' });
    expect(csv.headers.get('strata-gaps')).toBe(`${iso(day(30))}/${iso(day(41))}`);
    const arrow = await get('lost', { ...params, format: 'arrow' });
    expect(arrow.headers.get('strata-gaps')).toBe(`${iso(day(30))}/${iso(day(41))}`);
    const table = tableFromIPC(new Uint8Array(await arrow.arrayBuffer()));
    expect(JSON.parse(table.schema.metadata.get('strata.gaps') as string)).toEqual([{ from: iso(day(30)), to: iso(day(41)) }]);
    expect(JSON.parse(table.schema.metadata.get('strata.served') as string).map((s: Served) => s.source)).toEqual(['1h', 'raw']);
    expect(table.numRows).toBe((await query(t, 'lost', params)).rows.length);
  });

  it('says "none" served a range nothing holds any more', async () => {
    const res = await get('lost', { ...params, from: iso(day(2)), to: iso(day(3)) });
    expect(res.headers.get('strata-served-by')).toBe('none');
    expect(((await res.json()) as Body).rows).toEqual([]);
  });

  it('a raw chunk being dropped (detached, not yet marked dropped) is a gap while it is away', async () => {
    const [chunk] = (await registry(t, 'lost')).filter((c) => c.state === 'active' && c.start_us === day(198));
    const parent = (await levelTables(t, 'lost')).raw;
    const range = { from: iso(day(198)), to: iso(day(199)) };
    await t.db.pool.query(`ALTER TABLE strata_data."${parent}" DETACH PARTITION strata_data."${chunk.table_name}"`);
    try {
      const away = await query(t, 'lost', range) as Body;
      expect(away.gaps).toEqual([range]);
      expect(away.rows).toEqual([]);
    } finally {
      await t.db.pool.query(`ALTER TABLE strata_data."${parent}" ATTACH PARTITION strata_data."${chunk.table_name}" FOR VALUES FROM ('${range.from}') TO ('${range.to}')`);
    }
    const back = await query(t, 'lost', range) as Body;
    expect(back.gaps).toEqual([]);
    expect(back.rows.length).toBe(96);
  });

  it('a raw query lists the raw gaps, those the level still answers too', async () => {
    const body = await query(t, 'lost', { from: iso(day(30)), to: iso(day(201)) }) as Body;
    expect(body.gaps).toEqual([{ from: iso(day(30)), to: iso(day(41)) }, { from: iso(day(190)), to: iso(day(196)) }]);
    expect(body.rows.length).toBe(5 * 96);
  });

  it('a resolution no level can serve over days only a coarser level holds: a gap naming that level', async () => {
    const body = await query(t, 'lost', { resolution: '1m', from: iso(day(191)), to: iso(day(197)), fields: 'temp_c', agg: 'count' }) as Body;
    expect(body.gaps).toEqual([{ from: iso(day(191)), to: iso(day(196)), held_by: ['1h'] }]);
    expect(total(body)).toBe(total(before.day196));
  });
});
