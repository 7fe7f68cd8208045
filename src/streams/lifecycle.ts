// Deleting and renaming a stream (admin). Both run in one transaction with their audit entry.
//
// Delete removes what holds the stream's data — its table with every chunk, its rollup levels
// (each feature setting is turned off through its module, which drops the level tables and their
// state), any other table of the stream, and the chunks' registry entries are marked dropped —
// and keeps the evidence: the catalog row (marked deleted, its name free for a new stream), its
// column definitions, ingest records (which keep the stream's id and name) and their originals.
// A legal hold on the stream refuses it.
//
// Rename changes the name only: the table keeps its name (it is an internal identifier), and keys
// scoped to the stream, and holds on it, follow the new name.
import type { Db, PoolClient } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { DATA_SCHEMA, qualified } from '../db/sql.ts';
import { type Actor, appendAudit } from '../audit/log.ts';
import { AppError } from '../errors/index.ts';
import { CREATE_LOCK_SPACE, type Stream, getStreamById } from './catalog.ts';
import { streamJson } from './definition.ts';
import { assertStreamName } from './identifiers.ts';
import { settingHandlers } from './settings.ts';

export interface StreamDeletion {
  stream: string;
  stream_id: number;
  table: string;
  deleted_at: string;
  chunks_dropped: number;
  ingests: number;
  rows: number;
  audit_seq: number;
}

/** Uploads into the stream, or a job working on it, held its tables past the lock timeout. */
async function unlessBusy<T>(name: string, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if ((err as { code?: string }).code !== '55P03') throw err;
    throw new AppError(503, 'conflict',
      `cannot ${what} stream ${JSON.stringify(name)} now: uploads or a job held it for longer than ${LOCK_TIMEOUT}; retry the request`, { cause: err });
  }
}

const LOCK_TIMEOUT = '30s';

async function lockLiveStream(tx: PoolClient, name: string): Promise<Stream> {
  await tx.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
  // NO KEY: an upload committing meanwhile checks its ingest record's reference to this row (FOR
  // KEY SHARE), which FOR UPDATE would block while this waits for the upload: a deadlock.
  const { rows } = await tx.query<{ id: string }>('SELECT id FROM strata.streams WHERE name = $1 AND deleted_at IS NULL FOR NO KEY UPDATE', [name]);
  const stream = rows[0] ? await getStreamById(tx, Number(rows[0].id)) : null;
  if (!stream) throw new AppError(404, 'not_found', `stream ${JSON.stringify(name)} does not exist`);
  return stream;
}

async function refuseUnderHold(tx: PoolClient, stream: Stream): Promise<void> {
  const { rows } = await tx.query<{ id: string; reason: string }>(
    'SELECT id, reason FROM strata.holds WHERE stream_id = $1 AND released_at IS NULL ORDER BY id', [stream.id]);
  if (rows.length === 0) return;
  const list = rows.slice(0, 10).map((h) => `${h.id} (${JSON.stringify(h.reason.slice(0, 80))})`).join(', ');
  throw new AppError(409, 'legal_hold',
    `stream ${JSON.stringify(stream.name)} cannot be deleted: legal hold${rows.length > 1 ? 's' : ''} ${list} cover${rows.length > 1 ? '' : 's'} it; release ${rows.length > 1 ? 'them' : 'it'} first (DELETE /v1/holds/{id})`,
    { detail: { holds: rows.map((h) => Number(h.id)) } });
}

/** Tables of the stream besides its own (pending rows, leftovers): every name starts with s<id>_. */
async function otherTablesOf(tx: PoolClient, stream: Stream): Promise<string[]> {
  const prefix = `s${stream.id}_`;
  if (!stream.tableName.startsWith(prefix)) return [];
  const { rows } = await tx.query<{ relname: string }>(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND left(c.relname, length($2)) = $2`,
    [DATA_SCHEMA, prefix]);
  return rows.map((r) => r.relname);
}

export async function deleteStream(db: Db, name: string, actor: Actor): Promise<StreamDeletion> {
  return unlessBusy(name, 'delete', () => withTransaction(db, async (tx) => {
    const stream = await lockLiveStream(tx, name);
    await refuseUnderHold(tx, stream);
    // Uploads in progress finish first (their rows then go with the table); taken before the
    // rollup state, which an upload reads just before it commits.
    await tx.query(`LOCK TABLE ${qualified(DATA_SCHEMA, stream.tableName)} IN ACCESS EXCLUSIVE MODE`);
    const before = streamJson(stream);
    for (const h of settingHandlers()) {
      const previous = (stream.settings[h.key] ?? null) as never;
      if (previous !== null) await h.apply?.(tx, stream, previous, null, actor);
    }
    await tx.query(`DROP TABLE IF EXISTS ${qualified(DATA_SCHEMA, stream.tableName)} CASCADE`);
    for (const t of await otherTablesOf(tx, stream)) await tx.query(`DROP TABLE IF EXISTS ${qualified(DATA_SCHEMA, t)} CASCADE`);
    // Compressed chunks' segments (one table for every stream).
    await tx.query(`DELETE FROM ${qualified(DATA_SCHEMA, 'segments')} WHERE stream_id = $1`, [stream.id]);
    const chunks = await tx.query(
      `UPDATE strata.chunks SET state = 'dropped', dropped_at = now() WHERE stream_id = $1 AND state = 'active'`, [stream.id]);
    const { rows: [ingests] } = await tx.query<{ n: string; rows: string }>(
      `SELECT count(*)::text AS n, coalesce(sum(rows), 0)::text AS rows FROM strata.ingests WHERE stream_id = $1 AND status = 'committed'`, [stream.id]);
    const { rows: [marked] } = await tx.query<{ at: Date }>(
      'UPDATE strata.streams SET deleted_at = now(), deleted_by = $2, updated_at = now() WHERE id = $1 RETURNING deleted_at AS at',
      [stream.id, actor.keyId]);
    const result = {
      stream: stream.name, stream_id: stream.id, table: `${DATA_SCHEMA}.${stream.tableName}`, deleted_at: marked.at.toISOString(),
      chunks_dropped: chunks.rowCount ?? 0, ingests: Number(ingests.n), rows: Number(ingests.rows),
    };
    const entry = await appendAudit(tx, actor, 'stream.delete', `stream:${stream.name}`, { ...result, before, after: null });
    return { ...result, audit_seq: Number(entry.seq) };
  }));
}

export async function renameStream(db: Db, name: string, newName: string, actor: Actor): Promise<Stream> {
  assertStreamName(newName);
  return unlessBusy(name, 'rename', () => withTransaction(db, async (tx) => {
    const stream = await lockLiveStream(tx, name);
    if (newName === name) throw new AppError(400, 'invalid_body', `stream ${JSON.stringify(name)} already has that name`);
    // Serialised with a first upload creating a stream of the new name.
    await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [CREATE_LOCK_SPACE, newName]);
    const taken = await tx.query('SELECT 1 FROM strata.streams WHERE name = $1 AND deleted_at IS NULL', [newName]);
    if (taken.rowCount) throw new AppError(409, 'conflict', `stream ${JSON.stringify(newName)} already exists`);
    await tx.query('UPDATE strata.streams SET name = $2, updated_at = now() WHERE id = $1', [stream.id, newName]);
    const keys = await tx.query<{ id: string }>(
      `UPDATE strata.api_keys SET streams = CASE WHEN $2 = ANY(streams) THEN array_remove(streams, $1) ELSE array_replace(streams, $1, $2) END
        WHERE $1 = ANY(streams) RETURNING id`, [name, newName]);
    const holds = await tx.query<{ id: string }>('UPDATE strata.holds SET stream_name = $2 WHERE stream_id = $1 RETURNING id', [stream.id, newName]);
    await appendAudit(tx, actor, 'stream.rename', `stream:${name}`, {
      stream_id: stream.id, before: { name }, after: { name: newName }, table: `${DATA_SCHEMA}.${stream.tableName}`,
      keys: keys.rows.map((k) => Number(k.id)), holds: holds.rows.map((h) => Number(h.id)),
    });
    return (await getStreamById(tx, stream.id)) as Stream;
  }));
}
