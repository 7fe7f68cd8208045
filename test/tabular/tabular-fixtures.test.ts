// Parquet and CSV/TSV files written by independent producers (fixtures/tabular/make.mjs: polars,
// the Rust parquet crate, hand-written instrument exports; make-duckdb.mjs: DuckDB's COPY) go in with exactly the rows, values,
// NaNs, NULLs and instants their generator computed; the bad ones are refused whole.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { fixture, fixturesDir } from '../helpers/fixtures.ts';
import { rowsOfIngest, storedRowCount, streamTableOf } from '../helpers/stored.ts';

interface FieldExpectation { kind: 'float' | 'int' | 'bool' | 'text'; nulls: number; nan?: number; sum?: number; true_count?: number; distinct?: number }
interface Expectation {
  content_type: string; params?: string; rows?: number; time_sum_us?: string; time_min_us?: string; time_max_us?: string;
  fields?: Record<string, FieldExpectation>; attributes?: Record<string, string>; sub_microsecond_count?: number;
  status?: number; code?: string; seed?: string; seed_rows?: number; line?: number; column?: string; value?: string; time_unit?: string; header_line?: number;
}

const expected = (JSON.parse(readFileSync(path.join(fixturesDir, 'tabular/expected.json'), 'utf8')) as { files: Record<string, Expectation> }).files;
const good = Object.entries(expected).filter(([, e]) => e.status === undefined);
const bad = Object.entries(expected).filter(([, e]) => e.status !== undefined);

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

const streamName = (file: string): string => file.replace(/[^a-z0-9]+/gi, '-').toLowerCase();

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON read back from the API
type Json = Record<string, any>;

interface IngestJson { rows: number; format: string; status: string; file_metadata: Json; mapping: Json | null; sub_microsecond_count: number; error: { code: string } | null }

async function post(file: string, e: Expectation, stream = streamName(file)): Promise<{ status: number; json: Json }> {
  const res = await t.request(`/v1/streams/${stream}/ingest${e.params ?? ''}`, { method: 'POST', headers: { 'content-type': e.content_type }, body: fixture(`tabular/${file}`) });
  return { status: res.status, json: await res.json() as Json };
}

describe('good files', () => {
  it('the corpus has Parquet from three producers with six codecs, and CSV/TSV from polars and instruments', () => {
    expect(good.filter(([f]) => f.endsWith('.parquet')).length).toBeGreaterThanOrEqual(16);
    expect(good.filter(([f]) => f.startsWith('duckdb_')).length).toBeGreaterThanOrEqual(8);
    expect(good.filter(([f]) => /\.(csv|tsv)$/.test(f)).length).toBeGreaterThanOrEqual(6);
  });

  it.each(good)('%s: rows, time checksum, sums, NaN and NULL counts as generated', async (file, e) => {
    const { status, json } = await post(file, e);
    expect(status, JSON.stringify(json)).toBe(201);
    const ingest = json.ingest as IngestJson;
    expect(ingest.rows).toBe(e.rows);
    if (e.sub_microsecond_count !== undefined) expect(ingest.sub_microsecond_count).toBe(e.sub_microsecond_count);
    const name = streamName(file);
    const { table, col } = await streamTableOf(t.db, name);
    const { rows } = await t.db.pool.query(`SELECT count(*)::int AS n, sum(floor(extract(epoch FROM "time") * 1000000))::text AS sum,
      (min(floor(extract(epoch FROM "time") * 1000000)))::text AS min, (max(floor(extract(epoch FROM "time") * 1000000)))::text AS max FROM ${table}`);
    expect(rows[0]).toEqual({ n: e.rows, sum: e.time_sum_us, min: e.time_min_us, max: e.time_max_us });
    for (const [field, fe] of Object.entries(e.fields ?? {})) {
      const c = col(field);
      const q = fe.kind === 'float'
        ? `SELECT count(*) FILTER (WHERE ${c} IS NULL)::int AS nulls, count(*) FILTER (WHERE ${c} = 'NaN')::int AS nan, sum(${c}) FILTER (WHERE ${c} <> 'NaN') AS sum FROM ${table}`
        : fe.kind === 'int' ? `SELECT count(*) FILTER (WHERE ${c} IS NULL)::int AS nulls, sum(${c})::float8 AS sum FROM ${table}`
          : fe.kind === 'bool' ? `SELECT count(*) FILTER (WHERE ${c} IS NULL)::int AS nulls, count(*) FILTER (WHERE ${c})::int AS true_count FROM ${table}`
            : `SELECT count(*) FILTER (WHERE ${c} IS NULL)::int AS nulls, count(DISTINCT ${c})::int AS distinct FROM ${table}`;
      const r = (await t.db.pool.query(q)).rows[0];
      expect(r.nulls, `${field} nulls`).toBe(fe.nulls);
      if (fe.nan !== undefined) expect(r.nan, `${field} NaN`).toBe(fe.nan);
      if (fe.sum !== undefined) expect(Number(r.sum), `${field} sum`).toBeCloseTo(fe.sum, 6);
      if (fe.true_count !== undefined) expect(r.true_count).toBe(fe.true_count);
      if (fe.distinct !== undefined) expect(r.distinct).toBe(fe.distinct);
    }
    if (e.attributes) expect(ingest.file_metadata.attributes).toEqual(e.attributes);
    if (e.header_line) expect(ingest.file_metadata.csv.header_line).toBe(e.header_line);
    if (e.time_unit) expect(ingest.file_metadata.csv.time.unit).toBe(e.time_unit);
  });

  it('Parquet text columns become tags and numbers fields, as for Arrow', async () => {
    const res = await t.request(`/v1/streams/${streamName('polars_zstd.parquet')}`);
    const s = await res.json() as { tags: { name: string; type: string }[]; fields: { name: string; type: string }[] };
    expect(s.tags.map((c) => c.name)).toEqual(['sample']);
    expect(Object.fromEntries(s.fields.map((c) => [c.name, c.type]))).toEqual({ temp: 'float8', count: 'int4', ok: 'bool' });
  });

  it('CSV columns are inferred over the whole file: int8, float8, bool, text tags', async () => {
    const res = await t.request(`/v1/streams/${streamName('polars_logger.csv')}`);
    const s = await res.json() as { tags: { name: string; type: string }[]; fields: { name: string; type: string }[] };
    expect(s.tags.map((c) => [c.name, c.type])).toEqual([['sample', 'text']]);
    expect(Object.fromEntries(s.fields.map((c) => [c.name, c.type]))).toEqual({ temp: 'float8', count: 'int8', ok: 'bool' });
  });

  it('records the Parquet footer facts with the ingest', async () => {
    const { json } = await post('arrowrs_brotli_4groups.parquet', expected['arrowrs_brotli_4groups.parquet'], 'pq-meta');
    expect(json.ingest.file_metadata.parquet).toMatchObject({ row_groups: 4, codecs: ['BROTLI'], rows: 3000 });
  });
});

describe('DuckDB files', () => {
  // The 'good files' cases above have made these streams.
  it('BIGINT beyond 2^53 is stored exactly, DECIMAL as float8, TIMESTAMP without a zone as UTC time', async () => {
    const { table, col } = await streamTableOf(t.db, streamName('duckdb_snappy.parquet'));
    const { rows } = await t.db.pool.query(`SELECT min(${col('big')})::text AS min, max(${col('big')})::text AS max FROM ${table}`);
    expect(rows[0]).toEqual({ min: '9007199254740993', max: '9007199254743992' });
    const types = async (file: string): Promise<Record<string, string>> => {
      const s = await (await t.request(`/v1/streams/${streamName(file)}`)).json() as { tags: { name: string }[]; fields: { name: string; type: string }[] };
      return Object.fromEntries([...s.tags.map((c) => [c.name, 'tag']), ...s.fields.map((c) => [c.name, c.type])]) as Record<string, string>;
    };
    expect(await types('duckdb_zstd.parquet')).toEqual({ tag: 'tag', temp: 'float8', count: 'int4', big: 'int8', ok: 'bool' });
    expect(await types('duckdb_decimal.parquet')).toEqual({ amount: 'float8' });
    expect(await types('duckdb_naive_timestamp.parquet')).toEqual({ temp: 'float8' });
  });

  it('records the footer facts: DuckDB as the writer, its row groups, lz4 written as LZ4_RAW', async () => {
    const groups = await post('duckdb_zstd_5groups.parquet', expected['duckdb_zstd_5groups.parquet'], 'duckdb-meta-groups');
    expect(groups.json.ingest.file_metadata.parquet).toMatchObject({ row_groups: 5, codecs: ['ZSTD'], rows: 10_000 });
    expect(groups.json.ingest.file_metadata.parquet.created_by).toMatch(/DuckDB/i);
    const lz4 = await post('duckdb_lz4.parquet', expected['duckdb_lz4.parquet'], 'duckdb-meta-lz4');
    expect(lz4.json.ingest.file_metadata.parquet.codecs).toEqual(['LZ4_RAW']);
  });

  it('a LIST column is refused naming the column', async () => {
    const { status, json } = await post('duckdb_list.parquet', expected['duckdb_list.parquet'], 'duckdb-list-message');
    expect(status).toBe(422);
    expect(JSON.stringify(json)).toContain('pair');
  });
});

describe('bad files: refused whole, with a rejected ingest record', () => {
  it.each(bad)('%s', async (file, e) => {
    const name = streamName(file);
    if (e.seed) expect((await post(e.seed, { content_type: e.content_type }, name)).status).toBe(201);
    const { status, json } = await post(file, e);
    expect(status, JSON.stringify(json)).toBe(e.status);
    expect(json.code).toBe(e.code);
    if (e.line !== undefined) expect(json.line).toBe(e.line);
    if (e.column !== undefined) expect(json.column).toBe(e.column);
    if (e.value !== undefined) expect(json.value).toBe(e.value);
    const rec = await (await t.request(`/v1/ingests/${json.ingest_id}`)).json() as IngestJson;
    expect(rec.status).toBe('rejected');
    expect(rec.error?.code).toBe(e.code);
    expect(rec.rows).toBe(0);
    expect(await rowsOfIngest(t.db, json.ingest_id)).toBe(0);
    expect(await storedRowCount(t.db, name)).toBe(e.seed_rows ?? 0);
  });

  it('a file whose middle is good but whose last row is bad stores nothing (all or nothing)', async () => {
    const seed = await t.request('/v1/streams/all-or-nothing/ingest', { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'time,v\n1709251199,1\n' });
    expect(seed.status).toBe(201);
    const lines = ['time,v', ...Array.from({ length: 50_000 }, (_, i) => `${1_709_251_200 + i},${i}`), '1709351200,x'];
    const res = await t.request('/v1/streams/all-or-nothing/ingest', { method: 'POST', headers: { 'content-type': 'text/csv' }, body: lines.join('\n') });
    const p = await res.json() as Record<string, unknown>;
    expect(res.status).toBe(422);
    expect(p).toMatchObject({ code: 'invalid_value', line: 50_002, column: 'v', value: 'x' });
    expect(await storedRowCount(t.db, 'all-or-nothing')).toBe(1);
  });
});
