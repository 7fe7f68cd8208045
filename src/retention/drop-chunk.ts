// Dropping one chunk, whole: DETACH PARTITION … CONCURRENTLY (ingests into other chunks carry on
// unblocked), then, in one transaction, check that the levels that absorbed the chunk hold no
// stale buckets over it (a late upload or a retraction into the chunk since its rollup coverage
// was confirmed records them in its own transaction, and the detach waited for it), count its rows
// per ingest, DROP TABLE, mark it dropped in the chunk registry, note the expired rows on their
// ingests and append the audit entry. A chunk whose rows changed in between is attached again and
// left for the next run.
import type { QueryResult } from 'pg';
import type { Db, PoolClient, Queryable } from '../db/pool.ts';
import { DATA_SCHEMA, qualified } from '../db/sql.ts';
import { formatMicros, pgTimestamp } from '../domain/time.ts';
import { appendAudit, systemActor } from '../audit/log.ts';
import type { Stream } from '../streams/catalog.ts';
import type { RollupCoverage } from '../rollups/coverage.ts';
import { deleteChunkSegments, segmentContentsSql } from '../compression/store.ts';
import { type Hold, type HoldRow, HOLD_LOCK_SPACE, overlappingHoldsSql, toHold } from './holds.ts';

export interface ChunkRow {
  id: number;
  streamId: number;
  level: string;
  tableName: string;
  startUs: bigint;
  endUs: bigint;
}

/** Rows per ingest id (raw chunks), or under "*" the row count (rollup chunks have no ingest ids). */
export type ChunkContents = Map<string, number>;

export async function expiredChunks(q: Queryable, streamId: number, level: string, cutoffUs: bigint): Promise<ChunkRow[]> {
  const { rows } = await q.query<{ id: string; table_name: string; start_us: string; end_us: string }>(
    `SELECT id, table_name, (extract(epoch FROM range_start) * 1000000)::bigint::text AS start_us,
            (extract(epoch FROM range_end) * 1000000)::bigint::text AS end_us
       FROM strata.chunks WHERE stream_id = $1 AND level = $2 AND state = 'active' AND range_end <= $3::timestamptz
      ORDER BY range_start`,
    [streamId, level, pgTimestamp(cutoffUs)]);
  return rows.map((r) => ({ id: Number(r.id), streamId, level, tableName: r.table_name, startUs: BigInt(r.start_us), endUs: BigInt(r.end_us) }));
}

function tableOf(c: ChunkRow): string {
  return qualified(DATA_SCHEMA, c.tableName);
}

/** Rows per ingest id (or the row count, for a rollup chunk), as SQL. */
function contentsSql(c: ChunkRow): string {
  // A raw chunk's rows: those of its table and those of its compressed segments.
  return c.level === 'raw'
    ? `SELECT id, sum(n)::text AS n FROM (SELECT ingest_id::text AS id, count(*)::bigint AS n FROM ${tableOf(c)} GROUP BY ingest_id
        UNION ALL ${segmentContentsSql(c.streamId, c.id)}) x GROUP BY id`
    : `SELECT '*' AS id, count(*)::text AS n FROM ${tableOf(c)}`;
}

// Counting a chunk is maintenance: one core, no parallel workers taken from ingests and queries.
const ONE_CORE = 'SET LOCAL max_parallel_workers_per_gather = 0';

function toContents(rows: { id: string; n: string }[]): ChunkContents {
  return new Map(rows.map((r) => [r.id, Number(r.n)]));
}

function rowCount(c: ChunkContents): number {
  let n = 0;
  for (const v of c.values()) n += v;
  return n;
}

interface Attachment {
  parent: string;
  pending: boolean;
}

/** Whether the chunk's table exists, and the table it is attached to (null when detached). */
async function tableState(q: Queryable, c: ChunkRow): Promise<{ exists: boolean; attachment: Attachment | null }> {
  const { rows } = await q.query<{ exists: boolean; nspname: string | null; relname: string | null; pending: boolean | null }>(
    `SELECT r.rel IS NOT NULL AS exists, n.nspname, p.relname, i.inhdetachpending AS pending
       FROM (SELECT to_regclass($1) AS rel) r
       LEFT JOIN pg_inherits i ON i.inhrelid = r.rel
       LEFT JOIN pg_class p ON p.oid = i.inhparent LEFT JOIN pg_namespace n ON n.oid = p.relnamespace`, [tableOf(c)]);
  const r = rows[0];
  return { exists: r.exists, attachment: r.relname ? { parent: qualified(r.nspname as string, r.relname), pending: r.pending === true } : null };
}

async function attachmentOf(q: Queryable, c: ChunkRow): Promise<Attachment | null> {
  return (await tableState(q, c)).attachment;
}

/** The partitioned table a chunk belongs to, from the catalog (raw: the stream table). */
async function parentTableOf(q: Queryable, c: ChunkRow, stream: Stream): Promise<string> {
  if (c.level === 'raw') return qualified(DATA_SCHEMA, stream.tableName);
  // A rollup chunk is named <level table>_p<start>; its level table is the partitioned table whose
  // name is that prefix.
  const prefix = c.tableName.replace(/_p\d{8}(t\d{6})?(bc)?$/, '');
  const { rows } = await q.query<{ ok: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AS ok`, [qualified(DATA_SCHEMA, prefix)]);
  if (!rows[0].ok) throw new Error(`cannot find the partitioned table of chunk ${c.tableName}`);
  return qualified(DATA_SCHEMA, prefix);
}

function bounds(c: ChunkRow): string {
  // pgTimestamp yields only digits, '-', ':', ' ', '.', '+' and 'BC': safe inside a literal.
  return `FROM ('${pgTimestamp(c.startUs)}') TO ('${pgTimestamp(c.endUs)}')`;
}

/**
 * Attaches again the chunks of a stream that a crashed retention run left detached (or half
 * detached) while the registry still counts them active, so that queries and rollups see the
 * whole stream before anything else is decided. Returns their table names.
 */
export async function repairDetached(db: Db, stream: Stream): Promise<string[]> {
  const { rows } = await db.pool.query<{ id: string; level: string; table_name: string; start_us: string; end_us: string }>(
    `SELECT c.id, c.level, c.table_name, (extract(epoch FROM c.range_start) * 1000000)::bigint::text AS start_us,
            (extract(epoch FROM c.range_end) * 1000000)::bigint::text AS end_us
       FROM strata.chunks c
      WHERE c.stream_id = $1 AND c.state = 'active'
        AND to_regclass(format('%I.%I', $2::text, c.table_name)) IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM pg_inherits i
                         WHERE i.inhrelid = to_regclass(format('%I.%I', $2::text, c.table_name)) AND NOT i.inhdetachpending)`,
    [stream.id, DATA_SCHEMA]);
  const repaired: string[] = [];
  for (const r of rows) {
    const c: ChunkRow = { id: Number(r.id), streamId: stream.id, level: r.level, tableName: r.table_name, startUs: BigInt(r.start_us), endUs: BigInt(r.end_us) };
    const client = await db.pool.connect();
    try {
      const att = await attachmentOf(client, c);
      if (att?.pending) await client.query(`ALTER TABLE ${att.parent} DETACH PARTITION ${tableOf(c)} FINALIZE`);
      const parent = att?.parent ?? await parentTableOf(client, c, stream);
      await client.query(`ALTER TABLE ${parent} ATTACH PARTITION ${tableOf(c)} FOR VALUES ${bounds(c)}`);
      repaired.push(c.tableName);
    } finally {
      client.release();
    }
  }
  return repaired;
}

export interface DropRequest {
  stream: Stream;
  chunk: ChunkRow;
  /** The rollups, asked after the detach whether rows changed in the levels' absorbed range. */
  coverage: RollupCoverage | null;
  runId: number | null;
  now: Date;
  /** The policy that expired it, e.g. "30 days", and the cutoff it implies. */
  keep: string;
  cutoffUs: bigint;
  /** Rollup levels that were confirmed to have absorbed the chunk's range. */
  absorbedBy: string[];
}

export type DropOutcome = { dropped: true; rows: number; ingests: number } | { dropped: false; reason: string };

/** Drops one chunk (see the header); never blocks ingests into other chunks. */
export async function dropChunk(db: Db, req: DropRequest): Promise<DropOutcome> {
  const client = await db.pool.connect();
  let broken: Error | undefined;
  try {
    return await detachAndDrop(client, req);
  } catch (err) {
    broken = err as Error; // the session's state is unknown: do not reuse it
    throw err;
  } finally {
    client.release(broken);
  }
}

async function detachAndDrop(client: PoolClient, req: DropRequest): Promise<DropOutcome> {
  const { chunk } = req;
  const { exists, attachment: att } = await tableState(client, chunk);
  // CONCURRENTLY cannot run in a transaction block; it waits for queries that may still read the
  // chunk but blocks no ingest into other chunks. A detach a crashed run left pending is finished.
  if (att) await client.query(`ALTER TABLE ${att.parent} DETACH PARTITION ${tableOf(chunk)} ${att.pending ? 'FINALIZE' : 'CONCURRENTLY'}`);
  const reattach = async (): Promise<void> => {
    if (att) await client.query(`ALTER TABLE ${att.parent} ATTACH PARTITION ${tableOf(chunk)} FOR VALUES ${bounds(chunk)}`);
  };
  try {
    return await verifyAndDrop(client, req, exists, reattach);
  } catch (err) {
    // Put the chunk back where it was; if even that fails, the next run re-attaches it first.
    await client.query('ROLLBACK').catch(() => undefined);
    await reattach().catch(() => undefined);
    throw err;
  }
}

/** BEGIN, the stream's hold lock, its holds over the chunk, and what the chunk holds: one round trip. */
async function openDrop(client: PoolClient, chunk: ChunkRow, exists: boolean): Promise<{ holds: Hold[]; after: ChunkContents | null }> {
  const contents = exists ? contentsSql(chunk) : null;
  // A hold placed from here on waits for this transaction (holds.ts takes the same lock).
  const results = await client.query([
    'BEGIN', ONE_CORE, `SELECT pg_advisory_xact_lock(${HOLD_LOCK_SPACE}, ${chunk.streamId})`,
    overlappingHoldsSql(chunk.streamId, chunk.startUs, chunk.endUs), ...(contents ? [contents] : []),
  ].join(';\n')) as unknown as QueryResult[];
  const holds = (results[3].rows as HoldRow[]).map(toHold);
  const after = contents ? toContents(results[4].rows as { id: string; n: string }[]) : null;
  return { holds, after };
}

async function verifyAndDrop(client: PoolClient, req: DropRequest, exists: boolean, reattach: () => Promise<void>): Promise<DropOutcome> {
  const { chunk } = req;
  const { holds, after } = await openDrop(client, chunk, exists);
  const refuse = async (reason: string): Promise<DropOutcome> => {
    await client.query('ROLLBACK');
    await reattach();
    return { dropped: false, reason };
  };
  if (holds.length > 0) return refuse(holdReason(holds));
  // Rows added to the chunk or retracted from it after the levels absorbed it left stale buckets
  // in them (recorded in the same transaction); the detach waited for every such transaction.
  if (req.coverage && req.absorbedBy.length > 0 && await req.coverage.staleWithin(client, req.stream, req.absorbedBy, chunk.startUs, chunk.endUs)) {
    return refuse('rows were added or removed while retention checked the chunk (a late upload or a retraction); it is checked again on the next run');
  }
  if (after !== null) await client.query(`DROP TABLE ${tableOf(chunk)}`);
  if (chunk.level === 'raw') await deleteChunkSegments(client, chunk.streamId, chunk.id);
  const rows = after === null ? 0 : rowCount(after);
  const ingests = chunk.level === 'raw' && after ? [...after.entries()].map(([id, n]) => ({ id, rows: n })) : [];
  const fullyExpired = await recordDrop(client, req, after === null ? null : rows, ingests);
  await appendAudit(client, systemActor, 'retention.drop', `chunk:${chunk.tableName}`, {
    stream: req.stream.name, stream_id: req.stream.id, level: chunk.level, chunk: chunk.tableName, chunk_id: chunk.id,
    range_start: formatMicros(chunk.startUs), range_end: formatMicros(chunk.endUs),
    row_count: after === null ? null : rows, table_missing: after === null, run_id: req.runId,
    policy: req.keep, cutoff: formatMicros(req.cutoffUs), absorbed_by: req.absorbedBy,
    // Ingest ids as a plain list: the audit module finds an ingest's entries by details.ingests.
    ingests: ingests.map((i) => i.id), ingest_rows: Object.fromEntries(ingests.map((i) => [i.id, i.rows])),
    ingests_fully_expired: fullyExpired,
  });
  await client.query('COMMIT');
  return { dropped: true, rows, ingests: ingests.length };
}

function holdReason(holds: Hold[]): string {
  return `legal hold ${holds.map((h) => `${h.id} (${JSON.stringify(h.reason)}, ${h.from ?? '−∞'} – ${h.to ?? '∞'})`).join(', ')} covers part of the chunk`;
}

/**
 * Marks the chunk dropped in the registry and adds its rows to each ingest's expired count, in
 * one statement; returns the ingests of which no row is left anywhere (their records and
 * provenance stay).
 */
async function recordDrop(tx: PoolClient, req: DropRequest, rows: number | null, ingests: { id: string; rows: number }[]): Promise<string[]> {
  const { rows: out } = await tx.query<{ fully: string[] }>(
    `WITH c AS (
       UPDATE strata.chunks SET state = 'dropped', dropped_at = $2, dropped_by_run = $3, row_count = $4
        WHERE id = $1 AND state = 'active' RETURNING id),
          d AS (SELECT * FROM unnest($5::bigint[], $6::bigint[]) AS d(id, n)),
          upd AS (
       UPDATE strata.ingests i SET expiry = jsonb_build_object(
           'rows_expired', coalesce((i.expiry->>'rows_expired')::bigint, 0) + d.n,
           'all_expired', coalesce((i.expiry->>'rows_expired')::bigint, 0) + d.n >= i.rows,
           'expired_at', CASE WHEN coalesce((i.expiry->>'rows_expired')::bigint, 0) + d.n >= i.rows THEN to_jsonb($7::text) ELSE 'null'::jsonb END,
           'chunks_dropped', coalesce(i.expiry->'chunks_dropped', '[]'::jsonb) || to_jsonb($8::text))
         FROM d WHERE i.id = d.id
       RETURNING i.id, (i.expiry->>'all_expired')::boolean AS all_expired)
     SELECT coalesce((SELECT array_agg(id::text ORDER BY id) FROM upd WHERE all_expired), '{}') AS fully,
            (SELECT count(*) FROM c) AS marked`,
    [req.chunk.id, req.now, req.runId, rows, ingests.map((i) => i.id), ingests.map((i) => i.rows), req.now.toISOString(), req.chunk.tableName]);
  return out[0].fully;
}
