// The level tables of a stream made to match its "rollups" setting: a level added gets its
// partitioned table and catalog row, a level removed loses them, the levels above a change are
// emptied to be rebuilt, and fields added to the stream add their columns to every level table
// (and to the pending table).
import type { PoolClient } from '../db/pool.ts';
import { DATA_SCHEMA, ident, qualified } from '../db/sql.ts';
import { parseInterval } from '../domain/interval.ts';
import type { Stream } from '../streams/catalog.ts';
import { levelColumnsDdl } from './layout.ts';
import { type Level, REFRESH_LOCK_SPACE, levelChunkUs, levelTable, levelTableName, loadLevels } from './levels.ts';
import { ensurePendingTable, pendingSupported, restartPending } from './pending-table.ts';

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
