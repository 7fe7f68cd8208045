// Migration 007 on a database that already holds a stream, its levels and pending rows as the
// server wrote them before NaN was counted apart: the levels are turned back into that layout (no
// NaN columns; NaN inside n, sum, min, max, first and last, as PostgreSQL aggregates it), the
// migration is applied again, and then: buckets without NaN keep their parts, buckets with NaN
// are invalidated and answered from raw rows at once, the refresh rebuilds them to exactly what a
// build from scratch holds, and a bucket whose raw rows retention dropped keeps what it had.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { DAY_US, T0 } from '../helpers/polars.ts';
import {
  NAN_AGGS, NAN_COLUMNS, createLabStream, expectSame, ingestLab, labRows, query, reference, refresh,
} from '../helpers/rollups.ts';
import { json } from '../helpers/uploads.ts';
import { migrate } from '../../src/db/migrate.ts';
import { formatMicros } from '../../src/domain/time.ts';

let t: TestApp;
let streamId = 0;
let rawTable = '';
let pendTable = '';
let levels: { level: string; table: string; us: string }[] = [];
/** Level rows as a build from scratch made them, per level. */
const fresh = new Map<string, Record<string, unknown>[]>();
const NAN_COLS = ['c1_nan', 'c1_nanfirst', 'c1_nanlast'];

async function rows(table: string, from = T0, to = T0 + 3n * DAY_US): Promise<Record<string, unknown>[]> {
  const { rows: r } = await t.db.pool.query(
    `SELECT * FROM ${table} WHERE "time" >= $1::timestamptz AND "time" < $2::timestamptz ORDER BY "time", all_tags, 2`, [formatMicros(from), formatMicros(to)]);
  return r as Record<string, unknown>[];
}

/** temp_c (c1) aggregated as the server did before: NaN a value like any other. */
const OLD_PARTS = `count(r.temp_c) AS n, sum(r.temp_c) AS sum, min(r.temp_c) AS min, max(r.temp_c) AS max,
  min(ARRAY[(extract(epoch FROM r."time") * 1000000)::float8, r.temp_c]) FILTER (WHERE r.temp_c IS NOT NULL) AS f,
  max(ARRAY[(extract(epoch FROM r."time") * 1000000)::float8, r.temp_c]) FILTER (WHERE r.temp_c IS NOT NULL) AS l`;
const OLD_SET = 'c1_n = o.n, c1_sum = o.sum, c1_min = o.min, c1_max = o.max, c1_first = o.f[2], c1_first_t = o.f[1]::bigint, c1_last = o.l[2], c1_last_t = o.l[1]::bigint';

/** Puts the database back as the server before migration 007 left it. */
async function asBefore007(): Promise<void> {
  const q = (sql: string): Promise<unknown> => t.db.pool.query(sql);
  for (const l of levels) {
    const bucket = `date_bin('${l.us} microseconds'::interval, r."time", '1970-01-01 00:00:00+00'::timestamptz)`;
    await q(`ALTER TABLE ${l.table} ${NAN_COLS.map((c) => `DROP COLUMN ${c}`).join(', ')}`);
    await q(`UPDATE ${l.table} x SET ${OLD_SET} FROM (SELECT ${bucket} AS b, r.sample, ${OLD_PARTS} FROM ${rawTable} r GROUP BY 1, 2) o
      WHERE NOT x.all_tags AND x."time" = o.b AND x.sample = o.sample`);
    await q(`UPDATE ${l.table} x SET ${OLD_SET} FROM (SELECT ${bucket} AS b, ${OLD_PARTS} FROM ${rawTable} r GROUP BY 1) o
      WHERE x.all_tags AND x."time" = o.b`);
  }
  // The stream without text fields keeps pending rows; one as an upload wrote them then.
  await q(`ALTER TABLE ${pendTable} ${NAN_COLS.map((c) => `DROP COLUMN ${c}`).join(', ')}`);
  await q(`INSERT INTO ${pendTable} (ingest_id, "time", sample, "rows", c1_n, c1_sum, c1_min, c1_max, c1_first, c1_first_t, c1_last, c1_last_t)
    VALUES (1, '2030-01-01T00:00:00Z', 'A', 2, 2, 'NaN', 1, 'NaN', 1, 1893456000000000, 'NaN', 1893456001000000)`);
  await q(`ALTER TABLE strata.ingests DROP COLUMN field_stats`);
  await q('DROP FUNCTION strata.ingest_field_stats_are_fixed() CASCADE');
  await q('DELETE FROM strata.migrations WHERE id = 7');
}

beforeAll(async () => {
  t = await createTestApp();
  await createLabStream(t, 'old');
  await ingestLab(t, 'old', labRows(21, T0, 4000, 40_000_000n, ['A', 'B'], true));
  await refresh(t, 'old');
  const { rows: s } = await t.db.pool.query<{ id: number; table_name: string }>(`SELECT id, table_name FROM strata.streams WHERE name = 'old'`);
  streamId = s[0].id;
  rawTable = `strata_data."${s[0].table_name}"`;
  const p = await t.request('/v1/streams', json({ method: 'POST', body: { name: 'plain', tags: ['sample'], fields: [{ name: 'temp_c', type: 'float8' }] } }));
  expect(p.status).toBe(201);
  await refresh(t, 'plain');
  const { rows: ps } = await t.db.pool.query<{ table_name: string }>(`SELECT table_name FROM strata.streams WHERE name = 'plain'`);
  pendTable = `strata_data."${ps[0].table_name.slice(0, 36)}_pend"`;
  const { rows: l } = await t.db.pool.query<{ level: string; table_name: string; us: string }>(
    'SELECT level, table_name, interval_us::text AS us FROM strata.rollup_levels WHERE stream_id = $1 ORDER BY interval_us', [streamId]);
  levels = l.map((x) => ({ level: x.level, table: `strata_data."${x.table_name}"`, us: x.us }));
  for (const x of levels) fresh.set(x.level, await rows(x.table));
  await asBefore007();
});
afterAll(async () => { await t.close(); });

/** Level rows alike: sums to 1e-9 relative (PostgreSQL adds in the order it reads), the rest exactly. */
function expectSameRows(got: Record<string, unknown>[], want: Record<string, unknown>[], label: string): void {
  expect(got.length, label).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    for (const k of Object.keys(want[i])) {
      const a = got[i][k];
      const b = want[i][k];
      if (/_sum$/.test(k) && typeof a === 'number' && typeof b === 'number' && Number.isFinite(b)) {
        expect(Math.abs(a - b), `${label} row ${i} ${k}`).toBeLessThanOrEqual(Math.abs(b) * 1e-9);
      } else expect(a, `${label} row ${i} ${k}`).toEqual(b);
    }
  }
}

/** Both NaN modes over [from, to) at a resolution equal the raw aggregation; returns the sources. */
async function expectExact(resolution: string, from: bigint, to: bigint, widthUs: bigint): Promise<string[]> {
  const served = new Set<string>();
  for (const nan of ['skip', 'propagate'] as const) {
    const body = await query(t, 'old', { resolution, from: formatMicros(from), to: formatMicros(to), agg: NAN_AGGS.join(','), nan });
    expectSame(body, await reference(t, 'old', { from, to, buckets: { kind: 'fixed', widthUs }, columns: NAN_COLUMNS, nan }), { columns: NAN_COLUMNS });
    for (const p of body.served) served.add(p.source);
  }
  return [...served];
}

describe('migration 007 over levels written before it', () => {
  it('starts from levels with NaN in their parts', async () => {
    const m1 = await rows(levels[0].table);
    expect(m1.some((r) => Number.isNaN(r.c1_max))).toBe(true);
    expect(Object.keys(m1[0])).not.toContain('c1_nan');
  });

  it('adds the NaN parts, keeps buckets without NaN and invalidates those with NaN', async () => {
    // Retention had dropped the first day's raw rows: its buckets cannot be recounted.
    const { rows: c } = await t.db.pool.query<{ table_name: string }>(
      `SELECT table_name FROM strata.chunks WHERE stream_id = $1 AND level = 'raw' AND state = 'active' ORDER BY range_start LIMIT 1`, [streamId]);
    await t.db.pool.query(`DROP TABLE strata_data."${c[0].table_name}"`);
    await t.db.pool.query(`UPDATE strata.chunks SET state = 'dropped', dropped_at = now() WHERE table_name = $1`, [c[0].table_name]);

    expect(await migrate(t.db)).toEqual(['007_nan_parts']);
    for (const l of levels) {
      const now = await rows(l.table);
      const before = fresh.get(l.level) as Record<string, unknown>[];
      expect(now.length).toBe(before.length);
      for (let i = 0; i < now.length; i++) {
        if (Number.isNaN(now[i].c1_max)) expect(now[i].c1_nan, `${l.level} row ${i}`).toBeNull();
        else {
          expect(now[i].c1_nan).toBe('0');
          expect(Number(before[i].c1_nan), `${l.level} row ${i}: a bucket without NaN`).toBe(0);
          expectSameRows([{ ...now[i], c1_nan: null }], [{ ...before[i], c1_nan: null }], `${l.level} row ${i}`);
        }
      }
      const { rows: inv } = await t.db.pool.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM strata.rollup_invalidations WHERE stream_id = $1 AND level = $2 AND cause = 'migration:007_nan_parts' AND tag_values IS NULL`, [streamId, l.level]);
      expect(Number(inv[0].n), l.level).toBeGreaterThan(0);
    }
    const { rows: p } = await t.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM strata.rollup_levels WHERE pending_from IS NOT NULL');
    expect(p[0].n).toBe(0);
    const { rows: pend } = await t.db.pool.query(`SELECT * FROM ${pendTable}`);
    expect(pend).toEqual([]);
    const { rows: cols } = await t.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = $1::regclass AND attname = ANY($2) AND NOT attisdropped`, [pendTable, NAN_COLS]);
    expect(cols[0].n).toBe(3);
  });

  it('answers exactly in both modes at once, from raw rows where buckets wait for the refresh', async () => {
    const served = await expectExact('1m', T0 + DAY_US, T0 + 2n * DAY_US, 60_000_000n);
    expect(served).toContain('raw');
    await expectExact('1h', T0 + DAY_US, T0 + 2n * DAY_US, 3_600_000_000n);
  });

  it('rebuilds them with the refresh to what a build from scratch holds; the dropped day keeps its old parts', async () => {
    await refresh(t, 'old');
    const { rows: inv } = await t.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM strata.rollup_invalidations WHERE stream_id = $1', [streamId]);
    expect(inv[0].n).toBe(0);
    for (const l of levels) {
      const later = (fresh.get(l.level) as Record<string, unknown>[]).filter((r) => BigInt((r.time as Date).getTime()) * 1000n >= T0 + DAY_US);
      expectSameRows(await rows(l.table, T0 + DAY_US), later, l.level);
    }
    const day0 = await rows(levels[0].table, T0, T0 + DAY_US);
    expect(day0.some((r) => Number.isNaN(r.c1_max) && r.c1_nan === null)).toBe(true);
    expect(await expectExact('1m', T0 + DAY_US, T0 + 2n * DAY_US, 60_000_000n)).toEqual(['1m']);
    expect(await expectExact('1d', T0 + DAY_US, T0 + 2n * DAY_US, DAY_US)).toEqual(['1d']);
  });

  it('records NULL and NaN counts for uploads from then on', async () => {
    const id = await ingestLab(t, 'old', labRows(22, T0 + 2n * DAY_US, 50, 1_000_000_000n, ['A'], true));
    const res = await t.request(`/v1/ingests/${id}`);
    const rec = await res.json() as { field_stats: Record<string, { nan?: number; null: number }> };
    expect(rec.field_stats.temp_c.nan).toBeGreaterThan(0);
    expect(Object.keys(rec.field_stats).sort()).toEqual(['cnt', 'note', 'ok', 'sample', 'temp_c']);
  });
});
