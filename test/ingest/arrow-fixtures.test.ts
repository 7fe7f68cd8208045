// Arrow fixtures written by polars (an independent producer) are ingested over HTTP; what
// PostgreSQL then holds is compared with the counts, sums and extremes the generator computed
// from its own arrays — through SQL and through the query endpoint.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_FILE, ARROW_STREAM, arrowExpectations, fixture } from '../helpers/fixtures.ts';
import { streamTableOf } from '../helpers/stored.ts';

const expected = arrowExpectations();
let t: TestApp;

beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

async function ingest(file: string, stream: string, query = ''): Promise<Response> {
  const type = expected[file].format === 'file' ? ARROW_FILE : ARROW_STREAM;
  return t.request(`/v1/streams/${stream}/ingest${query}`, { method: 'POST', headers: { 'content-type': type }, body: fixture(`arrow/${file}`) });
}

/** The expected first/last instant as Strata prints it: RFC 3339 UTC, microseconds, floored. */
function micros(value: string, unit: string): string {
  const v = BigInt(value);
  const us = unit === 'ns' ? v / 1000n - (v % 1000n < 0n ? 1n : 0n) : unit === 'ms' ? v * 1000n : unit === 's' ? v * 1_000_000n : v;
  const ms = Number(us / 1000n);
  return `${new Date(ms).toISOString().slice(0, 23)}${String(us % 1000n).padStart(3, '0')}Z`;
}

function relClose(a: number, b: number, rel = 1e-9): void {
  expect(Math.abs(a - b)).toBeLessThanOrEqual(Math.abs(b) * rel + 1e-9);
}

const ingestible = ['logger_us.arrows', 'logger_ns_lz4.arrows', 'logger_ns_zstd.arrow', 'dict_tags.arrows', 'dict_replace.arrows',
  'naive_ms.arrows', 'tz_berlin.arrows'];

describe.each(ingestible)('%s', (file) => {
  const e = expected[file];
  const stream = file.replace(/\W/g, '-');
  let body: { ingest: Record<string, unknown> };

  beforeAll(async () => {
    const res = await ingest(file, stream);
    body = await res.json() as typeof body;
    expect(res.status, JSON.stringify(body)).toBe(201);
  });

  it('records the ingest: rows, time range, hash, sub-microsecond count', () => {
    const i = body.ingest;
    expect(i.status).toBe('committed');
    expect(i.rows).toBe(e.rows);
    const unit = (e.columns[e.time_column ?? 'time'] as unknown as { unit: string }).unit;
    expect(i.time_min).toBe(micros(e.first_time_value, unit));
    expect(i.time_max).toBe(micros(e.last_time_value, unit));
    expect(i.sub_microsecond_count).toBe(e.sub_microsecond_count);
    expect(i.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('stores every row with exact time and the expected per-column sums', async () => {
    const { table, col } = await streamTableOf(t.db, stream);
    const time = e.time_column ?? 'time';
    const { rows } = await t.db.pool.query(`SELECT count(*)::int AS n,
      (extract(epoch FROM min("time")) * 1000000)::bigint::text AS min_us,
      (extract(epoch FROM max("time")) * 1000000)::bigint::text AS max_us FROM ${table}`);
    expect(rows[0].n).toBe(e.rows);
    const floorUs = (ns: string, unit: string): string => unit === 'ns' ? (BigInt(ns) / 1000n - (BigInt(ns) % 1000n < 0n ? 1n : 0n)).toString()
      : unit === 'ms' ? (BigInt(ns) * 1000n).toString() : ns;
    const unit = (e.columns[time] as unknown as { unit: string }).unit;
    expect(rows[0].min_us).toBe(floorUs(e.first_time_value, unit));
    expect(rows[0].max_us).toBe(floorUs(e.last_time_value, unit));

    for (const [name, c] of Object.entries(e.columns)) {
      if (name === time) continue;
      const q = col(name);
      const { rows: [r] } = await t.db.pool.query(`SELECT count(*) FILTER (WHERE ${q} IS NULL)::int AS nulls,
        ${/Float/.test(c.dtype) ? `count(*) FILTER (WHERE ${q} = 'NaN')::int AS nan, sum(${q}::float8) FILTER (WHERE ${q} <> 'NaN') AS sum` : 'NULL AS nan, NULL AS sum'},
        ${/Int|UInt/.test(c.dtype) ? `sum(${q}::numeric)::text AS isum` : 'NULL AS isum'},
        ${c.dtype === 'Bool' ? `count(*) FILTER (WHERE ${q})::int AS trues` : 'NULL AS trues'}
        FROM ${table}`);
      expect(r.nulls, `${name} nulls`).toBe(c.nulls);
      if (c.nan_count !== undefined) expect(r.nan, `${name} NaN`).toBe(c.nan_count);
      if (/Float/.test(c.dtype) && typeof c.sum === 'number') relClose(r.sum, c.sum);
      if (/Int/.test(c.dtype)) expect(r.isum, `${name} sum`).toBe(String(c.sum_str ?? c.sum));
      if (c.true_count !== undefined) expect(r.trues).toBe(c.true_count);
      if (c.value_counts) {
        const { rows: groups } = await t.db.pool.query(`SELECT ${q} AS v, count(*)::int AS n FROM ${table} WHERE ${q} IS NOT NULL GROUP BY 1`);
        expect(Object.fromEntries(groups.map((g) => [g.v, g.n]))).toEqual(c.value_counts);
      }
    }
  });

  it('reads back the same rows through the query endpoint (JSON, CSV and Arrow)', async () => {
    const json = await (await t.request(`/v1/streams/${stream}/query?resolution=raw`)).json() as { rows: unknown[][]; columns: { name: string }[] };
    expect(json.rows.length).toBe(e.rows);
    expect(json.rows[0][0]).toBe(micros(e.first_time_value, (e.columns[e.time_column ?? 'time'] as unknown as { unit: string }).unit));
    const csv = await (await t.request(`/v1/streams/${stream}/query?format=csv`)).text();
    const lines = csv.trimEnd().split('\n');
    expect(lines.length).toBe(e.rows + 1);
    expect(lines[0].split(',')[0]).toBe('time');
    const arrowRes = await t.request(`/v1/streams/${stream}/query?format=arrow`);
    expect(arrowRes.headers.get('content-type')).toBe(ARROW_STREAM);
    const { tableFromIPC } = await import('apache-arrow');
    const table = tableFromIPC(new Uint8Array(await arrowRes.arrayBuffer()));
    expect(table.numRows).toBe(e.rows);
    expect(String(table.schema.fields[0].type)).toBe('Timestamp<MICROSECOND, UTC>');
  });
});

describe('ingesting the same fixture twice', () => {
  it('returns the original ingest with 200 and stores nothing twice', async () => {
    const first = await ingest('logger_us.arrows', 'dup-test');
    expect(first.status).toBe(201);
    const id = ((await first.json()) as { ingest: { id: string } }).ingest.id;
    const again = await ingest('logger_us.arrows', 'dup-test');
    expect(again.status).toBe(200);
    const body = await again.json() as { ingest: { id: string }; duplicate: boolean };
    expect(body.ingest.id).toBe(id);
    expect(body.duplicate).toBe(true);
    const { table } = await streamTableOf(t.db, 'dup-test');
    const { rows } = await t.db.pool.query(`SELECT count(*)::int AS n FROM ${table}`);
    expect(rows[0].n).toBe(expected['logger_us.arrows'].rows);
  });
});
