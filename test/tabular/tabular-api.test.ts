// Constant tags, sniffing, the Parquet row group limit, CSV options (skip_rows, tz, time_unit),
// columns read as the stream's types, and CSVs larger than a read block.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { fixture } from '../helpers/fixtures.ts';
import { T0, arrowStream, loggerFrame, times } from '../helpers/polars.ts';
import { rowsOfIngest, storedRowCount, streamTableOf } from '../helpers/stored.ts';

const PARQUET = 'application/vnd.apache.parquet';
let t: TestApp;
let small: TestApp;
beforeAll(async () => {
  t = await createTestApp();
  small = await createTestApp({ limits: { maxBatchBytes: 20_000 } as never });
});
afterAll(async () => { await t.close(); await small.close(); });

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON read back from the API
type Json = Record<string, any>;

async function post(app: TestApp, path: string, body: Uint8Array | string, contentType: string): Promise<{ status: number; json: Json }> {
  const res = await app.request(path, { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: res.status, json: await res.json() as Json };
}

async function expectRejected(app: TestApp, r: { status: number; json: Json }, status: number, code: string, stream: string, detail?: RegExp): Promise<void> {
  expect(r.status, JSON.stringify(r.json)).toBe(status);
  expect(r.json.code).toBe(code);
  if (detail) expect(r.json.detail).toMatch(detail);
  const rec = await (await app.request(`/v1/ingests/${r.json.ingest_id}`)).json() as Json;
  expect(rec.status).toBe('rejected');
  expect(rec.error.code).toBe(code);
  expect(await rowsOfIngest(app.db, r.json.ingest_id)).toBe(0);
  expect(await storedRowCount(app.db, stream)).toBe(0);
}

describe('constant tags (?tag.<name>=)', () => {
  it('two rigs\' identical files share one stream and stay apart; the tags are in the ingest record', async () => {
    const body = fixture('tabular/polars_zstd.parquet');
    const a = await post(t, '/v1/streams/rigs/ingest?tag.rig=A&tag.site=north', body, PARQUET);
    expect(a.status, JSON.stringify(a.json)).toBe(201);
    expect(a.json.ingest.mapping.constant_tags).toEqual({ rig: 'A', site: 'north' });
    const csv = fixture('tabular/polars_logger.csv');
    const b = await post(t, '/v1/streams/rigs/ingest?tag.rig=B&tag.site=north', csv, 'text/csv');
    expect(b.status, JSON.stringify(b.json)).toBe(201);
    const s = await (await t.request('/v1/streams/rigs')).json() as Json;
    expect(s.tags.map((c: Json) => c.name).sort()).toEqual(['rig', 'sample', 'site']);
    const { table, col } = await streamTableOf(t.db, 'rigs');
    const { rows } = await t.db.pool.query(`SELECT ${col('rig')} AS rig, ${col('site')} AS site, count(*)::int AS n FROM ${table} GROUP BY 1, 2 ORDER BY 1`);
    expect(rows).toEqual([{ rig: 'A', site: 'north', n: 3000 }, { rig: 'B', site: 'north', n: 3000 }]);
  });

  it('applies to Arrow uploads too', async () => {
    const r = await post(t, '/v1/streams/rig-arrow/ingest?tag.rig=C', arrowStream([loggerFrame({ time: times(T0, 100, 1000n) })]), 'application/vnd.apache.arrow.stream');
    expect(r.status).toBe(201);
    const { table, col } = await streamTableOf(t.db, 'rig-arrow');
    const { rows } = await t.db.pool.query(`SELECT count(*) FILTER (WHERE ${col('rig')} = 'C')::int AS n FROM ${table}`);
    expect(rows[0].n).toBe(100);
  });

  it('a tag named like a column of the file → 422 tag_clash, nothing stored', async () => {
    const r = await post(t, '/v1/streams/clash/ingest?tag.sample=x', fixture('tabular/polars_logger.csv'), 'text/csv');
    await expectRejected(t, r, 422, 'tag_clash', 'clash', /"sample"/);
  });

  it('a tag without a value → 400 invalid_tag (without a name, ?tag.= is no parameter the route takes)', async () => {
    expect((await post(t, '/v1/streams/badtag/ingest?tag.=x', 'time,v\n1709251200,1\n', 'text/csv')).json.code).toBe('unknown_parameter');
    expect((await post(t, '/v1/streams/badtag/ingest?tag.rig=', 'time,v\n1709251200,1\n', 'text/csv')).json.code).toBe('invalid_tag');
  });
});

describe('sniffing: a body that is another format than its Content-Type → 415 naming the one to use', () => {
  const cases: [string, Uint8Array, string, RegExp][] = [
    ['parquet-as-csv', fixture('tabular/polars_snappy.parquet'), 'text/csv', /Parquet.*application\/vnd\.apache\.parquet/],
    ['hdf5-as-csv', fixture('hdf5/flat_gzip.h5'), 'text/csv', /HDF5.*application\/x-hdf5/],
    ['hdf5-as-arrow', fixture('hdf5/flat_gzip.h5'), 'application/vnd.apache.arrow.stream', /HDF5.*application\/x-hdf5/],
    ['parquet-as-arrow', fixture('tabular/polars_snappy.parquet'), 'application/vnd.apache.arrow.stream', /application\/vnd\.apache\.parquet/],
    ['arrow-as-parquet', fixture('arrow/logger_us.arrows'), PARQUET, /Arrow IPC stream.*application\/vnd\.apache\.arrow\.stream/],
    ['arrowfile-as-parquet', fixture('arrow/logger_ns_zstd.arrow'), PARQUET, /application\/vnd\.apache\.arrow\.file/],
    ['csv-as-parquet', fixture('tabular/polars_logger.csv'), PARQUET, /text\/csv/],
    ['parquet-as-hdf5', fixture('tabular/polars_snappy.parquet'), 'application/x-hdf5', /application\/vnd\.apache\.parquet/],
    ['xlsx-as-csv', Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(100)]), 'text/csv', /ZIP.*export the sheet as CSV/],
  ];
  it.each(cases)('%s', async (name, body, ct, detail) => {
    const r = await post(t, `/v1/streams/${name}/ingest`, body, ct);
    await expectRejected(t, r, 415, 'content_type_mismatch', name, detail);
  });

  it('a gzip body without Content-Encoding still says to add it', async () => {
    const { gzipSync } = await import('node:zlib');
    const r = await post(t, '/v1/streams/gz-csv/ingest', gzipSync(fixture('tabular/polars_logger.csv')), 'text/csv');
    expect(r.json.code).toBe('gzip_without_encoding');
  });

  it('a gzip-encoded CSV is sniffed after inflating, and goes in', async () => {
    const { gzipSync } = await import('node:zlib');
    const res = await t.request('/v1/streams/gz-ok/ingest', { method: 'POST', headers: { 'content-type': 'text/csv', 'content-encoding': 'gzip' }, body: gzipSync(fixture('tabular/polars_logger.csv')) });
    expect(res.status).toBe(201);
  });
});

describe('Parquet limits', () => {
  it('a row group larger than STRATA_MAX_BATCH_BYTES → 413 row_group_too_large before any is read', async () => {
    const r = await post(small, '/v1/streams/big-rg/ingest', fixture('tabular/polars_uncompressed.parquet'), PARQUET);
    await expectRejected(small, r, 413, 'row_group_too_large', 'big-rg', /row group 0 .*STRATA_MAX_BATCH_BYTES/);
  });

  it('an empty body → 400 empty_body', async () => {
    const r = await post(t, '/v1/streams/pq-empty/ingest', new Uint8Array(0), PARQUET);
    expect(r.json.code).toBe('empty_body');
  });

  it('a body of only the magic → 400 malformed_parquet', async () => {
    const r = await post(t, '/v1/streams/pq-magic/ingest', Buffer.from('PAR1PAR1'), PARQUET);
    await expectRejected(t, r, 400, 'malformed_parquet', 'pq-magic');
  });
});

describe('CSV options and types', () => {
  it('?skip_rows= skips a preamble whose lines have the table\'s width, and keeps what it says', async () => {
    const body = 'Device,Probe 7\nSite,Lab 2\ntime,temp\n1709251200,20.5\n1709251201,21\n';
    const r = await post(t, '/v1/streams/skip/ingest?skip_rows=2', body, 'text/csv');
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    expect(r.json.ingest.rows).toBe(2);
    expect(r.json.ingest.file_metadata.attributes).toEqual({ Device: 'Probe 7', Site: 'Lab 2' });
  });

  it('a column the stream already has is read as the stream\'s type (ints into float8)', async () => {
    expect((await post(t, '/v1/streams/typed/ingest', 'time,v\n2024-03-01T00:00:00Z,1.5\n', 'text/csv')).status).toBe(201);
    const r = await post(t, '/v1/streams/typed/ingest', 'time,v\n2024-03-01T00:00:01Z,2\n2024-03-01T00:00:02Z,3\n', 'text/csv');
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    const { table, col } = await streamTableOf(t.db, 'typed');
    expect((await t.db.pool.query(`SELECT sum(${col('v')})::float8 AS s FROM ${table}`)).rows[0].s).toBe(6.5);
  });

  it('?time_unit= reads a numeric time column whose magnitude fits no unit', async () => {
    const r = await post(t, '/v1/streams/unit/ingest?time_column=t_rel&time_unit=s', 't_rel,v\n5,1\n6,2\n', 'text/csv');
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    expect(r.json.ingest.time_min).toBe('1970-01-01T00:00:05.000000Z');
  });

  it('numbers outside every epoch window, named as the time column → 422 naming the range and ?time_unit=', async () => {
    const r = await post(t, '/v1/streams/nounit/ingest?time_column=t_rel', 't_rel,v\n5,1\n6,2\n', 'text/csv');
    await expectRejected(t, r, 422, 'invalid_timestamp', 'nounit', /from 5 to 6.*time_unit/);
  });

  it('?tz= reads zone-less instants in that zone over many batches; null, NaN and sub-microsecond counts are kept', async () => {
    const n = 40_000; // several batches of the second pass
    const lines = ['time,v,tag'];
    for (let i = 0; i < n; i++) {
      const s = String(i % 60).padStart(2, '0');
      const m = String(Math.floor(i / 60) % 60).padStart(2, '0');
      const h = String(Math.floor(i / 3600)).padStart(2, '0');
      lines.push(`2024-03-01T${h}:${m}:${s}${i % 1000 === 0 ? '.0000005' : ''},${i % 100 === 0 ? '' : i % 101 === 0 ? 'NaN' : i},t${i % 3}`);
    }
    const r = await post(t, '/v1/streams/tz-many/ingest?tz=%2B01:00', lines.join('\n'), 'text/csv');
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    expect(r.json.ingest.rows).toBe(n);
    expect(r.json.ingest.time_min).toBe('2024-02-29T23:00:00.000000Z');
    expect(r.json.ingest.sub_microsecond_count).toBe(n / 1000);
    const nulls = Math.ceil(n / 100);
    const nans = Array.from({ length: n }, (_, i) => i % 100 !== 0 && i % 101 === 0).filter(Boolean).length;
    expect(r.json.ingest.file_metadata.csv.values.v).toEqual({ nulls, nan: nans });
    expect(r.json.ingest.file_metadata.csv.time).toMatchObject({ format: 'ISO 8601', tz: '+01:00' });
    const { table, col } = await streamTableOf(t.db, 'tz-many');
    const q = await t.db.pool.query(`SELECT count(${col('v')})::int AS n, count(DISTINCT ${col('tag')})::int AS d FROM ${table}`);
    expect(q.rows[0]).toEqual({ n: n - nulls, d: 3 });
  });

  it('an unknown ?tz= → 400 invalid_request', async () => {
    const r = await post(t, '/v1/streams/badtz/ingest?tz=Mars/Olympus', fixture('tabular/bad_naive_time.csv'), 'text/csv');
    expect(r.json.code).toBe('invalid_request');
  });

  it('UTF-16 text → 422 malformed_csv saying to save as UTF-8', async () => {
    const body = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('time,v\n1709251200,1\n', 'utf16le')]);
    const r = await post(t, '/v1/streams/utf16/ingest', body, 'text/csv');
    await expectRejected(t, r, 422, 'malformed_csv', 'utf16', /UTF-8/);
  });

  it('a CSV far larger than a read block, with quoted line breaks across block ends, goes in exactly', async () => {
    const n = 60_000;
    const lines = ['time,note,v'];
    let sum = 0;
    for (let i = 0; i < n; i++) {
      lines.push(`${1_709_251_200_000 + i},"line one, ""quoted""\nline two ${'x'.repeat(i % 50)}",${i}`);
      sum += i;
    }
    const body = lines.join('\r\n');
    expect(body.length).toBeGreaterThan(3 * 1024 * 1024);
    const r = await post(t, '/v1/streams/big-csv/ingest', body, 'text/csv');
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    expect(r.json.ingest.rows).toBe(n);
    const { table, col } = await streamTableOf(t.db, 'big-csv');
    const q = await t.db.pool.query(`SELECT sum(${col('v')})::float8 AS s, count(DISTINCT ${col('note')})::int AS d,
      bool_and(${col('note')} LIKE 'line one, "quoted"' || chr(10) || 'line two%') AS ok FROM ${table}`);
    expect(q.rows[0]).toEqual({ s: sum, d: 50, ok: true });
  });
});
