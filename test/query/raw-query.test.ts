// Raw read-back in JSON, CSV and Arrow: exact times, exact floats, nulls and NaN as documented.
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_STREAM } from '../helpers/fixtures.ts';
import { T0, arrowStream, pl, times } from '../helpers/polars.ts';

let t: TestApp;
const values = [0.1 + 0.2, NaN, null, -Infinity, 1e-300, 123456789.12345679];
beforeAll(async () => {
  t = await createTestApp();
  const df = pl.DataFrame([
    pl.Series('time', BigInt64Array.from(times(T0, 6, 1_000_001n)), pl.Int64).cast(pl.Datetime('us', 'UTC')),
    pl.Series('site', ['a', 'b, "quoted"', 'a', null, 'b, "quoted"', 'a'], pl.Utf8),
    pl.Series('x', values, pl.Float64),
    pl.Series('n', BigInt64Array.of(9007199254740993n, -1n, 0n, 1n, 2n, 3n), pl.Int64),
    pl.Series('ok', [true, false, null, true, true, false], pl.Bool),
  ]);
  const res = await t.request('/v1/streams/q/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: arrowStream([df]) });
  expect(res.status).toBe(201);
});
afterAll(async () => { await t.close(); });

describe('raw query', () => {
  it('CSV: header, RFC 3339 µs times, empty nulls, NaN, round-tripping floats, quoted text', async () => {
    const res = await t.request('/v1/streams/q/query?format=csv&resolution=raw');
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (await res.text()).trimEnd().split('\n');
    expect(lines[0]).toBe('time,site,x,n,ok');
    expect(lines[1]).toBe('2024-03-01T00:00:00.000000Z,a,0.30000000000000004,9007199254740993,true');
    expect(lines[2]).toBe('2024-03-01T00:00:01.000001Z,"b, ""quoted""",NaN,-1,false');
    expect(lines[3]).toBe('2024-03-01T00:00:02.000002Z,a,,0,');
    expect(lines[4]).toBe('2024-03-01T00:00:03.000003Z,,-Infinity,1,true');
    expect(Number(lines[5].split(',')[3])).toBe(1e-300);
    expect(Number(lines[6].split(',')[2])).toBe(123456789.12345679);
  });

  it('JSON: columns with types, NaN and ±Infinity as strings, int8 digits exact', async () => {
    const res = await t.request('/v1/streams/q/query?format=json');
    const text = await res.text();
    expect(text).toContain('9007199254740993');
    const body = JSON.parse(text) as { columns: { name: string; type: string }[]; rows: unknown[][]; row_count: number };
    expect(body.columns).toEqual([
      { name: 'time', type: 'timestamptz' }, { name: 'site', type: 'text' }, { name: 'x', type: 'float8' }, { name: 'n', type: 'int8' }, { name: 'ok', type: 'bool' }]);
    expect(body.rows[1]).toEqual(['2024-03-01T00:00:01.000001Z', 'b, "quoted"', 'NaN', -1, false]);
    expect(body.rows[3][2]).toBe('-Infinity');
    expect(body.row_count).toBe(6);
  });

  it('Arrow: a Timestamp(MICROSECOND, UTC) time column and typed values', async () => {
    const res = await t.request('/v1/streams/q/query?format=arrow');
    const table = tableFromIPC(new Uint8Array(await res.arrayBuffer()));
    expect(table.numRows).toBe(6);
    expect(table.schema.fields.map((f) => `${f.name}:${f.type}`)).toEqual([
      'time:Timestamp<MICROSECOND, UTC>', 'site:Utf8', 'x:Float64', 'n:Int64', 'ok:Bool']);
    const time = table.getChild('time')?.data[0].values as BigInt64Array;
    expect(time[1]).toBe(T0 + 1_000_001n);
    expect(table.getChild('n')?.get(0)).toBe(9007199254740993n);
    expect(table.getChild('x')?.get(1)).toBeNaN();
    expect(table.getChild('x')?.get(2)).toBeNull();
  });

  it('filters by time range (from inclusive, to exclusive), fields and tags', async () => {
    const q = new URLSearchParams({ from: '2024-03-01T00:00:01.000001Z', to: '2024-03-01T00:00:05Z', fields: 'x', 'tag.site': 'a', format: 'csv' });
    const lines = (await (await t.request(`/v1/streams/q/query?${q}`)).text()).trimEnd().split('\n');
    expect(lines).toEqual(['time,x', '2024-03-01T00:00:02.000002Z,']);
  });

  it('answers 400 for bad parameters and 404 for an unknown stream', async () => {
    for (const q of ['from=yesterday', 'fields=nope', 'tag.nope=1', 'format=xml', 'from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z']) {
      const res = await t.request(`/v1/streams/q/query?${q}`);
      expect(res.status, q).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('invalid_request');
    }
    expect((await t.request('/v1/streams/none/query')).status).toBe(404);
  });
});
