// Shared by the retention tests: a few readings an hour of a lab stream (so that 90 days stay
// small), the retention run through the API, the aggregated query through the API, and checks of
// the chunk registry against PostgreSQL's catalog — for the raw table and every rollup level.
import { expect } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { DAY_US, T0 } from '../helpers/polars.ts';
import { ALL_AGGS, HOUR_US, type LabRows, type QueryBody, ingestLab, pushReading, query, rng } from '../helpers/rollups.ts';
import { formatMicros } from '../../src/domain/time.ts';

export { DAY_US, HOUR_US, T0 };

export const QUARTER_US = HOUR_US / 4n;
/** Readings per day: one in every quarter of an hour. */
export const PER_DAY = 96;

/** Start of day d (1-based) of the test data. */
export const day = (d: number): bigint => T0 + BigInt(d - 1) * DAY_US;
export const iso = (us: bigint): string => formatMicros(us);

/**
 * One reading in every quarter of an hour (at a random instant within it) over `days` days from
 * day `fromDay`, from samples A, B and C; every field of the lab stream, some values null.
 */
export function quarterHourly(seed: number, fromDay: number, days: number, samples: readonly string[] = ['A', 'B', 'C']): LabRows {
  const r = rng(seed);
  const out: LabRows = { time: [], sample: [], temp: [], cnt: [], ok: [], note: [] };
  for (let i = 0; i < days * PER_DAY; i++) {
    pushReading(out, r, day(fromDay) + BigInt(i) * QUARTER_US + BigInt(Math.floor(r() * Number(QUARTER_US))), samples);
  }
  return out;
}

/** Uploads days [fromDay, fromDay + days) in uploads of `perUpload` days; returns the ingest ids. */
export async function loadDays(t: TestApp, stream: string, fromDay: number, days: number, perUpload = 10): Promise<string[]> {
  const ids: string[] = [];
  for (let d = fromDay; d < fromDay + days; d += perUpload) {
    ids.push(await ingestLab(t, stream, quarterHourly(d * 7919 + stream.length, d, Math.min(perUpload, fromDay + days - d))));
  }
  return ids;
}

export interface ChunkNote { chunk: string; level: string; from: string; to: string }
export interface StreamReport { dropped: (ChunkNote & { rows: number })[]; skipped: (ChunkNote & { reason: string })[]; reattached?: string[] }
export interface Run {
  id: number; outcome: string; rows: number; chunks: number; error: string | null;
  details: { dropped: number; skipped: number; streams: Record<string, StreamReport>; errors?: string[] };
}

export async function runRetention(t: TestApp, stream: string): Promise<Run> {
  const res = await t.request(`/v1/jobs/retention/run?stream=${stream}`, { method: 'POST' });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as Run;
}

/** The stream's report in a run (empty when the run did nothing to it). */
export function reportOf(run: Run, stream: string): StreamReport {
  return run.details.streams[stream] ?? { dropped: [], skipped: [] };
}

/** Rows the raw query returns for [from, to). */
export async function rawRows(t: TestApp, stream: string, from: bigint, to: bigint): Promise<number> {
  const body = await query(t, stream, { from: iso(from), to: iso(to), format: 'json' });
  return body.rows.length;
}

/** Every aggregate of every field per bucket and sample, through the API. */
export async function aggregated(t: TestApp, stream: string, resolution: string, from: bigint, to: bigint): Promise<QueryBody> {
  return query(t, stream, { resolution, from: iso(from), to: iso(to), agg: ALL_AGGS.join(','), group_by: 'sample', format: 'json' });
}

/** Which source served which ranges, as [source, from, to] triples. */
export function servedBy(body: QueryBody): [string, string, string][] {
  return body.served.flatMap((s) => s.ranges.map((r): [string, string, string] => [s.source, r.from, r.to]));
}

export interface RegistryRow { id: string; table_name: string; state: string; start_us: bigint; end_us: bigint; row_count: string | null; dropped_by_run: string | null; dropped_at: Date | null }

export async function registry(t: TestApp, stream: string, level = 'raw'): Promise<RegistryRow[]> {
  const { rows } = await t.db.pool.query<Omit<RegistryRow, 'start_us' | 'end_us'> & { s: string; e: string }>(
    `SELECT c.id::text, c.table_name, c.state, c.row_count::text, c.dropped_by_run::text, c.dropped_at,
            (extract(epoch FROM c.range_start) * 1000000)::bigint::text AS s, (extract(epoch FROM c.range_end) * 1000000)::bigint::text AS e
       FROM strata.chunks c JOIN strata.streams s ON s.id = c.stream_id WHERE s.name = $1 AND c.level = $2 ORDER BY c.range_start`,
    [stream, level]);
  return rows.map(({ s, e, ...r }) => ({ ...r, start_us: BigInt(s), end_us: BigInt(e) }));
}

/** Partitions attached to a table of strata_data. */
export async function attachedTo(t: TestApp, parent: string): Promise<string[]> {
  const { rows } = await t.db.pool.query<{ relname: string }>(
    `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass($1) ORDER BY 1`,
    [`strata_data."${parent}"`]);
  return rows.map((r) => r.relname);
}

export async function tableExists(t: TestApp, name: string): Promise<boolean> {
  const { rows } = await t.db.pool.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [`strata_data."${name}"`]);
  return rows[0].ok;
}

/** The partitioned table of each level of a stream: raw and its rollup levels. */
export async function levelTables(t: TestApp, stream: string): Promise<Record<string, string>> {
  const { rows } = await t.db.pool.query<{ level: string; table_name: string }>(
    `SELECT 'raw' AS level, table_name FROM strata.streams WHERE name = $1
     UNION ALL SELECT l.level, l.table_name FROM strata.rollup_levels l JOIN strata.streams s ON s.id = l.stream_id WHERE s.name = $1`,
    [stream]);
  return Object.fromEntries(rows.map((r) => [r.level, r.table_name]));
}

/**
 * At every level of the stream, the chunks the registry calls active are exactly the partitions
 * attached to the level's table, and the tables of dropped chunks are gone.
 */
export async function expectRegistryMatchesCatalog(t: TestApp, stream: string): Promise<void> {
  const tables = await levelTables(t, stream);
  expect(Object.keys(tables).length).toBeGreaterThan(0);
  for (const [level, parent] of Object.entries(tables)) {
    const reg = await registry(t, stream, level);
    const active = reg.filter((c) => c.state === 'active').map((c) => c.table_name).sort();
    expect(await attachedTo(t, parent), `level ${level}`).toEqual(active);
    for (const c of reg.filter((x) => x.state === 'dropped')) expect(await tableExists(t, c.table_name), c.table_name).toBe(false);
  }
}

export interface AuditRow { seq: string; subject: string; details: Record<string, unknown> }

export async function auditOf(t: TestApp, action: string, stream?: string): Promise<AuditRow[]> {
  const { rows } = await t.db.pool.query<AuditRow>(
    `SELECT seq::text, subject, details FROM strata.audit_log WHERE action = $1 AND ($2::text IS NULL OR details->>'stream' = $2) ORDER BY seq`,
    [action, stream ?? null]);
  return rows;
}
