// Raw CSV export produced by PostgreSQL itself: `COPY (SELECT …) TO STDOUT (FORMAT csv)` whose
// SELECT writes every value as the JavaScript writer (batch-formats.ts) does, streamed through as
// it arrives. Formatting numbers in JavaScript costs ~0.4 µs a value; float8out (Ryu, shortest
// round-trip since PostgreSQL 12) a fraction of that, so the bytes are PostgreSQL's work here.
//
// Used when no compressed segment overlaps the range and no column is float4 (checked under the lock that keeps
// conversions out until the COPY ends); otherwise the rows go the batch way (raw.ts, merged with
// the decoded segments) and the JavaScript writer formats them. Both give the same bytes:
// - time and timestamptz: RFC 3339 UTC with six fractional digits (years outside 0–9999 as
//   ±YYYYYY, as Date.toISOString writes them);
// - float8: PostgreSQL's shortest round-trip text (extra_float_digits = 1) where it agrees with
//   JavaScript's Number.prototype.toString (1e-4 ≤ |x| < 1e15); fixed notation through numeric
//   where JavaScript still writes it (1e-6 ≤ |x| < 1e21); else the exponent without
//   PostgreSQL's zero padding (1e-7, not 1e-07); NaN, ±Infinity and -0 as they are. The one
//   difference: a value from 2^53 up whose shortest decimal lies exactly halfway between two
//   doubles (1e23) gets float8out's longer digits (9.999999999999999e+22), which read back to
//   the same double (float8Csv);
// - float4: not here. float4out is not always the shortest text (1.5e10 as float4 comes out as
//   1.5000001e+10), so columns of float4 keep the batch way, whose text is the shortest;
// - bool as true / false; text quoted as CSV needs (empty text as "", NULL as nothing).
import { to as copyTo } from 'pg-copy-streams';
import type { Db } from '../db/pool.ts';
import { ident } from '../db/sql.ts';
import type { ColumnType } from '../domain/types.ts';
import { lockRawRows } from '../compression/read.ts';
import { anySegments } from '../compression/store.ts';
import { type RawQuery, rawRowsSql } from './raw.ts';

/** Bytes of COPY data read ahead of the chunk being sent. */
const COPY_READ_AHEAD_BYTES = 4 << 20;

/**
 * Session settings the expressions rely on, for this transaction only: output never depends on
 * the server's or the role's defaults.
 */
const SETTINGS = [
  "SET LOCAL TimeZone = 'UTC'", "SET LOCAL DateStyle = 'ISO, YMD'", 'SET LOCAL extra_float_digits = 1',
  "SET LOCAL client_encoding = 'UTF8'",
  // The expressions' cost makes the planner choose parallel workers for the sort underneath,
  // whose start-up alone took seconds on a busy machine; the binary COPY's plan has none.
  'SET LOCAL max_parallel_workers_per_gather = 0',
];

const TIME_FORMAT = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

/** A timestamptz as Date.toISOString writes it, with microseconds. */
export function timeCsv(x: string): string {
  const utc = `(${x} AT TIME ZONE 'UTC')`;
  const e = `extract(year FROM ${utc})::int`;
  // Astronomical year (1 BC is year 0), as JavaScript counts.
  const y = `(CASE WHEN ${e} < 0 THEN ${e} + 1 ELSE ${e} END)`;
  const year = `(CASE WHEN ${y} BETWEEN 0 AND 9999 THEN lpad(${y}::text, 4, '0') WHEN ${y} < 0 THEN '-' || lpad((-${y})::text, 6, '0') ELSE '+' || lpad(${y}::text, 6, '0') END)`;
  return `CASE WHEN ${x} >= '0001-01-01 00:00:00+00' AND ${x} < '10000-01-01 00:00:00+00' THEN to_char(${utc}, ${TIME_FORMAT})`
    + ` ELSE ${year} || to_char(${utc}, '-MM-DD"T"HH24:MI:SS.US"Z"') END`;
}

/**
 * A float8 as Number.prototype.toString writes it (its shortest round-trip decimal). One
 * documented difference: from 2^53 up, a decimal with fewer digits can lie exactly halfway
 * between two doubles; JavaScript writes it when reading it back gives the same double (round
 * half to even), float8out does not (1e23 comes out as 9.999999999999999e+22). Both read back to
 * the same double.
 */
export function float8Csv(x: string): string {
  const c = (v: string): string => `float8 '${v}'`;
  // PostgreSQL writes fixed notation for decimal exponents -4 … 14.
  return `CASE WHEN abs(${x}) < ${c('1e15')} AND abs(${x}) >= ${c('1e-4')} THEN ${x}::text`
    + ` WHEN abs(${x}) < ${c('1e21')} AND abs(${x}) >= ${c('1e-6')} THEN ${x}::text::numeric::text`
    // NaN sorts above every number in PostgreSQL, so NaN, ±Infinity, zeros and NULL end here.
    + ` ELSE replace(${x}::text, 'e-0', 'e-') END`;
}

function valueCsv(x: string, type: ColumnType): string {
  switch (type) {
    case 'float8': return float8Csv(x);
    case 'float4': throw new Error('raw CSV: float4 columns are formatted the batch way');
    case 'timestamptz': return timeCsv(x);
    case 'bool': return `CASE ${x} WHEN true THEN 'true' WHEN false THEN 'false' END`;
    default: return x; // integers and text: PostgreSQL's text is JavaScript's
  }
}

/** The COPY statement writing the rows as CSV, without the header. */
export function rawCsvSql(q: RawQuery): string {
  const rows = rawRowsSql(q);
  // The values are written after the sort, not before it: OFFSET 0 keeps the planner from
  // pulling the text expressions under the Sort, which then sorts (and spills) wide text rows.
  const select = [timeCsv('"time"'), ...q.columns.map((c) => valueCsv(ident(c.columnName), c.type))];
  return `COPY (SELECT ${select.join(', ')} FROM (${rows} OFFSET 0) AS r ORDER BY "time") TO STDOUT (FORMAT csv)`;
}

/** Whether PostgreSQL can write these columns as the JavaScript writer does. */
export function csvFromCopyFits(q: RawQuery): boolean {
  return q.columns.every((c) => c.type !== 'float4');
}

/**
 * The rows' CSV from PostgreSQL; `fallback` (the batch way) when compressed segments overlap the
 * range or a column is float4. The connection goes back to the pool when the last chunk is read or the
 * reader stops; a reader that stops early leaves it mid-COPY, and it is closed, not reused.
 */
export async function* rawCsvFromCopy(db: Db, q: RawQuery, fallback: () => AsyncGenerator<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (!csvFromCopyFits(q)) { yield* fallback(); return; }
  const client = await db.pool.connect();
  let clean = false;
  let broken: Error | undefined;
  let useFallback = false;
  try {
    await client.query('BEGIN');
    // Conversions of the stream's chunks wait for this transaction; one that committed before has its segments found.
    await client.query(lockRawRows(q.stream));
    if (await anySegments(client, { streamId: q.stream.id, from: q.from, to: q.to, tags: q.tags })) {
      await client.query('ROLLBACK');
      clean = true;
      useFallback = true;
    } else {
      for (const s of SETTINGS) await client.query(s);
      const copy = client.query(copyTo(rawCsvSql(q), { highWaterMark: COPY_READ_AHEAD_BYTES }));
      try {
        for await (const chunk of copy) yield chunk as Buffer;
      } finally {
        if (copy.readableEnded === false) copy.destroy();
      }
      await client.query('COMMIT');
      clean = true;
    }
  } catch (err) {
    broken = err as Error;
    throw err;
  } finally {
    client.release(clean ? undefined : (broken ?? new Error('raw CSV export stopped before its end')));
  }
  // The batch way takes connections of its own: this one is back in the pool, its lock released.
  if (useFallback) yield* fallback();
}
