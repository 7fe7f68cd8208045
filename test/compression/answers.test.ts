// Answers do not change when chunks are compressed. Pairs of streams get the same uploads; one of
// each keeps its chunks plain (compress_after null), the other has them compressed by the job.
// Every query shape — raw rows in each format and with filters and limits, each rollup level,
// ad-hoc resolutions, every aggregate, fill, tz, group_by, nan=propagate, M4, LTTB, auto, trace —
// answers the same on both, after compression, after late data into a compressed chunk (before
// and after the rollups refresh and the next compression run), and after a retraction.
// The first pair (levels 1m, 1h) is rolled up before compression, and rebuilds from decoded
// segments. The second (levels 12h, 1d) is rolled up only after: its 12h level is built over
// compressed chunks, from the statistics of the segments that fall inside one bucket and from the
// decoded rows of the others, in the same buckets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { DAY_US, T0 } from '../helpers/polars.ts';
import { ALL_AGGS, HOUR_US, MIN_US, type RunRecord, createLabStream, ingestLab, labRows, refresh } from '../helpers/rollups.ts';
import { formatMicros, pgTimestamp } from '../../src/domain/time.ts';
import { decodeSegment } from '../../src/compression/segment.ts';
import { findSegments, loadSegments } from '../../src/compression/store.ts';
import { getStream } from '../../src/streams/catalog.ts';
import { rawBatches } from '../../src/query/raw.ts';
import type { ColumnBatch } from '../../src/domain/types.ts';
import { json } from '../helpers/uploads.ts';

const PLAIN = 'plain';
const PACKED = 'packed';
const PLAIN_12H = 'plain12h';
const PACKED_12H = 'packed12h';
interface Pair { plain: string; packed: string }
const PAIRS: Pair[] = [{ plain: PLAIN, packed: PACKED }, { plain: PLAIN_12H, packed: PACKED_12H }];
const SAMPLES = ['A', 'B', 'C'];
const from = formatMicros(T0);
const to = formatMicros(T0 + 3n * DAY_US);
const mid = formatMicros(T0 + DAY_US + 7n * 3_600_000_000n + 123_456n);

let t: TestApp;
const ingests: Record<string, string[]> = Object.fromEntries(PAIRS.flatMap((p) => [[p.plain, []], [p.packed, []]]));

async function both(rows: ReturnType<typeof labRows>): Promise<void> {
  for (const stream of Object.keys(ingests)) ingests[stream].push(await ingestLab(t, stream, rows));
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
  ...['1m', '1h', '1d', '15min', '7s', '3h', '12h'].map((resolution) => ({ from, to, resolution, agg: ALL_AGGS.join(',') })),
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

/** Ingest ids differ between the twin streams: map each stream's to their order. */
function sameIds(stream: string, text: string): string {
  let out = text;
  ingests[stream].forEach((id, k) => { out = out.replaceAll(`"${id}"`, `"#${k}"`); });
  return out;
}

async function expectSameAnswers(stage: string, pairs: readonly Pair[] = PAIRS, queries: readonly Record<string, string>[] = QUERIES): Promise<void> {
  for (const { plain, packed } of pairs) await expectSameAnswersOf(`${stage} (${packed})`, plain, packed, queries);
}

async function expectSameAnswersOf(stage: string, plain: string, packed: string, queries: readonly Record<string, string>[]): Promise<void> {
  for (const q of queries) {
    const raw = (text: string): string => (q.resolution ? text : tiesSorted(text));
    const a = raw(await answer(plain, 'query', q));
    const b = raw(await answer(packed, 'query', q));
    if (q.resolution && b !== a) {
      expectCloseFloats(JSON.parse(b), JSON.parse(a), `${stage}: query ${JSON.stringify(q)}`);
      continue;
    }
    expect(b, `${stage}: query ${JSON.stringify(q)}`).toBe(a);
  }
  if (queries !== QUERIES) return;
  for (const q of [{ time: mid } as Record<string, string>, { time: formatMicros(T0 + DAY_US + 3_600_000_000n), resolution: '1h' }, { time: from, resolution: '1d', 'tag.sample': 'A' }]) {
    const a = sameIds(plain, await answer(plain, 'provenance', q));
    const b = sameIds(packed, await answer(packed, 'provenance', q));
    // Trace names ingests, whose records differ only in id and stream; compare the rows matched.
    const pick = (s: string): unknown => { const j = JSON.parse(s) as { ingests: { rows_matched: number }[]; readings: unknown[] }; return { n: j.ingests.map((i) => i.rows_matched), readings: j.readings }; };
    expect(pick(b), `${stage}: provenance ${JSON.stringify(q)}`).toEqual(pick(a));
  }
}

/** A batch's rows as text: time, then each cell — floats by their bits (NaN payloads, −0), NULL as ∅. */
function rowsOf(batch: ColumnBatch): string[] {
  const bitOf = (bitmap: Uint8Array, i: number): boolean => (bitmap[i >> 3] & (1 << (i & 7))) !== 0;
  const cells = batch.columns.map(({ values, validity }) => (i: number): string => {
    if (validity && !bitOf(validity.bitmap, validity.offset + i)) return '∅';
    switch (values.kind) {
      case 'number': return values.values instanceof Float64Array ? new BigUint64Array(values.values.buffer, values.values.byteOffset, values.values.length)[i].toString(16) : String(values.values[i]);
      case 'bigint': return String(values.values[i]);
      case 'bits': return bitOf(values.bitmap, values.offset + i) ? 't' : 'f';
      case 'strings': return values.values[i] ?? '∅';
      case 'utf8': return Buffer.from(values.data.subarray(Number(values.offsets[i]), Number(values.offsets[i + 1]))).toString();
      case 'dictionary': { const e = values.entries[Number(values.indices[i])]; return e === null ? '∅' : Buffer.from(e).toString(); }
      default: throw new Error(`unexpected ${values.kind}`);
    }
  });
  return Array.from({ length: batch.length }, (_, i) => [String(batch.time[i]), ...cells.map((c) => c(i))].join(' '));
}

/**
 * The raw rows of a stream as the export reads them (segments merged with plain rows), in batches
 * of `batchRows`: the batches' rows in order, with their sizes.
 */
async function mergedRows(stream: string, batchRows: number, limit: number | null = null): Promise<{ rows: string[]; sizes: number[] }> {
  const s = await getStream(t.db.pool, stream);
  if (!s) throw new Error(`no stream ${stream}`);
  const out = { rows: [] as string[], sizes: [] as number[] };
  for await (const b of rawBatches(t.db, { stream: s, from: null, to: null, columns: s.columns, tags: new Map(), limit }, batchRows)) {
    out.rows.push(...rowsOf(b));
    out.sizes.push(b.length);
  }
  return out;
}

/** Raw rows merged from segments and plain rows, at batch sizes that cut runs anywhere, match the plain stream's. */
async function expectSameMergedRows(): Promise<void> {
  const want = await mergedRows(PLAIN, 65_536);
  const time = (r: string): bigint => BigInt(r.slice(0, r.indexOf(' ')));
  for (const batchRows of [1, 3, 64, 1000]) {
    const got = await mergedRows(PACKED, batchRows);
    expect(got.sizes.slice(0, -1).every((n) => n === batchRows), `batches of ${batchRows}`).toBe(true);
    expect(got.rows.every((r, i) => i === 0 || time(got.rows[i - 1]) <= time(r)), `time order, batches of ${batchRows}`).toBe(true);
    // Rows sharing an instant come in no particular order.
    expect([...got.rows].sort(), `rows, batches of ${batchRows}`).toEqual([...want.rows].sort());
    const limited = await mergedRows(PACKED, batchRows, 777);
    expect(limited.rows.map(time), `limit 777, batches of ${batchRows}`).toEqual(want.rows.slice(0, 777).map(time));
  }
}

/** What the rollups job says of a stream's levels: segments answered from statistics and decoded. */
function segmentsRead(run: RunRecord, stream: string): Record<string, { summarised: number; decoded: number }> {
  const levels = ((run.details.streams as Record<string, { levels: Record<string, { segments_summarised?: number; segments_decoded?: number }> }>)[stream]?.levels) ?? {};
  return Object.fromEntries(Object.entries(levels).map(([l, v]) => [l, { summarised: v.segments_summarised ?? 0, decoded: v.segments_decoded ?? 0 }]));
}

beforeAll(async () => {
  t = await createTestApp();
  await createLabStream(t, PLAIN, { rollups: ['1m', '1h'], compress_after: null });
  await createLabStream(t, PACKED, { rollups: ['1m', '1h'] });
  await createLabStream(t, PLAIN_12H, { rollups: ['12h', '1d'], compress_after: null });
  await createLabStream(t, PACKED_12H, { rollups: ['12h', '1d'] });
  // Three days, NaN, ±Infinity, NULLs and instants shared by two readings, in three uploads.
  await both(labRows(1, T0, 2500, MIN_US, SAMPLES, true));
  await both(labRows(2, T0 + 12n * HOUR_US, 2000, 2n * MIN_US, SAMPLES, true));
  await both(labRows(3, T0 + 2n * DAY_US, 600, MIN_US / 2n, ['A'], false));
  await refresh(t, PLAIN);
  await refresh(t, PACKED);
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
    await expectSameMergedRows();
  });

  it('a level built over compressed chunks takes the segments inside one bucket from their statistics', async () => {
    expect(Object.values(segmentsRead(await refresh(t, PLAIN_12H), PLAIN_12H))).toEqual([{ summarised: 0, decoded: 0 }, { summarised: 0, decoded: 0 }]);
    const read = segmentsRead(await refresh(t, PACKED_12H), PACKED_12H);
    // The 12h level is built from raw rows: the second upload's segments of the first day (12:00
    // to midnight) and the third upload's (five hours) from statistics, the others decoded; 1d from 12h.
    expect(read['12h'].summarised, JSON.stringify(read)).toBeGreaterThanOrEqual(4);
    expect(read['12h'].decoded, JSON.stringify(read)).toBeGreaterThan(0);
    expect(read['1d'], JSON.stringify(read)).toEqual({ summarised: 0, decoded: 0 });
    await expectSameAnswers('built over compressed chunks', [PAIRS[1]]);
  });

  it('late rows into a compressed chunk are seen at once, rolled up, and compressed on their own', async () => {
    await both(labRows(4, T0 + DAY_US + 600_000_000n, 300, MIN_US / 3n, ['B', 'D'], true));
    await expectSameAnswers('late, before refresh');
    await expectSameMergedRows();
    await refresh(t);
    await expectSameAnswers('late, after refresh');
    const segmentsOf = (stream: string): Promise<{ rows: { id: string; n: string }[] }> => t.db.pool.query<{ id: string; n: string }>(
      'SELECT s.id::text, s.row_count::text AS n FROM strata_data.segments s JOIN strata.streams st ON st.id = s.stream_id WHERE st.name = $1 ORDER BY s.id', [stream]);
    const before = await segmentsOf(PACKED);
    await compress();
    const after = await segmentsOf(PACKED);
    // No recompression storm: every segment there was is still there, unchanged; new ones hold the late rows.
    expect(after.rows.slice(0, before.rows.length)).toEqual(before.rows);
    expect(after.rows.slice(before.rows.length).reduce((a, r) => a + Number(r.n), 0)).toBe(300);
    await expectSameAnswers('late, compressed');
  });

  it('a retraction removes the ingest\'s segments; answers still agree', async () => {
    for (const stream of Object.keys(ingests)) {
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

  it('a segment inside one bucket is not decoded: with its data unreadable, the level is rebuilt from its statistics', async () => {
    const packed = await getStream(t.db.pool, PACKED_12H);
    if (!packed) throw new Error('no stream');
    // Every segment whose rows lie within one 12h bucket loses its encoded columns.
    const bucket = (c: string): string => `date_bin('12 hours', ${c}, '1970-01-01 00:00:00+00')`;
    const spoilt = await t.db.pool.query<{ id: string }>(
      `UPDATE strata_data.segments SET time_data = '\\xdeadbeef', data = array_fill('\\xdeadbeef'::bytea, ARRAY[cardinality(data)])
        WHERE stream_id = $1 AND ${bucket('time_min')} = ${bucket('time_max')} RETURNING id::text`, [packed.id]);
    expect(spoilt.rows.length).toBeGreaterThanOrEqual(3);
    const refs = (await findSegments(t.db.pool, { streamId: packed.id, from: null, to: null })).filter((r) => spoilt.rows.some((x) => x.id === r.id));
    const [seg] = await loadSegments(t.db.pool, packed.id, refs.slice(0, 1));
    expect(() => decodeSegment(seg, packed.columns)).toThrow();
    // Both streams rebuild both levels over the whole range, every tag set, from raw rows.
    for (const stream of [PLAIN_12H, PACKED_12H]) {
      const s = await getStream(t.db.pool, stream);
      for (const level of ['12h', '1d']) {
        await t.db.pool.query(
          `INSERT INTO strata.rollup_invalidations (stream_id, level, tag_values, range_start, range_end, cause) VALUES ($1, $2, NULL, $3::timestamptz, $4::timestamptz, 'test')`,
          [s?.id, level, pgTimestamp(T0), pgTimestamp(T0 + 4n * DAY_US)]);
      }
    }
    await refresh(t, PLAIN_12H);
    const read = segmentsRead(await refresh(t, PACKED_12H), PACKED_12H);
    expect(read['12h'].summarised, JSON.stringify(read)).toBe(spoilt.rows.length);
    // What levels serve (raw rows would need the spoilt segments decoded).
    const levelQueries: Record<string, string>[] = [
      { from, to, resolution: '12h', agg: ALL_AGGS.join(',') }, { from, to, resolution: '1d', agg: ALL_AGGS.join(',') },
      { from, to, resolution: '12h', agg: 'avg,min,max,sum,count,nan_count', nan: 'propagate', group_by: 'sample' },
    ];
    await expectSameAnswers('segments unreadable', [PAIRS[1]], levelQueries);
  });
});
