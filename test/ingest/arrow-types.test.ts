// Each Arrow type is stored, converted by its documented rule (README "Arrow types"), or refused:
// values written by polars are read back from PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_STREAM, arrowExpectations, fixture } from '../helpers/fixtures.ts';
import { T0, arrowStream, pl, times } from '../helpers/polars.ts';
import { streamTableOf } from '../helpers/stored.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

const post = (stream: string, body: Buffer, query = ''): Promise<Response> =>
  t.request(`/v1/streams/${stream}/ingest${query}`, { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body });

describe('type conversions', () => {
  it('stores integers, floats, dates, durations, times and decimals by the documented rules', async () => {
    const n = 4;
    const df = pl.DataFrame([
      pl.Series('time', times(T0, n, 1_000_000n), pl.Int64).cast(pl.Datetime('us', 'UTC')),
      pl.Series('i8', [-128, 127, 0, null], pl.Int8),
      pl.Series('u8', [0, 255, 1, 2], pl.UInt8),
      pl.Series('u16', [0, 65535, 1, null], pl.UInt16),
      pl.Series('u32', [0, 4294967295, 1, 2], pl.UInt32),
      pl.Series('f32', [1.5, NaN, -Infinity, null], pl.Float32),
      pl.Series('day', [0, 19783, -719162, null], pl.Int32).cast(pl.Date),
      pl.Series('dur', BigInt64Array.of(1n, 2n, -3n, 4n), pl.Int64).cast(pl.Duration('us')),
      pl.Series('dec', ['1.005', '-350.250', '0.000', null], pl.Utf8).cast(pl.Decimal(18, 3)),
    ]);
    const res = await post('conv', arrowStream([df]));
    expect(res.status, await res.clone().text()).toBe(201);
    const stream = await (await t.request('/v1/streams/conv')).json() as { fields: { name: string; type: string; unit: string | null }[] };
    const types = Object.fromEntries(stream.fields.map((f) => [f.name, f.type]));
    expect(types).toEqual({ i8: 'int2', u8: 'int2', u16: 'int4', u32: 'int8', f32: 'float4', day: 'timestamptz', dur: 'int8', dec: 'float8' });
    expect(stream.fields.find((f) => f.name === 'dur')?.unit).toBe('us');
    const { table, col } = await streamTableOf(t.db, 'conv');
    const { rows } = await t.db.pool.query(`SELECT ${['i8', 'u8', 'u16', 'u32', 'dur'].map((c) => `${col(c)}::text AS ${c}`).join(', ')},
      ${col('f32')}::text AS f32, to_char(${col('day')} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI AD') AS day, ${col('dec')} AS dec
      FROM ${table} ORDER BY "time"`);
    expect(rows).toEqual([
      { i8: '-128', u8: '0', u16: '0', u32: '0', dur: '1', f32: '1.5', day: '1970-01-01 00:00 AD', dec: 1.005 },
      { i8: '127', u8: '255', u16: '65535', u32: '4294967295', dur: '2', f32: 'NaN', day: '2024-03-01 00:00 AD', dec: -350.25 },
      { i8: '0', u8: '1', u16: '1', u32: '1', dur: '-3', f32: '-Infinity', day: '0001-01-01 00:00 AD', dec: 0 },
      { i8: null, u8: '2', u16: null, u32: '2', dur: '4', f32: null, day: null, dec: null },
    ]);
  });

  it('stores a second timestamp column as timestamptz, exact to the µs, counting sub-µs parts', async () => {
    const e = arrowExpectations()['two_time_cols.arrows'];
    const res = await post('second-ts', fixture('arrow/two_time_cols.arrows'));
    expect(res.status).toBe(201);
    const { ingest } = await res.json() as { ingest: { sub_microsecond_count: number; warnings: string[] } };
    expect(ingest.sub_microsecond_count).toBe(e.columns.t_acquired.sub_microsecond_count);
    expect(ingest.warnings.join(' ')).toMatch(/sub-microsecond/);
    const { table, col } = await streamTableOf(t.db, 'second-ts');
    const { rows } = await t.db.pool.query(`SELECT count(*) FILTER (WHERE ${col('t_acquired')} IS NULL)::int AS nulls FROM ${table}`);
    expect(rows[0].nulls).toBe(e.columns.t_acquired.nulls);
  });

  it('reads nanosecond timestamps exactly, flooring to the microsecond (also before 1970)', async () => {
    const ns = BigInt64Array.of(1_999n, -1n, -1_000n, -1_001n, 1n);
    const df = pl.DataFrame([pl.Series('time', ns, pl.Int64).cast(pl.Datetime('ns', 'UTC')), pl.Series('v', [1, 2, 3, 4, 5], pl.Float64)]);
    const res = await post('ns-floor', arrowStream([df]));
    expect(res.status, await res.clone().text()).toBe(201);
    const { ingest } = await res.json() as { ingest: { sub_microsecond_count: number } };
    expect(ingest.sub_microsecond_count).toBe(4);
    const { table } = await streamTableOf(t.db, 'ns-floor');
    const { rows } = await t.db.pool.query(`SELECT (extract(epoch FROM "time") * 1000000)::bigint::text AS us FROM ${table} ORDER BY v`);
    expect(rows.map((r) => r.us)).toEqual(['1', '-1', '-1', '-2', '0']);
  });

  it('adds new fields from later uploads and keeps old rows null there', async () => {
    const a = pl.DataFrame([pl.Series('time', times(T0, 3, 1_000_000n), pl.Int64).cast(pl.Datetime('us', 'UTC')), pl.Series('a', [1, 2, 3], pl.Float64)]);
    const b = pl.DataFrame([pl.Series('time', times(T0 + 10_000_000n, 2, 1_000_000n), pl.Int64).cast(pl.Datetime('us', 'UTC')),
      pl.Series('a', [4, 5], pl.Int32), pl.Series('b', [true, false], pl.Bool)]);
    expect((await post('grow', arrowStream([a]))).status).toBe(201);
    expect((await post('grow', arrowStream([b]))).status).toBe(201);
    const { table, col } = await streamTableOf(t.db, 'grow');
    const { rows } = await t.db.pool.query(`SELECT ${col('a')} AS a, ${col('b')} AS b FROM ${table} ORDER BY "time"`);
    expect(rows).toEqual([{ a: 1, b: null }, { a: 2, b: null }, { a: 3, b: null }, { a: 4, b: true }, { a: 5, b: false }]);
  });

  it('maps hostile column names to safe identifiers and keeps the original names', async () => {
    const names = ['x"; DROP TABLE strata.audit_log; --', 'Temp (°C)', 'time', 'ingest_id', 'a'.repeat(300)];
    const df = pl.DataFrame([
      pl.Series('ts', times(T0, 2, 1_000_000n), pl.Int64).cast(pl.Datetime('us', 'UTC')),
      ...names.map((name, i) => pl.Series(name, [i, i + 0.5], pl.Float64)),
    ]);
    const res = await post('hostile-cols', arrowStream([df]));
    expect(res.status, await res.clone().text()).toBe(201);
    const s = await (await t.request('/v1/streams/hostile-cols')).json() as { fields: { name: string; column: string }[] };
    expect(s.fields.map((f) => f.name)).toEqual(names);
    for (const f of s.fields) expect(f.column).toMatch(/^[a-z_][a-z0-9_]{0,62}$/);
    expect(new Set(s.fields.map((f) => f.column)).size).toBe(names.length);
    expect((await t.db.pool.query(`SELECT count(*)::int AS n FROM strata.audit_log`)).rows[0].n).toBeGreaterThan(0);
    const csv = await (await t.request(`/v1/streams/hostile-cols/query?fields=${encodeURIComponent(names[0])}&format=csv`)).text();
    expect(csv.split('\n')[0]).toBe(`time,"x""; DROP TABLE strata.audit_log; --"`);
  });
});
