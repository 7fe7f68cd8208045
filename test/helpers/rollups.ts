// Lab data for rollup tests, and the reference answers: the same aggregations computed directly
// in SQL over the raw rows, independently of the rollup tables and the query planner.
import { expect } from 'vitest';
import type { TestApp } from './app.ts';
import { ARROW_STREAM } from './fixtures.ts';
import { arrowStream, pl } from './polars.ts';
import { json } from './uploads.ts';

export const MIN_US = 60_000_000n;
export const HOUR_US = 3_600_000_000n;

/** A seeded generator, so that failures repeat. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export interface LabRows {
  time: bigint[];
  sample: string[];
  temp: (number | null)[];
  cnt: (number | null)[];
  ok: (boolean | null)[];
  note: (string | null)[];
}

/**
 * Random readings: n rows from `start`, irregular gaps averaging `meanStepUs`, several samples.
 * `special`: temp_c also holds NaN (about 8 %, and every reading of a run of 40 in each 1000) and
 * ±Infinity (2 % each), and every seventh reading shares its instant with the one before.
 */
export function labRows(seed: number, start: bigint, n: number, meanStepUs: bigint, samples: readonly string[], special = false): LabRows {
  const r = rng(seed);
  const out: LabRows = { time: [], sample: [], temp: [], cnt: [], ok: [], note: [] };
  let t = start;
  for (let i = 0; i < n; i++) {
    if (!special || i % 7 !== 0) t += BigInt(Math.floor(r() * 2 * Number(meanStepUs)));
    pushReading(out, r, t, samples);
    if (special) {
      const u = r();
      const last = out.temp.length - 1;
      if (i % 1000 >= 500 && i % 1000 < 540) out.temp[last] = NaN;
      else if (out.temp[last] !== null) out.temp[last] = u < 0.08 ? NaN : u < 0.1 ? Infinity : u < 0.12 ? -Infinity : out.temp[last];
    }
  }
  return out;
}

/** Appends one random reading at `time` (some values null) from one of `samples`. */
export function pushReading(out: LabRows, r: () => number, time: bigint, samples: readonly string[]): void {
  out.time.push(time);
  out.sample.push(samples[Math.floor(r() * samples.length)]);
  out.temp.push(r() < 0.05 ? null : Math.round((20 + r() * 10) * 1e6) / 1e6 * (r() < 0.5 ? 1 : -1));
  out.cnt.push(r() < 0.05 ? null : Math.floor(r() * 1000));
  out.ok.push(r() < 0.05 ? null : r() < 0.5);
  out.note.push(r() < 0.1 ? null : `n${Math.floor(r() * 50)}`);
}

export function labBody(rows: LabRows): Buffer {
  const df = pl.DataFrame([
    pl.Series('time', BigInt64Array.from(rows.time), pl.Int64).cast(pl.Datetime('us', 'UTC')),
    pl.Series('sample', rows.sample, pl.Utf8),
    pl.Series('temp_c', rows.temp, pl.Float64),
    pl.Series('cnt', rows.cnt, pl.Int32),
    pl.Series('ok', rows.ok, pl.Bool),
    pl.Series('note', rows.note, pl.Utf8),
  ]);
  return arrowStream([df]);
}

/** Creates a lab stream: sample tag; temp_c, cnt, ok and a text field note. */
export async function createLabStream(t: TestApp, name: string, extra: Record<string, unknown> = {}): Promise<void> {
  const res = await t.request('/v1/streams', json({
    method: 'POST',
    body: {
      name, tags: ['sample'],
      fields: [{ name: 'temp_c', type: 'float8', unit: 'degC' }, { name: 'cnt', type: 'int4' }, { name: 'ok', type: 'bool' }, { name: 'note', type: 'text' }],
      ...extra,
    },
  }));
  expect(res.status, await res.clone().text()).toBe(201);
}

export async function ingestLab(t: TestApp, stream: string, rows: LabRows): Promise<string> {
  const res = await t.request(`/v1/streams/${stream}/ingest`, { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: labBody(rows) });
  const body = await res.json() as { ingest: { id: string } };
  expect(res.status, JSON.stringify(body)).toBe(201);
  return body.ingest.id;
}

export interface RunRecord { id: number; outcome: string; rows: number; chunks: number; details: Record<string, unknown>; error?: string | null }

export async function refresh(t: TestApp, stream?: string): Promise<RunRecord> {
  const res = await t.request(`/v1/jobs/rollups/run${stream ? `?stream=${encodeURIComponent(stream)}` : ''}`, { method: 'POST' });
  const run = await res.json() as RunRecord;
  expect(res.status, JSON.stringify(run)).toBe(200);
  expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
  return run;
}

export type QueryBody = { columns: { name: string; type: string }[]; rows: unknown[][]; served: { source: string; coarsened?: boolean; ranges: { from: string; to: string }[] }[] } & Record<string, unknown>;

export async function query(t: TestApp, stream: string, params: Record<string, string>): Promise<QueryBody> {
  const res = await t.request(`/v1/streams/${stream}/query?${new URLSearchParams(params)}`);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as QueryBody;
}

/** How the reference buckets rows. */
export type RefBuckets =
  | { kind: 'fixed'; widthUs: bigint }
  | { kind: 'local-day'; tz: string }
  | { kind: 'local'; unit: 'month' | 'quarter' | 'year'; tz: string }
  | { kind: 'auto'; levelUs: bigint; widthUs: bigint; n: number };

export interface RefSpec {
  from: bigint;
  to: bigint;
  buckets: RefBuckets;
  groupBy?: boolean;
  samples?: string[];
  /** The (field, aggregate) columns to compute; LAB_COLUMNS by default. */
  columns?: [string, string][];
  /** What NaN does to the aggregates (the query's nan=); skip by default. */
  nan?: 'skip' | 'propagate';
}

export const ALL_AGGS = ['avg', 'min', 'max', 'count', 'sum', 'first', 'last'];

/** Every aggregate, nan_count too, and the lab stream's columns the API returns for them. */
export const NAN_AGGS = [...ALL_AGGS, 'nan_count'];
export const NAN_COLUMNS: [string, string][] = [
  ...NAN_AGGS.map((a): [string, string] => ['temp_c', a]), ...NAN_AGGS.map((a): [string, string] => ['cnt', a]),
  ['ok', 'avg'], ['ok', 'min'], ['ok', 'max'], ['ok', 'count'], ['ok', 'sum'],
  ['note', 'count'], ['note', 'first'], ['note', 'last'],
];

/** The columns the API returns for the lab stream's fields with every aggregate, in its order. */
export const LAB_COLUMNS: [string, string][] = [
  ['temp_c', 'avg'], ['temp_c', 'min'], ['temp_c', 'max'], ['temp_c', 'count'], ['temp_c', 'sum'], ['temp_c', 'first'], ['temp_c', 'last'],
  ['cnt', 'avg'], ['cnt', 'min'], ['cnt', 'max'], ['cnt', 'count'], ['cnt', 'sum'], ['cnt', 'first'], ['cnt', 'last'],
  ['ok', 'avg'], ['ok', 'min'], ['ok', 'max'], ['ok', 'count'], ['ok', 'sum'],
  ['note', 'count'], ['note', 'first'], ['note', 'last'],
];

function refAgg(col: string, type: string, agg: string, nan: 'skip' | 'propagate'): string {
  const x = col;
  const float = type === 'float8' || type === 'float4';
  // nan=skip: NaN left out of every aggregate (PostgreSQL's NaN equals NaN); nan=propagate: IEEE.
  const used = float && nan === 'skip' ? `${x} <> 'NaN'` : `${x} IS NOT NULL`;
  const hasNaN = `count(*) FILTER (WHERE ${x} = 'NaN') > 0`;
  const ieee = (e: string): string => (float && nan === 'propagate' ? `CASE WHEN ${hasNaN} THEN 'NaN'::float8 ELSE ${e} END` : e);
  const first = (dir: '' | ' DESC'): string => `(array_agg(${x} ORDER BY "time"${dir}, ${x}${type === 'text' ? ' COLLATE "C"' : ''}${dir}) FILTER (WHERE ${used}))[1]`;
  if (type === 'bool') {
    return { avg: `avg(${x}::int)::float8`, min: `bool_and(${x})`, max: `bool_or(${x})`, count: `count(${x})`, sum: `sum(${x}::int)` }[agg] as string;
  }
  switch (agg) {
    case 'avg': return ieee(`(avg(${x}) FILTER (WHERE ${used}))::float8`);
    case 'min': return ieee(`min(${x}) FILTER (WHERE ${used})`);
    case 'max': return ieee(`max(${x}) FILTER (WHERE ${used})`);
    case 'count': return `count(*) FILTER (WHERE ${used})`;
    case 'sum': return ieee(`sum(${x}) FILTER (WHERE ${used})`);
    case 'nan_count': return float ? `count(*) FILTER (WHERE ${x} = 'NaN')` : '0';
    case 'first': return first('');
    default: return first(' DESC');
  }
}

/**
 * The reference answer, straight from the raw rows in SQL: rows of [bucket µs, (sample,) values…]
 * for LAB_COLUMNS, ordered by (sample,) bucket. Values are PostgreSQL's text.
 */
export async function reference(t: TestApp, stream: string, spec: RefSpec): Promise<(string | null)[][]> {
  const { rows: meta } = await t.db.pool.query<{ table_name: string }>('SELECT table_name FROM strata.streams WHERE name = $1', [stream]);
  const { rows: cols } = await t.db.pool.query<{ name: string; column_name: string; type: string }>(
    'SELECT c.name, c.column_name, c.type FROM strata.stream_columns c JOIN strata.streams s ON s.id = c.stream_id WHERE s.name = $1', [stream]);
  const col = (n: string): { sql: string; type: string } => {
    const c = cols.find((x) => x.name === n);
    if (!c) throw new Error(`no column ${n}`);
    return { sql: `"${c.column_name}"`, type: c.type };
  };
  const us = (e: string): string => `(extract(epoch FROM ${e}) * 1000000)::bigint`;
  const b = spec.buckets;
  let bucket: string;
  if (b.kind === 'fixed') bucket = `(floor(${us('"time"')}::numeric / ${b.widthUs}) * ${b.widthUs})::bigint`;
  else if (b.kind === 'local-day') bucket = us(`(date_trunc('day', "time" AT TIME ZONE '${b.tz}') AT TIME ZONE '${b.tz}')`);
  else if (b.kind === 'local') bucket = us(`(date_trunc('${b.unit}', "time" AT TIME ZONE '${b.tz}') AT TIME ZONE '${b.tz}')`);
  else {
    const tb = `(floor(${us('"time"')}::numeric / ${b.levelUs}) * ${b.levelUs})`;
    const k = `least(greatest(floor((${tb} - ${spec.from}) / ${b.widthUs}), 0), ${b.n - 1})`;
    bucket = `(${spec.from} + ${k} * ${b.widthUs})::bigint`;
  }
  const sample = col('sample').sql;
  const where = [`"time" >= to_timestamp(${spec.from}::numeric / 1000000)`, `"time" < to_timestamp(${spec.to}::numeric / 1000000)`];
  if (spec.samples) where.push(`${sample} = ANY('{${spec.samples.join(',')}}'::text[])`);
  const aggs = (spec.columns ?? LAB_COLUMNS).map(([f, a]) => { const c = col(f); return `(${refAgg(c.sql, c.type, a, spec.nan ?? 'skip')})::text`; });
  const sql = `SELECT ${bucket}::text AS b${spec.groupBy ? `, ${sample}` : ''}, ${aggs.join(', ')}
    FROM strata_data."${meta[0].table_name}" WHERE ${where.join(' AND ')}
    GROUP BY 1${spec.groupBy ? ', 2' : ''} ORDER BY ${spec.groupBy ? '2, ' : ''}min("time")`;
  const res = await t.db.pool.query({ text: sql, rowMode: 'array' });
  return res.rows as (string | null)[][];
}

const PG_FLOAT = (s: string): number => (s === 'NaN' ? NaN : s === 'Infinity' ? Infinity : s === '-Infinity' ? -Infinity : Number(s));

/** Compares an API answer (JSON rows) with reference rows, cell by cell, sums and averages to 1e-9 relative. */
export function expectSame(api: QueryBody, ref: (string | null)[][], opts: { groupBy?: boolean; columns?: [string, string][] } = {}): void {
  const columns = opts.columns ?? LAB_COLUMNS;
  const keys = opts.groupBy ? 2 : 1;
  expect(api.columns.map((c) => c.name)).toEqual(['time', ...(opts.groupBy ? ['sample'] : []), ...columns.map(([f, a]) => `${f}_${a}`)]);
  expect(api.rows.length, 'row count').toBe(ref.length);
  for (let r = 0; r < ref.length; r++) {
    const got = api.rows[r];
    const want = ref[r];
    const where = `row ${r} (${String(got[0])})`;
    expect(Date.parse(got[0] as string) * 1000, `${where}: bucket`).toBe(Number(want[0]));
    if (opts.groupBy) expect(got[1], `${where}: sample`).toBe(want[1]);
    for (let c = 0; c < columns.length; c++) {
      const [field, agg] = columns[c];
      const g = got[keys + c];
      const w = want[keys + c];
      const label = `${where}: ${field}_${agg}`;
      if (w === null) { expect(g, label).toBeNull(); continue; }
      if (field === 'ok' && (agg === 'min' || agg === 'max')) { expect(g, label).toBe(w === 'true' || w === 't'); continue; }
      if (field === 'note' && agg !== 'count') { expect(g, label).toBe(w); continue; }
      if (agg === 'count' || agg === 'nan_count') { expect(g, label).toBe(Number(w)); continue; }
      const expected = PG_FLOAT(w);
      const actual = typeof g === 'string' ? PG_FLOAT(g) : g as number;
      if ((agg === 'sum' || agg === 'avg') && Number.isFinite(expected)) {
        const tol = Math.max(1e-9 * Math.abs(expected), 1e-12);
        expect(Math.abs(actual - expected), `${label}: ${actual} vs ${expected}`).toBeLessThanOrEqual(tol);
      } else expect(actual, label).toBe(expected);
    }
  }
}
