// The query's other shapes: gap filling (null, previous, linear), local-time day buckets across
// the DST transitions, M4 and LTTB, rollup levels changed on a live stream, a field added by a
// later upload, and requests that cannot be answered.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { DAY_US, T0 } from '../helpers/polars.ts';
import {
  ALL_AGGS, HOUR_US, LAB_COLUMNS, type LabRows, MIN_US, createLabStream, expectSame, ingestLab, labRows, query, reference, refresh,
} from '../helpers/rollups.ts';
import { json } from '../helpers/uploads.ts';
import { formatMicros } from '../../src/domain/time.ts';
import { ARROW_STREAM } from '../helpers/fixtures.ts';
import { arrowStream, pl } from '../helpers/polars.ts';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
  await createLabStream(t, 'sparse');
  // About 40 readings over a day: most hours are empty.
  await ingestLab(t, 'sparse', labRows(41, T0, 40, 36n * MIN_US, ['A', 'B']));
  await refresh(t, 'sparse');
});
afterAll(async () => { await t.close(); });

type Row = (string | null)[];
const NUMBER_COLUMNS = new Set(LAB_COLUMNS.map(([f, a], i) => ((f === 'temp_c' || f === 'cnt') && a !== 'count') || (f === 'ok' && (a === 'avg' || a === 'sum')) ? i : -1));

/** The reference rows with every hour present, filled by the mode's rule. */
function filled(ref: Row[], buckets: bigint[], mode: 'null' | 'previous' | 'linear'): Row[] {
  const byTime = new Map(ref.map((r) => [r[0] as string, r]));
  const present = buckets.map((b) => byTime.get(b.toString()) ?? null);
  return buckets.map((b, k) => {
    if (present[k]) return present[k] as Row;
    return [b.toString(), ...LAB_COLUMNS.map(([, agg], c): string | null => {
      if (agg === 'count') return '0';
      let p = k - 1;
      while (p >= 0 && !present[p]) p--;
      if (mode === 'previous') return p >= 0 ? (present[p] as Row)[1 + c] : null;
      if (mode === 'null' || !NUMBER_COLUMNS.has(c) || p < 0) return null;
      let n = k + 1;
      while (n < buckets.length && !present[n]) n++;
      if (n >= buckets.length) return null;
      const y0 = (present[p] as Row)[1 + c]; const y1 = (present[n] as Row)[1 + c];
      if (y0 === null || y1 === null) return null;
      const f = Number(b - buckets[p]) / Number(buckets[n] - buckets[p]);
      return String(Number(y0) + (Number(y1) - Number(y0)) * f);
    })];
  });
}

describe('fill', () => {
  const from = T0;
  const to = T0 + DAY_US;
  const buckets = Array.from({ length: 24 }, (_, i) => from + BigInt(i) * HOUR_US);

  it.each(['null', 'previous', 'linear'] as const)('fill=%s: every hour, empty ones filled by the rule', async (mode) => {
    const body = await query(t, 'sparse', { resolution: '1h', from: formatMicros(from), to: formatMicros(to), agg: ALL_AGGS.join(','), fill: mode });
    const ref = await reference(t, 'sparse', { from, to, buckets: { kind: 'fixed', widthUs: HOUR_US } });
    expect(ref.length).toBeLessThan(24);
    expect(body.rows.length).toBe(24);
    const want = filled(ref, buckets, mode);
    for (let r = 0; r < 24; r++) {
      for (let c = 0; c < LAB_COLUMNS.length; c++) {
        const g = body.rows[r][1 + c]; const w = want[r][1 + c];
        const label = `${formatMicros(buckets[r])} ${LAB_COLUMNS[c].join('_')}`;
        if (w === null) expect(g, label).toBeNull();
        else if (typeof g === 'number') expect(Math.abs(g - Number(w)), label).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(Number(w))));
        else if (typeof g === 'boolean') expect(g, label).toBe(w === 'true');
        else expect(g, label).toBe(w);
      }
    }
  });

  it('fill=none leaves empty buckets out, the same with the refresh done or not', async () => {
    const body = await query(t, 'sparse', { resolution: '1h', from: formatMicros(from), to: formatMicros(to), agg: ALL_AGGS.join(',') });
    expectSame(body, await reference(t, 'sparse', { from, to, buckets: { kind: 'fixed', widthUs: HOUR_US } }));
  });
});

describe('tz: day buckets at local midnight', () => {
  beforeAll(async () => {
    await createLabStream(t, 'dst');
    // Hourly readings across both 2024 transitions in Berlin (31 March, 27 October).
    for (const start of [Date.UTC(2024, 2, 29), Date.UTC(2024, 9, 25)]) {
      const n = 5 * 24;
      const rows = labRows(51, 0n, n, 1n, ['A']);
      rows.time = Array.from({ length: n }, (_, i) => BigInt(start) * 1000n + BigInt(i) * HOUR_US + 17n * MIN_US);
      await ingestLab(t, 'dst', rows);
    }
    await refresh(t, 'dst');
  });

  it.each([
    ['March', '2024-03-29T00:00:00+01:00', '2024-04-02T00:00:00+02:00', '2024-03-31', 23],
    ['October', '2024-10-25T00:00:00+02:00', '2024-10-29T00:00:00+01:00', '2024-10-27', 25],
  ])('%s (%s – %s): day %s has %i hours, and every day equals the raw aggregation by local day', async (_m, fromText, toText, day, hours) => {
    const body = await query(t, 'dst', { resolution: '1d', tz: 'Europe/Berlin', from: fromText, to: toText, agg: ALL_AGGS.join(',') });
    const from = BigInt(Date.parse(fromText)) * 1000n;
    const to = BigInt(Date.parse(toText)) * 1000n;
    expectSame(body, await reference(t, 'dst', { from, to, buckets: { kind: 'local-day', tz: 'Europe/Berlin' } }));
    const starts = body.rows.map((r) => Date.parse(r[0] as string));
    const lengths = starts.slice(1).map((s, i) => (s - starts[i]) / 3600_000);
    const local = body.rows.map((r) => new Date(Date.parse(r[0] as string) + 12 * 3600_000).toISOString().slice(0, 10));
    const i = local.indexOf(day);
    expect(lengths[i]).toBe(hours);
    expect(i).toBeGreaterThan(0);
  });
});

describe('visual downsampling', () => {
  it('agg=m4: per bucket the first, last, min and max points with their times, as in the raw rows', async () => {
    const body = await query(t, 'sparse', { resolution: '6h', from: formatMicros(T0), to: formatMicros(T0 + DAY_US), agg: 'm4', fields: 'temp_c' });
    expect(body.columns.map((c) => c.name)).toEqual(['time', 'temp_c_first', 'temp_c_first_time', 'temp_c_last', 'temp_c_last_time', 'temp_c_min', 'temp_c_min_time', 'temp_c_max', 'temp_c_max_time']);
    const { rows: [meta] } = await t.db.pool.query("SELECT s.table_name, c.column_name FROM strata.streams s JOIN strata.stream_columns c ON c.stream_id = s.id WHERE s.name = 'sparse' AND c.name = 'temp_c'");
    const x = `"${meta.column_name}"`;
    const { rows } = await t.db.pool.query({
      rowMode: 'array',
      text: `SELECT date_bin('6 hours', "time", '1970-01-01Z'), (array_agg(${x} ORDER BY "time", ${x}) FILTER (WHERE ${x} IS NOT NULL))[1],
                    (array_agg("time" ORDER BY "time", ${x}) FILTER (WHERE ${x} IS NOT NULL))[1],
                    (array_agg(${x} ORDER BY "time" DESC, ${x} DESC) FILTER (WHERE ${x} IS NOT NULL))[1],
                    (array_agg("time" ORDER BY "time" DESC, ${x} DESC) FILTER (WHERE ${x} IS NOT NULL))[1],
                    min(${x}), (array_agg("time" ORDER BY ${x}, "time") FILTER (WHERE ${x} IS NOT NULL))[1],
                    max(${x}), (array_agg("time" ORDER BY ${x} DESC, "time" DESC) FILTER (WHERE ${x} IS NOT NULL))[1]
               FROM strata_data."${meta.table_name}" WHERE "time" >= $1 AND "time" < $2 GROUP BY 1 ORDER BY 1`,
      values: [new Date(Number(T0 / 1000n)), new Date(Number((T0 + DAY_US) / 1000n))],
    });
    expect(body.rows.length).toBe(rows.length);
    for (let r = 0; r < rows.length; r++) {
      const want = rows[r] as unknown[];
      const got = body.rows[r];
      expect(Date.parse(got[0] as string)).toBe((want[0] as Date).getTime());
      for (const k of [1, 3, 5, 7]) expect(got[k]).toBe(want[k]);
      for (const k of [2, 4, 6, 8]) expect(Date.parse(got[k] as string)).toBe((want[k] as Date).getTime());
    }
  });

  it('resolution=lttb: max_points raw readings, the first and last among them', async () => {
    const body = await query(t, 'sparse', { resolution: 'lttb', max_points: '12', fields: 'temp_c', from: formatMicros(T0), to: formatMicros(T0 + DAY_US) });
    expect(body.columns.map((c) => c.name)).toEqual(['time', 'temp_c']);
    expect(body.rows.length).toBe(12);
    const raw = await query(t, 'sparse', { resolution: 'raw', fields: 'temp_c', from: formatMicros(T0), to: formatMicros(T0 + DAY_US) });
    const points = raw.rows.filter((r) => r[1] !== null);
    const key = (r: unknown[]): string => `${r[0]}|${r[1]}`;
    const all = new Set(points.map(key));
    for (const r of body.rows) expect(all.has(key(r))).toBe(true);
    expect(key(body.rows[0])).toBe(key(points[0]));
    expect(key(body.rows[11])).toBe(key(points[points.length - 1]));
    expect(body.source).toBe('raw');
  });
});

describe('levels on a live stream', () => {
  it('changes the levels with PATCH; the new ones are built by the refresh and answer exactly', async () => {
    await createLabStream(t, 'relevel', { rollups: ['1h'] });
    await ingestLab(t, 'relevel', labRows(61, T0, 3000, 20_000_000n, ['A', 'B']));
    await refresh(t, 'relevel');
    const res = await t.request('/v1/streams/relevel', json({ method: 'PATCH', body: { rollups: ['5m', '1h', '1d'] } }));
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await res.json() as { rollups: string[] }).rollups).toEqual(['5m', '1h', '1d']);
    const from = T0; const to = T0 + DAY_US;
    for (const resolution of ['5m', '1h', '1d']) {
      const body = await query(t, 'relevel', { resolution, from: formatMicros(from), to: formatMicros(to), agg: ALL_AGGS.join(',') });
      expectSame(body, await reference(t, 'relevel', { from, to, buckets: { kind: 'fixed', widthUs: BigInt(resolution === '5m' ? 5n * MIN_US : resolution === '1h' ? HOUR_US : DAY_US) } }));
    }
    await refresh(t, 'relevel');
    const body = await query(t, 'relevel', { resolution: '15m', from: formatMicros(from), to: formatMicros(to), agg: ALL_AGGS.join(',') });
    expect(body.served.map((s) => s.source)).toEqual(['5m']);
    expectSame(body, await reference(t, 'relevel', { from, to, buckets: { kind: 'fixed', widthUs: 15n * MIN_US } }));
  });

  it('refuses levels that do not divide each other, naming them', async () => {
    const res = await t.request('/v1/streams/relevel', json({ method: 'PATCH', body: { rollups: ['7m', '1h'] } }));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/"1h" is not a whole multiple of "7m"/);
  });

  it('aggregates a field a later upload added, from that upload on', async () => {
    await createLabStream(t, 'grow', { rollups: ['1m', '1h'] });
    await ingestLab(t, 'grow', labRows(71, T0, 500, 20_000_000n, ['A']));
    await refresh(t, 'grow');
    const n = 300;
    const time = BigInt64Array.from({ length: n }, (_, i) => T0 + 2n * HOUR_US + BigInt(i) * 10_000_000n);
    const df = pl.DataFrame([
      pl.Series('time', time, pl.Int64).cast(pl.Datetime('us', 'UTC')),
      pl.Series('sample', Array(n).fill('A'), pl.Utf8),
      pl.Series('pressure', Float64Array.from({ length: n }, (_, i) => 1000 + i / 7), pl.Float64),
    ]);
    const up = await t.request('/v1/streams/grow/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: arrowStream([df]) });
    expect(up.status).toBe(201);
    await refresh(t, 'grow');
    const body = await query(t, 'grow', { resolution: '1h', fields: 'pressure', agg: 'count,sum,min,max', from: formatMicros(T0), to: formatMicros(T0 + DAY_US) });
    expect(body.served.map((s) => s.source)).toEqual(['1h']);
    const counts = body.rows.map((r) => r[1]);
    expect(counts.reduce((a, b) => (a as number) + (b as number), 0)).toBe(n);
    expect(body.rows.find((r) => (r[1] as number) > 0)?.[3]).toBe(1000);
  });
});

describe('first and last by the exact microsecond', () => {
  /**
   * In each of `minutes` minutes from `start`: readings at about +10 s, 1 µs later (two), about +50 s
   * and 1 µs earlier. The first value is the one at +10 s, though smaller ones follow 1 µs later;
   * the last is the larger of the two at +50 s, though a larger one came 1 µs before.
   */
  function closeRows(start: bigint, minutes: number): LabRows {
    const out: LabRows = { time: [], sample: [], temp: [], cnt: [], ok: [], note: [] };
    const add = (time: bigint, v: number): void => {
      out.time.push(time); out.sample.push('A'); out.temp.push(v + 0.25); out.cnt.push(v); out.ok.push(v > 4); out.note.push(`n${v}`);
    };
    for (let m = 0; m < minutes; m++) {
      const b = start + BigInt(m) * MIN_US;
      // (1 µs and 2 µs past a whole second: in 1690 float seconds since 1970 cannot tell them apart.)
      const s10 = b + 10_000_001n;
      const s50 = b + 50_000_002n;
      add(s10, 5); add(s10 + 1n, 1); add(s10 + 1n, 3);
      add(s50 - 1n, 9); add(s50, 2); add(s50, 7);
    }
    return out;
  }

  it.each([
    ['in 2024', T0],
    ['in 1690, where float seconds since 1970 no longer keep microseconds apart', BigInt(Date.UTC(1690, 0, 1)) * 1000n],
  ])('%s: the levels pick what the raw rows say', async (_label, start) => {
    const name = `close${start < 0n ? 'old' : 'new'}`;
    await createLabStream(t, name, { rollups: ['1m', '1h'] });
    await ingestLab(t, name, closeRows(start, 90));
    await refresh(t, name);
    const from = start;
    const to = start + 2n * HOUR_US;
    for (const [resolution, widthUs] of [['1m', MIN_US], ['1h', HOUR_US]] as const) {
      const body = await query(t, name, { resolution, from: formatMicros(from), to: formatMicros(to), agg: ALL_AGGS.join(',') });
      expect(body.served.map((p) => p.source)).toEqual([resolution]);
      expectSame(body, await reference(t, name, { from, to, buckets: { kind: 'fixed', widthUs } }));
    }
  });
});

describe('requests that cannot be answered', () => {
  it.each([
    ['resolution=fortnightly', /resolution="fortnightly"/],
    ['resolution=1h&agg=median', /agg="median"/],
    ['resolution=1h&fill=zero', /fill="zero"/],
    ['resolution=1d&tz=Mars/Olympus', /tz="Mars\/Olympus"/],
    ['resolution=1h&group_by=temp_c', /group_by="temp_c"/],
    ['resolution=1h&max_points=10', /max_points applies/],
    ['resolution=1h&fields=note&agg=avg', /note.*text/],
    ['resolution=lttb&max_points=10', /one numeric field/],
    ['resolution=1s&from=2000-01-01T00:00:00Z', /buckets/],
  ])('%s → 400 naming the problem', async (params, message) => {
    const res = await t.request(`/v1/streams/sparse/query?from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z&${params}`.replace(/from=2024-03-01T00:00:00Z&(.*)&from=/, '$1&from='));
    const text = await res.text();
    expect(res.status, text).toBe(400);
    expect((JSON.parse(text) as { detail: string }).detail).toMatch(message);
  });

  it('needs from', async () => {
    const res = await t.request('/v1/streams/sparse/query?resolution=1h');
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/from is required/);
  });
});
