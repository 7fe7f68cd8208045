// HDF5 fixtures (written by h5py, netCDF4-python and PyTables: independent producers) and the
// expectations fixtures/hdf5/make.py computed from its own arrays, plus SQL to compare them
// with what PostgreSQL stored.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { fixture, fixturesDir } from '../helpers/fixtures.ts';
import { streamTableOf } from '../helpers/stored.ts';

export const HDF5 = 'application/x-hdf5';
export const NETCDF = 'application/x-netcdf';

export interface Instant { iso: string; us: number }
export interface TimeExp { first: Instant; last: Instant; min: Instant; max: Instant; us_sum: string; sub_microsecond_rows?: number }
export interface FieldExp {
  dtype: string; count: number; nulls: number; nans?: number; sum: number | string; min?: number | string; max?: number | string;
  true?: number; counts_by_label?: Record<string, number>; units?: string;
  per_station?: Record<string, { count: number; nulls: number; sum: number }>;
}
export interface TagExp { counts?: Record<string, number>; value?: string }
export interface TypedAttr { type: string; value: unknown }
export interface FileExp {
  kind: string;
  rows: number;
  time: TimeExp;
  fields: Record<string, FieldExp>;
  tags: Record<string, TagExp>;
  provenance?: Record<string, Record<string, TypedAttr>>;
  series?: { group: string; rows: number; time: TimeExp; fields: Record<string, FieldExp> }[];
  expect_error?: Record<string, unknown>;
  [k: string]: unknown;
}

export const expected = (JSON.parse(readFileSync(path.join(fixturesDir, 'hdf5/expected.json'), 'utf8')) as { files: Record<string, FileExp> }).files;

export function hdf5(name: string): Buffer {
  return fixture(`hdf5/${name}`);
}

let counter = 0;
export function streamName(file: string): string {
  return `${file.replace(/\W/g, '-')}-${process.pid}-${++counter}`;
}

export interface Posted { status: number; body: Record<string, unknown> & { ingest?: Record<string, unknown>; code?: string; ingest_id?: string } }

export async function post(t: TestApp, stream: string, body: Uint8Array, opts: { query?: string; type?: string; headers?: Record<string, string> } = {}): Promise<Posted> {
  const res = await t.request(`/v1/streams/${stream}/ingest${opts.query ?? ''}`, {
    method: 'POST', headers: { 'content-type': opts.type ?? HDF5, ...(opts.headers ?? {}) }, body,
  });
  return { status: res.status, body: await res.json() as Posted['body'] };
}

export function relClose(actual: number, want: number, what: string, rel = 1e-9): void {
  expect(Math.abs(actual - want), `${what}: ${actual} vs ${want}`).toBeLessThanOrEqual(Math.abs(want) * rel + 1e-9);
}

/** Rows, exact time range and sum of time µs as stored (optionally for rows where `where` holds). */
export async function checkTime(t: TestApp, stream: string, rows: number, time: TimeExp, where = 'true'): Promise<void> {
  const { table } = await streamTableOf(t.db, stream);
  const { rows: [r] } = await t.db.pool.query(`SELECT count(*)::int AS n,
      (extract(epoch FROM min("time")) * 1000000)::bigint::text AS min_us,
      (extract(epoch FROM max("time")) * 1000000)::bigint::text AS max_us,
      sum(extract(epoch FROM "time") * 1000000)::numeric(40, 0)::text AS us_sum
    FROM ${table} WHERE ${where}`);
  expect(r.n).toBe(rows);
  expect(r.min_us).toBe(String(time.min.us));
  expect(r.max_us).toBe(String(time.max.us));
  expect(r.us_sum).toBe(time.us_sum);
}

/** A field's null count, sum (floats: relative 1e-9; integers: exact), true count or label counts. */
export async function checkField(t: TestApp, stream: string, name: string, f: FieldExp, where = 'true', column = name): Promise<void> {
  const { table, col } = await streamTableOf(t.db, stream);
  const q = col(column);
  const { rows: [r] } = await t.db.pool.query(`SELECT count(*) FILTER (WHERE ${q} IS NULL)::int AS nulls,
      count(${q})::int AS count, (array_agg(pg_typeof(${q})::text))[1] AS type FROM ${table} WHERE ${where}`);
  expect(r.nulls, `${name} nulls`).toBe(f.nulls);
  expect(r.count, `${name} count`).toBe(f.count);
  if (f.counts_by_label) {
    const { rows: groups } = await t.db.pool.query(`SELECT ${q} AS v, count(*)::int AS n FROM ${table} WHERE ${where} GROUP BY 1`);
    expect(Object.fromEntries(groups.map((g) => [g.v, g.n]))).toEqual(f.counts_by_label);
  } else if (f.true !== undefined || /bool/i.test(f.dtype)) {
    const { rows: [b] } = await t.db.pool.query(`SELECT count(*) FILTER (WHERE ${q})::int AS trues FROM ${table} WHERE ${where}`);
    expect(b.trues, `${name} trues`).toBe(Number(f.sum));
    expect(r.type).toBe('boolean');
  } else if (typeof f.sum === 'string') {
    const { rows: [s] } = await t.db.pool.query(`SELECT sum(${q}::numeric)::text AS s FROM ${table} WHERE ${where}`);
    expect(s.s, `${name} sum`).toBe(f.sum);
  } else {
    const real = `${q} IS NOT NULL AND ${q}::float8 <> 'NaN'::float8`;
    const { rows: [s] } = await t.db.pool.query(`SELECT sum(${q}::float8) FILTER (WHERE ${real}) AS s, min(${q}::float8) FILTER (WHERE ${real}) AS lo,
        max(${q}::float8) FILTER (WHERE ${real}) AS hi, count(*) FILTER (WHERE ${q}::float8 = 'NaN'::float8)::int AS nans FROM ${table} WHERE ${where}`);
    expect(s.nans, `${name} NaN count`).toBe(f.nans ?? 0);
    relClose(s.s, f.sum, `${name} sum`);
    if (typeof f.min === 'number') relClose(s.lo, f.min, `${name} min`);
    if (typeof f.max === 'number') relClose(s.hi, f.max, `${name} max`);
  }
}

export async function checkTagCounts(t: TestApp, stream: string, name: string, counts: Record<string, number>): Promise<void> {
  const { table, col } = await streamTableOf(t.db, stream);
  const { rows } = await t.db.pool.query(`SELECT ${col(name)} AS v, count(*)::int AS n FROM ${table} GROUP BY 1`);
  expect(Object.fromEntries(rows.map((g) => [g.v, g.n]))).toEqual(counts);
}

export function checkProvenance(metadata: Record<string, unknown>, prov: Record<string, Record<string, TypedAttr>>): void {
  const attributes = metadata.attributes as Record<string, Record<string, unknown>>;
  for (const [p, attrs] of Object.entries(prov)) {
    if (p.startsWith('datasets')) {
      const datasets = metadata.datasets as Record<string, unknown>;
      for (const [dp, a] of Object.entries(attrs)) expect(datasets[dp], dp).toEqual(a.value);
      continue;
    }
    for (const [name, a] of Object.entries(attrs)) {
      if (name === 'scale_factor' || name === 'add_offset' || name === 'missing_value' || name === 'scaling_factor') {
        expect(Number(attributes[p]?.[name]), `${p}@${name}`).toBeCloseTo(Number(a.value), 12);
        continue;
      }
      expect(attributes[p]?.[name], `${p}@${name}`).toEqual(a.value);
    }
  }
}
