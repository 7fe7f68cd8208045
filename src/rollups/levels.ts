// Rollup levels of a stream: the stream setting "rollups" (["1m", "1h", "1d"] by default), the
// catalog rows in strata.rollup_levels and one partitioned table per level. Each level must be a
// whole multiple of the next finer one, so that it is built from that level and its buckets are
// unions of the finer buckets.
import type { PoolClient, Queryable } from '../db/pool.ts';
import { DATA_SCHEMA, ident, qualified } from '../db/sql.ts';
import { formatInterval, parseInterval } from '../domain/interval.ts';
import { AppError } from '../errors/index.ts';
import type { Stream } from '../streams/catalog.ts';
import { levelColumnsDdl, micros } from './layout.ts';
import { ensurePendingTable, pendingSupported, restartPending } from './pending.ts';

export const DEFAULT_LEVELS = ['1m', '1h', '1d'];
const MAX_LEVELS = 8;
const MIN_LEVEL_US = 1_000_000n;
const MAX_LEVEL_US = 366n * 86_400_000_000n;
const LEVEL_NAME = /^[0-9]{1,6}(s|m|h|d|w)$/;

export interface Level {
  name: string;
  intervalUs: bigint;
  tableName: string;
  chunkUs: bigint;
  /** Buckets starting before it are materialised (except where invalidated); null: none yet. */
  watermarkUs: bigint | null;
  /**
   * The finest level only: from here on, every upload's rows at or above the watermark are in the
   * stream's pending table as partial aggregates (pending.ts); null: not kept.
   */
  pendingFromUs: bigint | null;
}

function invalid(stream: string, message: string): AppError {
  return new AppError(400, 'invalid_body', `stream ${JSON.stringify(stream)}: rollups ${message}`);
}

/** Checks a "rollups" setting: level names such as "1m", finest first after sorting. */
export function parseLevels(value: unknown, stream: Pick<Stream, 'name'>): string[] {
  if (!Array.isArray(value)) throw invalid(stream.name, 'must be a list of level intervals such as ["1m", "1h", "1d"], or null for none');
  if (value.length > MAX_LEVELS) throw invalid(stream.name, `has ${value.length} levels; at most ${MAX_LEVELS} are allowed`);
  const levels: { name: string; us: bigint }[] = [];
  for (const v of value) {
    const us = typeof v === 'string' && LEVEL_NAME.test(v) ? parseInterval(v) : null;
    if (us === null) throw invalid(stream.name, `level ${JSON.stringify(v)} is not an interval such as "15s", "1m", "1h", "1d" or "1w" (a number and one of s, m, h, d, w)`);
    if (us < MIN_LEVEL_US || us > MAX_LEVEL_US) throw invalid(stream.name, `level ${JSON.stringify(v)} must be between 1 second and 366 days`);
    if (levels.some((l) => l.us === us)) throw invalid(stream.name, `level ${JSON.stringify(v)} is given twice (or as another name for the same interval)`);
    levels.push({ name: v as string, us });
  }
  levels.sort((a, b) => (a.us < b.us ? -1 : 1));
  for (let i = 1; i < levels.length; i++) {
    if (levels[i].us % levels[i - 1].us !== 0n) {
      throw invalid(stream.name, `level ${JSON.stringify(levels[i].name)} is not a whole multiple of ${JSON.stringify(levels[i - 1].name)}; each level is built from the next finer one, so its interval must divide evenly`);
    }
  }
  return levels.map((l) => l.name);
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** Chunk interval of a level table: about 1,440 buckets per chunk, whole multiples of the stream's chunks. */
export function levelChunkUs(intervalUs: bigint, streamChunkUs: bigint): bigint {
  const lcm = (intervalUs / gcd(intervalUs, streamChunkUs)) * streamChunkUs;
  const k = (intervalUs * 1440n) / lcm;
  return lcm * (k > 1n ? k : 1n);
}

export function levelTableName(stream: Pick<Stream, 'tableName'>, level: string): string {
  return `${stream.tableName.slice(0, 36)}_r${level.toLowerCase()}`;
}

interface LevelRow { level: string; iv: string; table_name: string; ck: string; watermark_us: string | null; pending_us: string | null }

const LEVEL_SELECT = `SELECT level, interval_us::text AS iv, table_name, chunk_us::text AS ck,
    ${micros('watermark')}::text AS watermark_us, ${micros('pending_from')}::text AS pending_us FROM strata.rollup_levels`;

function toLevel(r: LevelRow): Level {
  return {
    name: r.level, intervalUs: BigInt(r.iv), tableName: r.table_name, chunkUs: BigInt(r.ck),
    watermarkUs: r.watermark_us === null ? null : BigInt(r.watermark_us),
    pendingFromUs: r.pending_us === null ? null : BigInt(r.pending_us),
  };
}

/** A stream's levels, finest first. `lock` reads them FOR SHARE (ingests, before commit). */
export async function loadLevels(q: Queryable, streamId: number, lock: '' | 'FOR SHARE' | 'FOR UPDATE' = ''): Promise<Level[]> {
  const { rows } = await q.query<LevelRow>(`${LEVEL_SELECT} WHERE stream_id = $1 ORDER BY interval_us ${lock}`, [streamId]);
  return rows.map(toLevel);
}

export function levelTable(level: Pick<Level, 'tableName'>): string {
  return qualified(DATA_SCHEMA, level.tableName);
}

/** Creates the level's partitioned table and catalog row. */
async function createLevel(tx: PoolClient, stream: Stream, name: string): Promise<void> {
  const intervalUs = parseInterval(name) as bigint;
  const tableName = levelTableName(stream, name);
  const table = qualified(DATA_SCHEMA, tableName);
  await tx.query(`DROP TABLE IF EXISTS ${table}`);
  const cols = levelColumnsDdl(stream).map(([n, t]) => `${ident(n)} ${t}`);
  await tx.query(`CREATE TABLE ${table} (${cols.join(', ')}) PARTITION BY RANGE ("time")`);
  await tx.query(`CREATE INDEX ON ${table} ("time")`);
  // The combined rows (all tag sets) of a bucket range, without reading the rows per tag set.
  await tx.query(`CREATE INDEX ON ${table} ("time") WHERE all_tags`);
  await tagIndexes(tx, stream, tableName);
  await tx.query(
    `INSERT INTO strata.rollup_levels (stream_id, level, interval_us, table_name, chunk_us) VALUES ($1, $2, $3, $4, $5)`,
    [stream.id, name, intervalUs.toString(), tableName, levelChunkUs(intervalUs, stream.chunkIntervalUs).toString()]);
}

/** Removes a level: its table, chunks (marked dropped in the registry) and state. */
async function removeLevel(tx: PoolClient, stream: Stream, level: Level): Promise<void> {
  await tx.query(`DROP TABLE IF EXISTS ${levelTable(level)}`);
  await tx.query(
    `UPDATE strata.chunks SET state = 'dropped', dropped_at = now() WHERE stream_id = $1 AND level = $2 AND state = 'active'`,
    [stream.id, level.name]);
  await tx.query('DELETE FROM strata.rollup_levels WHERE stream_id = $1 AND level = $2', [stream.id, level.name]);
}

/**
 * Makes the level tables match the setting. A level that is added is built from the start of the
 * stream's data by the next refresh; a level that is removed loses its table. Changing the levels
 * also rebuilds every coarser level, since what it is built from changed.
 */
export async function applyLevels(tx: PoolClient, stream: Stream, next: string[]): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1, $2)', [REFRESH_LOCK_SPACE, stream.id]);
  const have = await loadLevels(tx, stream.id, 'FOR UPDATE');
  const wanted = new Set(next);
  for (const l of have) if (!wanted.has(l.name)) await removeLevel(tx, stream, l);
  const kept = new Set(have.map((l) => l.name));
  const added = next.filter((n) => !kept.has(n));
  for (const n of added) await createLevel(tx, stream, n);
  if (added.length > 0 || kept.size !== have.length) {
    // A level above a new or removed one now has another source: rebuild it from there.
    const finestChange = [...added.map((n) => parseInterval(n) as bigint), ...have.filter((l) => !wanted.has(l.name)).map((l) => l.intervalUs)]
      .reduce((a, b) => (a < b ? a : b));
    for (const l of have) {
      if (wanted.has(l.name) && l.intervalUs > finestChange) await resetLevel(tx, stream, l);
    }
  }
  const now = await loadLevels(tx, stream.id, 'FOR UPDATE');
  if (now[0]?.name !== have[0]?.name) await restartPending(tx, stream, now);
}

/** Empties a level and sets its watermark back to nothing, to be rebuilt by the refresh. */
async function resetLevel(tx: PoolClient, stream: Stream, level: Level): Promise<void> {
  await tx.query(`TRUNCATE ${levelTable(level)}`);
  await tx.query('UPDATE strata.rollup_levels SET watermark = NULL WHERE stream_id = $1 AND level = $2', [stream.id, level.name]);
  await tx.query('DELETE FROM strata.rollup_invalidations WHERE stream_id = $1 AND level = $2', [stream.id, level.name]);
}

/**
 * Per tag column, an index on (tag, time) over the rows per tag set: a query for one instrument
 * reads that instrument's rows, not every tag set's.
 */
async function tagIndexes(tx: PoolClient, stream: Stream, tableName: string): Promise<void> {
  for (const [pos, c] of stream.columns.entries()) {
    if (c.role !== 'tag') continue;
    await tx.query(`CREATE INDEX IF NOT EXISTS ${ident(`${tableName}_k${pos}`)} ON ${qualified(DATA_SCHEMA, tableName)} (${ident(c.columnName)}, "time") WHERE NOT all_tags`);
  }
}

/** Adds the aggregate columns (and tag indexes) of new stream columns to every level table. */
export async function addLevelColumns(tx: PoolClient, stream: Stream): Promise<void> {
  const levels = await loadLevels(tx, stream.id);
  if (levels.length === 0) return;
  if (levels[0].pendingFromUs !== null) {
    if (pendingSupported(stream)) await ensurePendingTable(tx, stream);
    else {
      // A text or timestamp field: uploads can no longer add pending rows. Not while a refresh reads them.
      await tx.query('SELECT pg_advisory_xact_lock($1, $2)', [REFRESH_LOCK_SPACE, stream.id]);
      await restartPending(tx, stream, await loadLevels(tx, stream.id, 'FOR UPDATE'));
    }
  }
  const cols = levelColumnsDdl(stream);
  for (const l of levels) {
    await tx.query(`ALTER TABLE ${levelTable(l)} ${cols.map(([n, t]) => `ADD COLUMN IF NOT EXISTS ${ident(n)} ${t}`).join(', ')}`);
    await tagIndexes(tx, stream, l.tableName);
  }
}

/** Advisory lock space of a stream's refresh (one refresh of a stream at a time). */
export const REFRESH_LOCK_SPACE = 7_310_004; // its own space: job locks (7_310_005) key on hashtext(job)

export function describeLevel(l: Level): Record<string, unknown> {
  return { level: l.name, interval: formatInterval(l.intervalUs), table: l.tableName };
}
