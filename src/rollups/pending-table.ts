// The stream's pending table (strata_data.<stream>_pend): partial aggregates that uploads add for
// the buckets of the finest level at or above its watermark (pending.ts makes them), in the
// layout of a level row (layout.ts) plus the ingest that wrote each; and pending_from, from which
// instant on the finest level's pending rows are complete. The refresh reads them as a level
// (pendingSource) and deletes them once it has materialised their buckets; a retraction deletes
// the ingest's rows.
import type { PoolClient, Queryable } from '../db/pool.ts';
import { DATA_SCHEMA, ident, qualified } from '../db/sql.ts';
import { SUPPORTED_MIN_US, pgTimestamp } from '../domain/time.ts';
import { registerRetractionObserver } from '../ingest/observers.ts';
import type { Stream } from '../streams/catalog.ts';
import { levelColumnsDdl, rollupFields } from './layout.ts';
import type { Level } from './levels.ts';

export function pendingTableName(stream: Pick<Stream, 'tableName'>): string {
  return `${stream.tableName.slice(0, 36)}_pend`;
}

export const pendingTable = (stream: Pick<Stream, 'tableName'>): string => qualified(DATA_SCHEMA, pendingTableName(stream));

/** The finest level as the pending rows' source for a refresh, read like a level table. */
export function pendingSource(stream: Pick<Stream, 'tableName'>, finest: Level): Level {
  return { ...finest, name: 'pending', tableName: pendingTableName(stream), watermarkUs: null, pendingFromUs: null };
}

/** Whether partial aggregates can be made for every field of the stream while uploading. */
export function pendingSupported(stream: Pick<Stream, 'columns'>): boolean {
  return rollupFields(stream).every((f) => f.column.type !== 'text' && f.column.type !== 'timestamptz');
}

/** Creates the stream's pending table, or adds the columns of fields added since. */
export async function ensurePendingTable(tx: Queryable, stream: Stream): Promise<void> {
  const table = pendingTable(stream);
  const cols = levelColumnsDdl(stream).map(([n, t]) => `${ident(n)} ${t}`);
  await tx.query(`CREATE TABLE IF NOT EXISTS ${table} (ingest_id bigint NOT NULL, ${cols.join(', ')})`);
  await tx.query(`ALTER TABLE ${table} ${cols.map((c) => `ADD COLUMN IF NOT EXISTS ${c}`).join(', ')}`);
  await tx.query(`CREATE INDEX IF NOT EXISTS ${ident(`${pendingTableName(stream)}_time`)} ON ${table} ("time")`);
}

async function pendingTableExists(q: Queryable, stream: Stream): Promise<boolean> {
  const { rows } = await q.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [pendingTable(stream)]);
  return rows[0].t !== null;
}

/**
 * Starts the pending rows over for the stream's levels as they now are (`levels`, finest first,
 * their rows locked FOR UPDATE by the caller): deletes what there is, and lets the finest level
 * take pending rows from past the last raw chunk on (from the start, for a stream without rows).
 */
export async function restartPending(tx: PoolClient, stream: Stream, levels: readonly Level[]): Promise<void> {
  if (await pendingTableExists(tx, stream)) await tx.query(`DELETE FROM ${pendingTable(stream)}`);
  await tx.query('UPDATE strata.rollup_levels SET pending_from = NULL WHERE stream_id = $1 AND pending_from IS NOT NULL', [stream.id]);
  const finest = levels[0];
  if (!finest || !pendingSupported(stream)) return;
  await ensurePendingTable(tx, stream);
  await tx.query(
    `UPDATE strata.rollup_levels SET pending_from = coalesce(
        (SELECT max(range_end) FROM strata.chunks WHERE stream_id = $1 AND level = 'raw' AND state = 'active'), $3::timestamptz)
      WHERE stream_id = $1 AND level = $2`,
    [stream.id, finest.name, pgTimestamp(SUPPORTED_MIN_US)]);
}

/** Deletes the pending rows of [from, to) (the refresh has materialised those buckets). */
export async function deletePending(tx: Queryable, stream: Stream, from: bigint, to: bigint): Promise<void> {
  await tx.query(`DELETE FROM ${pendingTable(stream)} WHERE "time" >= $1::timestamptz AND "time" < $2::timestamptz`, [pgTimestamp(from), pgTimestamp(to)]);
}

registerRetractionObserver(async (tx, { stream, ingestId }) => {
  if (await pendingTableExists(tx, stream)) await tx.query(`DELETE FROM ${pendingTable(stream)} WHERE ingest_id = $1`, [ingestId.toString()]);
});
