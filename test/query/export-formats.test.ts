// Raw export from binary COPY: Arrow, CSV and Parquet of every column type, across batch
// boundaries, read back by nodejs-polars (an independent reader) and compared value by value
// with the frame that was uploaded — bit for bit for floats (-0, NaN, ±Infinity, subnormals),
// digit for digit for int8, to the microsecond for times. Also the binary COPY decoder fed one
// byte at a time (rows split anywhere).
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_STREAM } from '../helpers/fixtures.ts';
import { T0, arrowStream, pl, times } from '../helpers/polars.ts';
import { CopyBatchDecoder } from '../../src/query/copy-batches.ts';
import type { StreamColumn } from '../../src/domain/types.ts';

const N = 70_001; // more than one 65,536-row batch
let t: TestApp;
let source: pl.DataFrame;

const F8 = [0, -0, NaN, Infinity, -Infinity, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, -1e-300, 123456789.12345679];
const F4 = [0, -0, NaN, Infinity, 0.1, 3.4028234663852886e38, 1e-45, -2.5];
const TEXT = ['a', 'b, "quoted"', 'line\nbreak', 'ünï–cødé ✓', 'x'];

function column<T>(n: number, pick: (i: number) => T): T[] {
  return Array.from({ length: n }, (_, i) => pick(i));
}

beforeAll(async () => {
  t = await createTestApp();
  source = pl.DataFrame([
    pl.Series('time', times(T0, N, 1_000_003n), pl.Int64).cast(pl.Datetime('us', 'UTC')),
    pl.Series('site', column(N, (i) => (i % 11 === 5 ? null : TEXT[i % TEXT.length])), pl.Utf8),
    pl.Series('f8', column(N, (i) => (i % 13 === 3 ? null : F8[i % F8.length] * (i % 2 ? 1 : 1 + i))), pl.Float64),
    pl.Series('f4', column(N, (i) => (i % 17 === 4 ? null : F4[i % F4.length])), pl.Float32),
    pl.Series('i2', column(N, (i) => (i % 19 === 2 ? null : (i % 65536) - 32768)), pl.Int16),
    pl.Series('i4', column(N, (i) => (i % 23 === 1 ? null : (i * 2654435761) | 0)), pl.Int32),
    pl.Series('i8', BigInt64Array.from(column(N, (i) => (i % 3 === 0 ? 9223372036854775807n - BigInt(i) : i % 3 === 1 ? -9223372036854775808n + BigInt(i) : 9007199254740993n * BigInt(i)))), pl.Int64),
    pl.Series('ok', column(N, (i) => (i % 7 === 6 ? null : i % 3 === 0)), pl.Bool),
    pl.Series('at', column(N, (i) => (i % 29 === 0 ? null : BigInt(i) * 86_400_000_001n - 2_000_000_000_000_000n)), pl.Int64).cast(pl.Datetime('us', 'UTC')),
  ]);
  const res = await t.request('/v1/streams/x/ingest?time_column=time', { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: arrowStream([source.slice(0, 40_000), source.slice(40_000, N - 40_000)]) });
  expect(res.status, await res.clone().text()).toBe(201);
}, 120_000);
afterAll(async () => { await t.close(); });

/** Every value of every column, with times and int8 as exact bigint and floats as numbers (Object.is compares them bit for bit, NaN aside). */
function valuesOf(df: pl.DataFrame): Record<string, unknown[]> {
  const asInt = df.withColumns(...df.columns.filter((c) => df.getColumn(c).dtype.equals(pl.Datetime('us', 'UTC'))).map((c) => pl.col(c).cast(pl.Int64)));
  const table = tableFromIPC(asInt.writeIPC());
  const out: Record<string, unknown[]> = {};
  for (const field of table.schema.fields) {
    const v = table.getChild(field.name)!;
    out[field.name] = Array.from({ length: v.length }, (_, i) => (v.isValid(i) ? v.get(i) : null));
  }
  return out;
}

function expectSame(got: pl.DataFrame, what: string): void {
  expect(got.height, what).toBe(N);
  expect(got.columns).toEqual(source.columns);
  const a = valuesOf(got);
  const b = valuesOf(source);
  for (const name of source.columns) {
    const x = a[name];
    const y = b[name];
    let bad = -1;
    for (let i = 0; i < N && bad < 0; i++) if (!Object.is(x[i], y[i])) bad = i;
    expect(bad < 0 ? null : { row: bad, column: name, got: x[bad], want: y[bad] }, what).toBeNull();
  }
}

async function body(format: string): Promise<Buffer> {
  const res = await t.request(`/v1/streams/x/query?format=${format}`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('raw export read back by polars', () => {
  it('Arrow: same types, same values, one record batch per 65,536 rows', async () => {
    const bytes = await body('arrow');
    expect(tableFromIPC(bytes).batches.map((b) => b.numRows)).toEqual([65_536, N - 65_536]);
    expectSame(pl.readIPCStream(bytes), 'arrow');
  });

  it('Parquet: same types, same values', async () => {
    const bytes = await body('parquet');
    expect(bytes.subarray(0, 4).toString()).toBe('PAR1');
    const df = pl.readParquet(bytes);
    expect(df.dtypes.map(String)).toEqual(source.dtypes.map(String));
    expectSame(df, 'parquet');
  });

  it('CSV: parsed with the stream\'s types, the same values', async () => {
    const text = (await body('csv')).toString('utf8');
    const df = pl.readCSV(text, {
      dtypes: { site: pl.Utf8, f8: pl.Float64, f4: pl.Float32, i2: pl.Int16, i4: pl.Int32, i8: pl.Int64, ok: pl.Bool, time: pl.Utf8, at: pl.Utf8 },
    }).withColumns(...['time', 'at'].map((c) => pl.col(c).str.strptime(pl.Datetime('ms'), '%Y-%m-%dT%H:%M:%S%.fZ').cast(pl.Datetime('us')).dt.replaceTimeZone('UTC')));
    expectSame(df, 'csv');
  });

  it('JSON: int8 digits and float text exact', async () => {
    const text = (await body('json')).toString('utf8');
    expect((JSON.parse(text) as { row_count: number }).row_count).toBe(N);
    const rows = text.split('\n').filter((l) => l.startsWith('['));
    expect(rows).toHaveLength(N);
    const i8 = valuesOf(source).i8;
    for (const r of [0, 1, 2, 65_535, 65_536, N - 1]) expect(rows[r]).toContain(`,${String(i8[r])},`);
  });
});

describe('binary COPY decoder', () => {
  it('decodes the same batches whatever the pieces the stream arrives in', async () => {
    const client = await t.db.pool.connect();
    try {
      const { to } = await import('pg-copy-streams');
      const copy = client.query(to("COPY (SELECT now()::timestamptz, 'é'::text, NULL::float8, 1.5::float4, true UNION ALL SELECT '2000-01-01T00:00:00.000001Z', NULL, -0::float8, NULL, false) TO STDOUT (FORMAT binary)"));
      const chunks: Buffer[] = [];
      for await (const c of copy) chunks.push(c as Buffer);
      const all = Buffer.concat(chunks);
      const col = (name: string, type: StreamColumn['type']): StreamColumn => ({ name, columnName: name, role: 'field', type, unit: null, description: null });
      const cols = [col('s', 'text'), col('f', 'float8'), col('g', 'float4'), col('b', 'bool')];
      const whole = new CopyBatchDecoder(cols).push(all);
      const bytewise = new CopyBatchDecoder(cols);
      for (let i = 0; i < all.length; i++) expect(bytewise.push(all.subarray(i, i + 1))).toEqual([]);
      const a = new CopyBatchDecoder(cols);
      a.push(all);
      const one = a.finish()!;
      const two = bytewise.finish()!;
      expect(whole).toEqual([]);
      expect(two).toEqual(one);
      expect(one.length).toBe(2);
      expect(one.time[1]).toBe(946_684_800_000_001n);
      expect((one.columns[0].validity as { bitmap: Uint8Array }).bitmap[0] & 3).toBe(1);
      expect(Object.is((one.columns[1].values as { values: Float64Array }).values[1], -0)).toBe(true);
    } finally {
      client.release();
    }
  });
});
