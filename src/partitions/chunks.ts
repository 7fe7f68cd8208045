// Chunks: the partitions of a stream table, one per chunk interval, aligned to the Unix epoch.
//
// A chunk is created as a plain table and then attached. ATTACH PARTITION takes only a
// SHARE UPDATE EXCLUSIVE lock on the stream table, so it neither waits for nor blocks
// concurrent COPYs into other chunks (CREATE TABLE … PARTITION OF would take an ACCESS
// EXCLUSIVE lock and queue behind every running ingest). Creators of the same stream serialise
// on an advisory lock and re-check the registry, so two uploads into the same new day create
// it once.
import type { Db, PoolClient } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { DATA_SCHEMA, qualified } from '../db/sql.ts';
import { floorDiv } from '../domain/interval.ts';
import { formatMicros, pgTimestamp } from '../domain/time.ts';
import { AppError } from '../errors/index.ts';

export interface ChunkRange {
  start: bigint;
  end: bigint;
}

export interface ChunkTarget {
  streamId: number;
  tableName: string;
  chunkIntervalUs: bigint;
  /** 'raw' for stream tables; rollup levels use their own name. */
  level?: string;
}

const CHUNK_LOCK_SPACE = 7_310_003;

/** The chunk ranges that cover [minUs, maxUs]. */
export function chunkRangesCovering(minUs: bigint, maxUs: bigint, intervalUs: bigint): { first: bigint; count: bigint } {
  const first = floorDiv(minUs, intervalUs);
  const last = floorDiv(maxUs, intervalUs);
  return { first: first * intervalUs, count: last - first + 1n };
}

/** Chunk table name: <stream table>_p<yyyymmdd>[t<hhmmss>][bc]. Intervals are whole minutes. */
export function chunkTableName(tableName: string, startUs: bigint, intervalUs: bigint): string {
  const ts = pgTimestamp(startUs); // YYYY-MM-DD HH:MM:SS.ffffff+00[ BC]
  const [date, time] = ts.split(' ');
  const hms = time.slice(0, 8).replace(/:/g, '');
  const daily = intervalUs % 86_400_000_000n === 0n && hms === '000000';
  return `${tableName}_p${date.replace(/-/g, '')}${daily ? '' : `t${hms}`}${ts.endsWith(' BC') ? 'bc' : ''}`;
}

/** Chunk starts already registered (active) for a target within [from, to]. */
async function existingStarts(q: Db | PoolClient, target: ChunkTarget, from: bigint, to: bigint): Promise<Set<bigint>> {
  const runner = 'pool' in q ? q.pool : q;
  const { rows } = await runner.query<{ start_us: string }>(
    `SELECT (extract(epoch FROM range_start) * 1000000)::bigint::text AS start_us FROM strata.chunks
      WHERE stream_id = $1 AND level = $2 AND state = 'active'
        AND range_start >= $3::timestamptz AND range_start <= $4::timestamptz`,
    [target.streamId, target.level ?? 'raw', pgTimestamp(from), pgTimestamp(to)]);
  return new Set(rows.map((r) => BigInt(r.start_us)));
}

function isoLiteral(us: bigint): string {
  // pgTimestamp yields only digits, '-', ':', ' ', '.', '+' and 'BC': safe inside a literal.
  return `'${pgTimestamp(us)}'`;
}

/**
 * Makes sure chunks exist for every interval between minUs and maxUs. Returns the table names of
 * the chunks this call created (the ingest connection locks them so its next COPY sees them).
 */
export async function ensureChunks(
  db: Db, target: ChunkTarget, minUs: bigint, maxUs: bigint, maxNew: number,
): Promise<string[]> {
  const interval = target.chunkIntervalUs;
  const { first, count } = chunkRangesCovering(minUs, maxUs, interval);
  const last = first + (count - 1n) * interval;
  if (count > BigInt(maxNew) * 4n + 1000n) throw tooMany(count, minUs, maxUs, maxNew);
  let have = await existingStarts(db, target, first, last);
  const missing = (): bigint[] => {
    const out: bigint[] = [];
    for (let s = first; s <= last; s += interval) if (!have.has(s)) out.push(s);
    return out;
  };
  let todo = missing();
  if (todo.length === 0) return [];
  if (todo.length > maxNew) throw tooMany(BigInt(todo.length), minUs, maxUs, maxNew);

  return withTransaction(db, async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1, $2)', [CHUNK_LOCK_SPACE, target.streamId]);
    have = await existingStarts(tx, target, first, last);
    todo = missing();
    const parent = qualified(DATA_SCHEMA, target.tableName);
    const created: string[] = [];
    for (const start of todo) {
      const end = start + interval;
      const name = chunkTableName(target.tableName, start, interval);
      const table = qualified(DATA_SCHEMA, name);
      // A chunk table left behind by a crashed run of this step has no registry row: reuse it.
      await tx.query(`DROP TABLE IF EXISTS ${table}`);
      await tx.query(`CREATE TABLE ${table} (LIKE ${parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
      // The matching CHECK lets ATTACH skip its validation scan.
      await tx.query(`ALTER TABLE ${table} ADD CONSTRAINT chunk_range CHECK ("time" >= ${isoLiteral(start)} AND "time" < ${isoLiteral(end)})`);
      await tx.query(`ALTER TABLE ${parent} ATTACH PARTITION ${table} FOR VALUES FROM (${isoLiteral(start)}) TO (${isoLiteral(end)})`);
      await tx.query(`ALTER TABLE ${table} DROP CONSTRAINT chunk_range`);
      await tx.query(
        `INSERT INTO strata.chunks (stream_id, level, table_name, range_start, range_end)
         VALUES ($1, $2, $3, $4::timestamptz, $5::timestamptz)`,
        [target.streamId, target.level ?? 'raw', name, pgTimestamp(start), pgTimestamp(end)]);
      created.push(name);
    }
    return created;
  });
}

function tooMany(count: bigint, minUs: bigint, maxUs: bigint, maxNew: number): AppError {
  return new AppError(422, 'too_many_chunks',
    `timestamps from ${formatMicros(minUs)} to ${formatMicros(maxUs)} would need ${count} new chunks; at most ${maxNew} may be created by one batch — check the clock of the instrument (epoch-0 or far-future timestamps), or raise STRATA_MAX_NEW_CHUNKS`,
    { detail: { time_min: formatMicros(minUs), time_max: formatMicros(maxUs), chunks_needed: Number(count), limit: maxNew } });
}
