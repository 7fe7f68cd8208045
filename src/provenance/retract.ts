// Retraction: an auditor or admin withdraws an ingest. Its rows are deleted from every chunk of
// its time range, modules that derive data from rows (rollups) are told in the same transaction
// so that they invalidate what they built from them, the record becomes 'retracted' with the
// reason, who and when, and the act is audited — all or nothing. The record and the original
// stay: a retraction hides nothing from an audit.
import type { Db, PoolClient } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { type Actor, appendAudit } from '../audit/log.ts';
import { formatMicros, pgTimestamp } from '../domain/time.ts';
import { AppError } from '../errors/index.ts';
import { notifyRetraction } from '../ingest/observers.ts';
import { type Stream, getStreamById, streamTable } from '../streams/catalog.ts';
import { DATA_SCHEMA, qualified } from '../db/sql.ts';
import { deleteIngestSegments } from '../compression/store.ts';
import { type IngestRecord, getIngest } from './ingest-records.ts';

export const MAX_REASON_CHARS = 4096;

interface LockedIngest {
  id: string; stream_id: string | null; stream_name: string; status: string; rows: string; sha256: string | null;
  filename: string | null; time_min_us: string | null; time_max_us: string | null;
  retracted_at: Date | null; retracted_by: string | null;
}

async function lockIngest(tx: PoolClient, id: string): Promise<LockedIngest> {
  const { rows } = await tx.query<LockedIngest>(
    `SELECT id, stream_id, stream_name, status, rows, sha256, filename, retracted_at, retracted_by,
            (extract(epoch FROM time_min) * 1000000)::bigint::text AS time_min_us,
            (extract(epoch FROM time_max) * 1000000)::bigint::text AS time_max_us
       FROM strata.ingests WHERE id = $1 FOR UPDATE`, [id]);
  if (rows.length === 0) throw new AppError(404, 'not_found', `ingest ${id} does not exist`);
  const i = rows[0];
  if (i.status === 'rejected') {
    throw new AppError(409, 'conflict', `ingest ${id} was rejected and stored no rows; there is nothing to retract`);
  }
  if (i.status === 'retracted') {
    throw new AppError(409, 'conflict',
      `ingest ${id} was already retracted at ${i.retracted_at?.toISOString()} by key ${i.retracted_by ?? 'unknown'}`);
  }
  return i;
}

/**
 * Deletes the ingest's rows chunk by chunk — the active raw chunks of the stream that overlap its
 * time range — and returns the rows removed per chunk. Rows still missing after that (none,
 * unless a chunk escaped the registry) are deleted through the stream table as a last sweep.
 */
async function deleteRows(tx: PoolClient, stream: Stream, i: LockedIngest): Promise<Record<string, number>> {
  if (i.time_min_us === null || i.time_max_us === null) return {};
  const range = [pgTimestamp(BigInt(i.time_min_us)), pgTimestamp(BigInt(i.time_max_us))];
  const { rows: chunks } = await tx.query<{ table_name: string }>(
    `SELECT table_name FROM strata.chunks
      WHERE stream_id = $1 AND level = 'raw' AND state = 'active' AND range_start <= $3::timestamptz AND range_end > $2::timestamptz
      ORDER BY range_start`, [stream.id, ...range]);
  const perChunk: Record<string, number> = {};
  let deleted = 0;
  for (const c of chunks) {
    const r = await tx.query(`DELETE FROM ${qualified(DATA_SCHEMA, c.table_name)} WHERE ingest_id = $1 AND "time" >= $2::timestamptz AND "time" <= $3::timestamptz`,
      [i.id, ...range]);
    if (r.rowCount) perChunk[c.table_name] = r.rowCount;
    deleted += r.rowCount ?? 0;
  }
  // Rows of compressed chunks: the ingest's segments go whole.
  for (const [table, n] of await deleteIngestSegments(tx, stream.id, String(i.id))) {
    perChunk[table] = (perChunk[table] ?? 0) + n;
    deleted += n;
  }
  if (deleted < Number(i.rows)) {
    const rest = await tx.query(`DELETE FROM ${streamTable(stream)} WHERE ingest_id = $1 AND "time" >= $2::timestamptz AND "time" <= $3::timestamptz`, [i.id, ...range]);
    if (rest.rowCount) perChunk['(unregistered)'] = rest.rowCount;
  }
  return perChunk;
}

export async function retractIngest(db: Db, id: string, reason: string, actor: Actor): Promise<IngestRecord> {
  if (reason.trim().length === 0 || reason.length > MAX_REASON_CHARS) {
    throw new AppError(400, 'invalid_body', `reason must be 1–${MAX_REASON_CHARS} characters and not blank`);
  }
  await withTransaction(db, async (tx) => {
    const i = await lockIngest(tx, id);
    const stream = i.stream_id === null ? null : await getStreamById(tx, Number(i.stream_id));
    if (!stream) throw new AppError(409, 'conflict', `ingest ${id}: its stream ${JSON.stringify(i.stream_name)} no longer exists`);
    const perChunk = await deleteRows(tx, stream, i);
    const deleted = Object.values(perChunk).reduce((a, b) => a + b, 0);
    const timeMin = i.time_min_us === null ? null : BigInt(i.time_min_us);
    const timeMax = i.time_max_us === null ? null : BigInt(i.time_max_us);
    await notifyRetraction(tx, { stream, ingestId: BigInt(id), timeMin, timeMax });
    await tx.query(
      `UPDATE strata.ingests SET status = 'retracted', retracted_at = now(), retracted_by = $2, retraction_reason = $3, rows_retracted = $4
        WHERE id = $1`, [id, actor.keyId, reason, deleted]);
    await appendAudit(tx, actor, 'ingest.retract', `ingest:${id}`, {
      ingest_id: id, stream: stream.name, reason, sha256: i.sha256, filename: i.filename,
      time_min: timeMin === null ? null : formatMicros(timeMin), time_max: timeMax === null ? null : formatMicros(timeMax),
      rows_recorded: Number(i.rows), rows_deleted: deleted,
      // Rows of chunks that retention had already dropped are gone without this retraction.
      rows_not_found: Number(i.rows) - deleted,
      chunks: perChunk,
    });
  });
  return (await getIngest(db.pool, id)) as IngestRecord;
}
