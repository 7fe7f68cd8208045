// Answers do not change when chunks are compressed. Two streams get the same uploads; one keeps
// its chunks plain (compress_after null), the other has them compressed by the job. Every query
// shape — raw rows in each format and with filters and limits, each rollup level, ad-hoc
// resolutions, every aggregate, fill, tz, group_by, nan=propagate, M4, LTTB, auto, trace —
// answers the same on both, after compression, after late data into a compressed chunk (before
// and after the rollups refresh and the next compression run), and after a retraction.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { DAY_US, T0 } from '../helpers/polars.ts';
import { ALL_AGGS, MIN_US, createLabStream, ingestLab, labRows, refresh } from '../helpers/rollups.ts';
import { formatMicros } from '../../src/domain/time.ts';
import { json } from '../helpers/uploads.ts';

const PLAIN = 'plain';
const PACKED = 'packed';
const SAMPLES = ['A', 'B', 'C'];
const from = formatMicros(T0);
const to = formatMicros(T0 + 3n * DAY_US);
const mid = formatMicros(T0 + DAY_US + 7n * 3_600_000_000n + 123_456n);

let t: TestApp;
const ingests: Record<string, string[]> = { [PLAIN]: [], [PACKED]: [] };

async function both(rows: ReturnType<typeof labRows>): Promise<void> {
  ingests[PLAIN].push(await ingestLab(t, PLAIN, rows));
  ingests[PACKED].push(await ingestLab(t, PACKED, rows));
}

async function compress(): Promise<Record<string, unknown>> {
  const res = await t.request('/v1/jobs/compression/run', { method: 'POST' });
  const run = await res.json() as { outcome: string; rows: number; chunks: number; details: Record<string, unknown> };
  expect(res.status, JSON.stringify(run)).toBe(200);
  expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
  return run;
}

const QUERIES: Record<string, string>[] = [
  { from, to },
  { from, to, format: 'csv' },
  { from: mid, to, 'tag.sample': 'B' },
  { from: mid, limit: '777' },
  { from, to, fields: 'temp_c,note', 'tag.sample': 'A', format: 'csv' },
  {},
  ...['1m', '1h', '1d', '15min', '7s', '3h'].map((resolution) => ({ from, to, resolution, agg: ALL_AGGS.join(',') })),
  { from, to, resolution: '1h', agg: ALL_AGGS.join(','), group_by: 'sample' },
  { from: mid, to, resolution: '1h', agg: 'avg,count,sum', fill: 'linear' },
  { from: mid, to, resolution: '10min', agg: 'avg,min,max', fill: 'previous', 'tag.sample': 'C' },
  { from, to, resolution: '1d', agg: 'avg,count,first,last', tz: 'Europe/Berlin' },
  { from, to, resolution: '1h', agg: 'avg,min,max,sum,count,nan_count', nan: 'propagate' },
  { from, to, resolution: '1h', agg: 'm4', fields: 'temp_c' },
  { from, to, resolution: '30min', agg: 'm4', fields: 'temp_c', group_by: 'sample' },
  { from, to, resolution: 'lttb', max_points: '200', fields: 'temp_c' },
  { from, to, resolution: 'lttb', max_points: '100', fields: 'cnt', group_by: 'sample' },
  { from, to, resolution: 'auto', max_points: '300', agg: ALL_AGGS.join(',') },
  { from, to, resolution: 'auto', max_points: '50000', agg: 'avg,count' },
];

/** What must not differ between the streams: the body without the stream's name. */
async function answer(stream: string, path: string, params: Record<string, string>): Promise<string> {
  const res = await t.request(`/v1/streams/${stream}/${path}?${new URLSearchParams(params)}`);
  const text = await res.text();
  expect(res.status, `${path} ${JSON.stringify(params)}: ${text.slice(0, 300)}`).toBe(200);
  return text.replaceAll(`"${stream}"`, '"S"').replace(/"ingest":\{[^}]*"id":"(\d+)"/g, '');
}

/**
 * Raw rows sharing an instant come in no particular order (ORDER BY time, as PostgreSQL gives
 * them): sort each run of rows with the same time (one row a line, in JSON and CSV).
 */
function tiesSorted(text: string): string {
  const sep = '\n';
  const lines = text.split(sep);
  const key = (l: string): string => l.slice(0, l.indexOf(','));
  const out: string[] = [];
  for (let i = 0; i < lines.length;) {
    let j = i + 1;
    // The first and last pieces carry the envelope: never moved.
    while (i > 0 && j < lines.length - 1 && key(lines[j]) === key(lines[i])) j++;
    out.push(...(i > 0 ? lines.slice(i, j).sort() : lines.slice(i, j)));
    i = j;
  }
  return out.join(sep);
}

/**
 * Aggregates: equal, except that a float sum (and the average from it) may differ in its last
 * digits — PostgreSQL adds a group's rows in the order its plan meets them, which differs between
 * plans (hash or sort aggregation, parallel or not) whether or not a chunk is compressed.
 */
function expectCloseFloats(got: unknown, want: unknown, label: string): void {
  if (typeof got === 'number' && typeof want === 'number' && !Number.isInteger(want)) {
    expect(Math.abs(got - want), `${label}: ${got} vs ${want}`).toBeLessThanOrEqual(1e-13 * Math.max(1, Math.abs(want)));
  } else if (Array.isArray(want) && Array.isArray(got)) {
    expect(got.length, label).toBe(want.length);
    want.forEach((w, i) => expectCloseFloats(got[i], w, label));
  } else if (want !== null && typeof want === 'object' && got !== null && typeof got === 'object') {
    expect(Object.keys(got).sort(), label).toEqual(Object.keys(want).sort());
    for (const k of Object.keys(want)) expectCloseFloats((got as Record<string, unknown>)[k], (want as Record<string, unknown>)[k], label);
  } else {
    expect(got, label).toEqual(want);
  }
}

/** Ingest ids differ between the twin streams: map the packed stream's to the plain one's. */
function sameIds(text: string): string {
  let out = text;
  ingests[PACKED].forEach((id, k) => { out = out.replaceAll(`"${id}"`, `"#${k}"`); });
  return out;
}
function plainIds(text: string): string {
  let out = text;
  ingests[PLAIN].forEach((id, k) => { out = out.replaceAll(`"${id}"`, `"#${k}"`); });
  return out;
}

async function expectSameAnswers(stage: string): Promise<void> {
  for (const q of QUERIES) {
    const raw = (text: string): string => (q.resolution ? text : tiesSorted(text));
    const a = raw(await answer(PLAIN, 'query', q));
    const b = raw(await answer(PACKED, 'query', q));
    if (q.resolution && b !== a) {
      expectCloseFloats(JSON.parse(b), JSON.parse(a), `${stage}: query ${JSON.stringify(q)}`);
      continue;
    }
    expect(b, `${stage}: query ${JSON.stringify(q)}`).toBe(a);
  }
  for (const q of [{ time: mid } as Record<string, string>, { time: formatMicros(T0 + DAY_US + 3_600_000_000n), resolution: '1h' }, { time: from, resolution: '1d', 'tag.sample': 'A' }]) {
    const a = plainIds(await answer(PLAIN, 'provenance', q));
    const b = sameIds(await answer(PACKED, 'provenance', q));
    // Trace names ingests, whose records differ only in id and stream; compare the rows matched.
    const pick = (s: string): unknown => { const j = JSON.parse(s) as { ingests: { rows_matched: number }[]; readings: unknown[] }; return { n: j.ingests.map((i) => i.rows_matched), readings: j.readings }; };
    expect(pick(b), `${stage}: provenance ${JSON.stringify(q)}`).toEqual(pick(a));
  }
}

beforeAll(async () => {
  t = await createTestApp();
  await createLabStream(t, PLAIN, { rollups: ['1m', '1h'], compress_after: null });
  await createLabStream(t, PACKED, { rollups: ['1m', '1h'] });
  // Three days, NaN, ±Infinity, NULLs and instants shared by two readings, in three uploads.
  await both(labRows(1, T0, 2500, MIN_US, SAMPLES, true));
  await both(labRows(2, T0 + 12n * 3_600_000_000n, 2000, 2n * MIN_US, SAMPLES, true));
  await both(labRows(3, T0 + 2n * DAY_US, 600, MIN_US / 2n, ['A'], false));
  await refresh(t);
});
afterAll(async () => { await t.close(); });

describe('answers on compressed chunks', () => {
  it('compresses the old chunks of the stream that asks for it, and only those', async () => {
    const run = await compress();
    expect(Number((run as { chunks: number }).chunks)).toBeGreaterThanOrEqual(3);
    const { rows } = await t.db.pool.query<{ name: string; plain: string; packed: string }>(
      `SELECT s.name, sum(coalesce(c.compressed_rows, 0))::text AS packed, count(*) FILTER (WHERE c.compressed_at IS NULL)::text AS plain
         FROM strata.chunks c JOIN strata.streams s ON s.id = c.stream_id WHERE c.level = 'raw' AND c.state = 'active' GROUP BY s.name ORDER BY s.name`);
    expect(rows.find((r) => r.name === PACKED)?.packed).toBe('5100');
    expect(rows.find((r) => r.name === PLAIN)?.packed).toBe('0');
    const left = await t.db.pool.query(`SELECT count(*)::int AS n FROM strata_data.${(await t.db.pool.query('SELECT table_name FROM strata.streams WHERE name = $1', [PACKED])).rows[0].table_name}`);
    expect(left.rows[0].n).toBe(0);
  });

  it('answers every query shape as the plain stream does', async () => {
    await expectSameAnswers('compressed');
  });

  it('late rows into a compressed chunk are seen at once, rolled up, and compressed on their own', async () => {
    await both(labRows(4, T0 + DAY_US + 600_000_000n, 300, MIN_US / 3n, ['B', 'D'], true));
    await expectSameAnswers('late, before refresh');
    await refresh(t);
    await expectSameAnswers('late, after refresh');
    const before = await t.db.pool.query<{ id: string; n: string }>('SELECT s.id::text, s.row_count::text AS n FROM strata_data.segments s ORDER BY s.id');
    await compress();
    const after = await t.db.pool.query<{ id: string; n: string }>('SELECT s.id::text, s.row_count::text AS n FROM strata_data.segments s ORDER BY s.id');
    // No recompression storm: every segment there was is still there, unchanged; new ones hold the late rows.
    expect(after.rows.slice(0, before.rows.length)).toEqual(before.rows);
    expect(after.rows.slice(before.rows.length).reduce((a, r) => a + Number(r.n), 0)).toBe(300);
    await expectSameAnswers('late, compressed');
  });

  it('a retraction removes the ingest\'s segments; answers still agree', async () => {
    for (const stream of [PLAIN, PACKED]) {
      const res = await t.request(`/v1/ingests/${ingests[stream][1]}/retract`, json({ method: 'POST', body: { reason: 'wrong calibration' } }));
      expect(res.status, await res.clone().text()).toBe(200);
      const body = await res.json() as { retraction: { rows: number } };
      expect(body.retraction.rows).toBe(2000);
    }
    const { rows } = await t.db.pool.query('SELECT count(*)::int AS n FROM strata_data.segments WHERE ingest_id = $1', [ingests[PACKED][1]]);
    expect(rows[0].n).toBe(0);
    await expectSameAnswers('retracted, before refresh');
    await refresh(t);
    await expectSameAnswers('retracted, after refresh');
  });
});
