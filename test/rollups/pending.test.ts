// Partial aggregates made while uploading (src/rollups/pending.ts): the refresh builds the finest
// level from them instead of reading the raw rows again, and the result is the same as from the
// raw rows — through the API against the raw aggregation in SQL, and part by part against the
// same buckets rebuilt from raw rows. Also: a retracted upload's pending rows go, an upload too
// sparse for partial aggregates invalidates its buckets instead, and changing the finest level or
// adding a timestamp field starts over from raw rows.
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { FakeClock, onClock } from '../helpers/clock.ts';
import { ARROW_STREAM } from '../helpers/fixtures.ts';
import { DAY_US, T0, arrowStream, pl } from '../helpers/polars.ts';
import { HOUR_US, MIN_US, expectSame, query, reference, refresh, rng } from '../helpers/rollups.ts';
import { json } from '../helpers/uploads.ts';
import { formatMicros } from '../../src/domain/time.ts';
import { parseInterval } from '../../src/domain/interval.ts';

let t: TestApp;
const clock = new FakeClock(Number((T0 + DAY_US + 12n * HOUR_US) / 1000n)); // day 2, 12:00
onClock(clock, async () => { t = await createTestApp(); }, () => t.close());

const COLUMNS: [string, string][] = [
  ['temp_c', 'avg'], ['temp_c', 'min'], ['temp_c', 'max'], ['temp_c', 'count'], ['temp_c', 'sum'], ['temp_c', 'first'], ['temp_c', 'last'],
  ['cnt', 'avg'], ['cnt', 'min'], ['cnt', 'max'], ['cnt', 'count'], ['cnt', 'sum'], ['cnt', 'first'], ['cnt', 'last'],
  ['big', 'avg'], ['big', 'min'], ['big', 'max'], ['big', 'count'], ['big', 'sum'], ['big', 'first'], ['big', 'last'],
  ['ok', 'avg'], ['ok', 'min'], ['ok', 'max'], ['ok', 'count'], ['ok', 'sum'],
];

interface Rows { time: bigint[]; sample: string[]; temp: (number | null)[]; gain: (number | null)[]; cnt: (number | null)[]; big: (bigint | null)[]; ok: (boolean | null)[] }

/**
 * n readings from `start`, gaps averaging `stepUs`; with `special`, some NaN and ±Infinity too;
 * `plain`: no nulls and no two readings at one time (partial aggregates take their fast path).
 */
function rows(seed: number, start: bigint, n: number, stepUs: bigint, samples: string[], special = false, plain = false): Rows {
  const r = rng(seed);
  const nul = plain ? 0 : 0.05;
  const out: Rows = { time: [], sample: [], temp: [], gain: [], cnt: [], big: [], ok: [] };
  let time = start;
  const specials = [NaN, Infinity, -Infinity];
  for (let i = 0; i < n; i++) {
    // Every tenth reading shares its time with the one before: ties for first and last.
    if (plain || i % 10 !== 0) time += 1n + BigInt(Math.floor(r() * 2 * Number(stepUs)));
    out.time.push(time);
    out.sample.push(samples[Math.floor(r() * samples.length)]);
    out.temp.push(r() < nul ? null : special && r() < 0.05 ? specials[Math.floor(r() * 3)] : Math.round((r() - 0.5) * 2e7) / 1e4);
    out.gain.push(r() < nul ? null : Math.fround(r() * 10));
    out.cnt.push(r() < nul ? null : Math.floor(r() * 1000) - 500);
    out.big.push(r() < nul ? null : BigInt(Math.floor(r() * 2 ** 30)) * 2n ** 32n + BigInt(Math.floor(r() * 2 ** 32)));
    out.ok.push(r() < nul ? null : r() < 0.5);
  }
  return out;
}

function body(x: Rows, stamped = false): Buffer {
  return arrowStream([pl.DataFrame([
    pl.Series('time', BigInt64Array.from(x.time), pl.Int64).cast(pl.Datetime('us', 'UTC')),
    pl.Series('sample', x.sample, pl.Utf8),
    pl.Series('temp_c', x.temp, pl.Float64),
    pl.Series('gain', x.gain, pl.Float32),
    pl.Series('cnt', x.cnt, pl.Int32),
    pl.Series('big', x.big.map((v) => (v === null ? null : Number(v))), pl.Int64),
    pl.Series('ok', x.ok, pl.Bool),
    ...(stamped ? [pl.Series('checked_at', BigInt64Array.from(x.time), pl.Int64).cast(pl.Datetime('us', 'UTC'))] : []),
  ])]);
}

async function upload(stream: string, x: Rows, stamped = false): Promise<string> {
  const res = await t.request(`/v1/streams/${stream}/ingest`, { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: body(x, stamped) });
  const b = await res.json() as { ingest: { id: string } };
  expect(res.status, JSON.stringify(b)).toBe(201);
  return b.ingest.id;
}

async function createStream(name: string): Promise<void> {
  const res = await t.request('/v1/streams', json({
    method: 'POST',
    body: {
      name, tags: ['sample'],
      fields: [{ name: 'temp_c', type: 'float8' }, { name: 'gain', type: 'float4' }, { name: 'cnt', type: 'int4' }, { name: 'big', type: 'int8' }, { name: 'ok', type: 'bool' }],
    },
  }));
  expect(res.status, await res.clone().text()).toBe(201);
}

async function tables(stream: string): Promise<{ pend: string; m1: string; raw: string; id: number }> {
  const { rows: r } = await t.db.pool.query<{ id: number; table_name: string }>('SELECT id, table_name FROM strata.streams WHERE name = $1', [stream]);
  const { rows: l } = await t.db.pool.query<{ table_name: string }>('SELECT table_name FROM strata.rollup_levels WHERE stream_id = $1 ORDER BY interval_us LIMIT 1', [r[0].id]);
  return { id: r[0].id, raw: `strata_data."${r[0].table_name}"`, pend: `strata_data."${r[0].table_name.slice(0, 36)}_pend"`, m1: `strata_data."${l[0].table_name}"` };
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows: r } = await t.db.pool.query<Record<string, string>>(sql, params);
  return Number(Object.values(r[0])[0]);
}

async function expectEqualsRaw(stream: string, from: bigint, to: bigint, resolutions = ['1m', '1h', '1d', '15s']): Promise<void> {
  // Numbers with every aggregate; the bool field with those it answers.
  const numbers = COLUMNS.filter(([f]) => f !== 'ok');
  const bools = COLUMNS.filter(([f]) => f === 'ok');
  for (const resolution of resolutions) {
    const buckets = { kind: 'fixed' as const, widthUs: parseInterval(resolution) as bigint };
    for (const [fields, agg, columns] of [['temp_c,cnt,big', 'avg,min,max,count,sum,first,last', numbers], ['ok', 'avg,min,max,count,sum', bools]] as const) {
      const b = await query(t, stream, { resolution, from: formatMicros(from), to: formatMicros(to), fields, agg });
      expectSame(b, await reference(t, stream, { from, to, buckets, columns: [...columns] }), { columns: [...columns] });
    }
  }
}

interface RefreshRow { level: string; kind: string; source: string; rows_read: string; tag_values: unknown }

async function refreshesOf(runId: number): Promise<RefreshRow[]> {
  return (await t.db.pool.query<RefreshRow>('SELECT level, kind, source, rows_read::text, tag_values FROM strata.rollup_refreshes WHERE run_id = $1 ORDER BY id', [runId])).rows;
}

/**
 * Two versions of level rows, part by part: sums to 1e-6 relative (gain is float4, and PostgreSQL
 * sums real in real, in whatever order it reads the rows), everything else exactly.
 */
function expectSameParts(got: Record<string, unknown>[], want: Record<string, unknown>[]): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    for (const k of Object.keys(want[i])) {
      const a = got[i][k];
      const b = want[i][k];
      if (/_sum$/.test(k) && typeof b === 'number' && typeof a === 'number' && a !== b && !(Number.isNaN(a) && Number.isNaN(b))) {
        expect(Math.abs(a - b), `row ${i} ${k}: ${a} vs ${b}`).toBeLessThanOrEqual(Math.abs(b) * 1e-6);
      } else expect(a, `row ${i} ${k}`).toEqual(b);
    }
  }
}

/** The finest level's rows of [from, to), ordered. */
async function levelRows(table: string, from: bigint, to: bigint): Promise<Record<string, unknown>[]> {
  const { rows: r } = await t.db.pool.query(
    `SELECT * FROM ${table} WHERE "time" >= $1::timestamptz AND "time" < $2::timestamptz ORDER BY "time", all_tags, 2`, [formatMicros(from), formatMicros(to)]);
  return r as Record<string, unknown>[];
}

/**
 * The stream's finest level over [from, to) as the pending rows built it, then invalidated and
 * rebuilt from the raw rows by the next refresh: both must hold the same parts.
 */
async function expectPendingEqualsRaw(stream: string, from: bigint, to: bigint): Promise<Record<string, unknown>[]> {
  const { m1, id } = await tables(stream);
  const fromPending = await levelRows(m1, from, to);
  await t.db.pool.query(
    `INSERT INTO strata.rollup_invalidations (stream_id, level, tag_values, range_start, range_end, cause) VALUES ($1, '1m', NULL, $2::timestamptz, $3::timestamptz, 'test')`,
    [id, formatMicros(from), formatMicros(to)]);
  const run = await refresh(t, stream);
  expect((await refreshesOf(run.id)).filter((r) => r.level === '1m').map((r) => r.source)).toEqual(['raw']);
  expectSameParts(fromPending, await levelRows(m1, from, to));
  return fromPending;
}

describe('a stream refreshed from pending rows', () => {
  const S = 'pend';
  let retracted = '';
  let rawRows = 0;
  let runId = 0;

  beforeAll(async () => {
    await createStream(S);
    // Two uploads over the same day, their readings interleaved; one over day 2's morning.
    await upload(S, rows(1, T0, 30_000, 2_000_000n, ['A', 'B', 'C']));
    await upload(S, rows(2, T0 + 7n * MIN_US, 30_000, 2_000_000n, ['A', 'B', 'D']));
    await upload(S, rows(3, T0 + DAY_US, 20_000, 1_000_000n, ['A', 'C']));
    retracted = await upload(S, rows(4, T0 + DAY_US + HOUR_US, 2000, 500_000n, ['B']));
    const { raw } = await tables(S);
    rawRows = await count(`SELECT count(*) FROM ${raw}`);
  });

  it('keeps partial aggregates of each upload, far fewer than its rows, and drops a retracted upload\'s', async () => {
    const { pend } = await tables(S);
    const before = await count(`SELECT count(*) FROM ${pend}`);
    expect(before).toBeGreaterThan(0);
    expect(before * 5).toBeLessThan(rawRows);
    expect(await count(`SELECT count(*) FROM ${pend} WHERE ingest_id = $1`, [retracted])).toBeGreaterThan(0);
    const res = await t.request(`/v1/ingests/${retracted}/retract`, json({ method: 'POST', body: { reason: 'wrong probe' } }));
    expect(res.status, await res.text()).toBe(200);
    expect(await count(`SELECT count(*) FROM ${pend} WHERE ingest_id = $1`, [retracted])).toBe(0);
    expect(await count(`SELECT sum("rows") FROM ${pend}`)).toBe(rawRows - 2000);
  });

  it('builds the finest level from them, reading none of the raw rows, and empties them up to the watermark', async () => {
    const run = await refresh(t, S);
    runId = run.id;
    const done = await refreshesOf(runId);
    const m1 = done.filter((r) => r.level === '1m');
    expect(m1.length).toBeGreaterThan(0);
    for (const r of m1) expect(r).toMatchObject({ kind: 'advance', source: 'pending' });
    expect(m1.reduce((n, r) => n + Number(r.rows_read), 0) * 5).toBeLessThan(rawRows);
    const { pend } = await tables(S);
    expect(await count(`SELECT count(*) FROM ${pend}`)).toBe(0);
  });

  it('answers every level and an ad-hoc resolution exactly as the raw aggregation', async () => {
    await expectEqualsRaw(S, T0, T0 + 2n * DAY_US);
  });

  it('holds, part by part, what a rebuild from the raw rows holds', async () => {
    await expectPendingEqualsRaw(S, T0, T0 + DAY_US + 11n * HOUR_US);
  });
});

describe('NaN, ±Infinity, ties and int8 beyond 2^53', () => {
  it('come out of pending rows as out of raw rows', async () => {
    const S = 'pend-special';
    await createStream(S);
    await upload(S, rows(11, T0, 3000, 3_000_000n, ['A', 'B'], true));
    await upload(S, rows(12, T0 + 30n * MIN_US, 3000, 3_000_000n, ['A', 'B'], true));
    const run = await refresh(t, S);
    expect((await refreshesOf(run.id)).filter((r) => r.level === '1m').every((r) => r.source === 'pending')).toBe(true);
    const before = await expectPendingEqualsRaw(S, T0, T0 + DAY_US);
    // NaN is counted apart (temp_c is c1, gain c2): the other parts hold none.
    expect(before.some((r) => Number(r.c1_nan) > 0 && r.c1_nanfirst !== null)).toBe(true);
    expect(before.some((r) => Object.entries(r).some(([k, v]) => /^c\d+_(min|max|first|last)$/.test(k) && Number.isNaN(v)))).toBe(false);
  });
});

describe('changing what pending rows can serve', () => {
  it('starts over from raw rows when a finer level is added, and stops for a timestamp field', async () => {
    const S = 'pend-change';
    await createStream(S);
    await upload(S, rows(31, T0, 6000, 2_000_000n, ['A', 'B']));
    await refresh(t, S);
    await upload(S, rows(32, T0 + DAY_US + 12n * HOUR_US, 2000, 1_000_000n, ['A', 'B'])); // above the watermark
    const { pend, id } = await tables(S);
    expect(await count(`SELECT count(*) FROM ${pend}`)).toBeGreaterThan(0);

    const p = await t.request(`/v1/streams/${S}`, json({ method: 'PATCH', body: { rollups: ['15s', '1m', '1h', '1d'] } }));
    expect(p.status, await p.text()).toBe(200);
    expect(await count(`SELECT count(*) FROM ${pend}`)).toBe(0);
    const { rows: l } = await t.db.pool.query<{ level: string; p: Date | null }>('SELECT level, pending_from AS p FROM strata.rollup_levels WHERE stream_id = $1 ORDER BY interval_us', [id]);
    expect(l.map((x) => x.level)).toEqual(['15s', '1m', '1h', '1d']);
    expect(l[0].p?.toISOString()).toBe(new Date(Number((T0 + 2n * DAY_US) / 1000n)).toISOString()); // past the last raw chunk
    expect(l.slice(1).every((x) => x.p === null)).toBe(true);
    await refresh(t, S);
    await expectEqualsRaw(S, T0, T0 + 2n * DAY_US, ['15s', '1m', '1h']);

    // A timestamp field (a second timestamp column): uploads keep no partial aggregates of those,
    // so no level keeps pending rows.
    await upload(S, rows(33, T0 + DAY_US + 2n * HOUR_US, 500, 10_000_000n, ['A']), true);
    const { rows: after } = await t.db.pool.query<{ p: Date | null }>('SELECT pending_from AS p FROM strata.rollup_levels WHERE stream_id = $1', [id]);
    expect(after.every((x) => x.p === null)).toBe(true);
    const run = await refresh(t, S);
    expect((await refreshesOf(run.id)).filter((r) => r.level === '15s').every((r) => r.source === 'raw')).toBe(true);
    await expectEqualsRaw(S, T0, T0 + 2n * DAY_US, ['15s', '1m', '1h']);
  });
});

describe('uploads without nulls or readings at one time', () => {
  it('take first and last from each group\'s earliest and latest row, and agree with raw rows', async () => {
    const S = 'pend-plain';
    await createStream(S);
    await upload(S, rows(41, T0, 20_000, 500_000n, ['A', 'B', 'C'], true, true));
    await upload(S, rows(42, T0 + 30n * MIN_US, 20_000, 500_000n, ['A', 'B', 'C'], true, true));
    const run = await refresh(t, S);
    expect((await refreshesOf(run.id)).filter((r) => r.level === '1m').every((r) => r.source === 'pending')).toBe(true);
    await expectPendingEqualsRaw(S, T0, T0 + DAY_US);
  });
});

describe('an upload too sparse for partial aggregates', () => {
  const S = 'pend-sparse';
  let w = 0n;

  beforeAll(async () => {
    await createStream(S);
    await upload(S, rows(21, T0 + DAY_US, 6000, 1_000_000n, ['A', 'B']));
    await refresh(t, S);
    const { rows: l } = await t.db.pool.query<{ w: Date }>(`SELECT watermark AS w FROM strata.rollup_levels l JOIN strata.streams s ON s.id = l.stream_id WHERE s.name = $1 AND level = '1m'`, [S]);
    w = BigInt(l[0].w.getTime()) * 1000n;
  });

  it('invalidates its buckets above the watermark for every tag set instead', async () => {
    // 600 readings, one every 2 minutes or so, from just after the watermark: about a bucket each.
    await upload(S, rows(22, w + MIN_US / 2n, 600, 2n * MIN_US, ['A', 'B', 'C']));
    const { pend, id } = await tables(S);
    expect(await count(`SELECT count(*) FROM ${pend} WHERE "time" >= $1::timestamptz`, [formatMicros(w)])).toBe(0);
    const { rows: inv } = await t.db.pool.query<{ tag_values: unknown; s: Date }>(`SELECT tag_values, range_start AS s FROM strata.rollup_invalidations WHERE stream_id = $1 AND level = '1m'`, [id]);
    expect(inv).toHaveLength(1);
    expect(inv[0].tag_values).toBeNull();
    expect(BigInt(inv[0].s.getTime()) * 1000n).toBe(w);
  });

  it('is answered exactly while the watermark passes it, and after its buckets are rebuilt from raw rows', async () => {
    clock.set(Number((T0 + 3n * DAY_US) / 1000n));
    await refresh(t, S);
    await expectEqualsRaw(S, T0 + DAY_US, T0 + 3n * DAY_US, ['1m', '1h']);
    const run = await refresh(t, S);
    const inv = (await refreshesOf(run.id)).filter((r) => r.level === '1m' && r.kind === 'invalidation');
    expect(inv.map((r) => [r.source, r.tag_values])).toContainEqual(['raw', null]);
    await expectEqualsRaw(S, T0 + DAY_US, T0 + 3n * DAY_US, ['1m', '1h', '1d']);
  });
});
