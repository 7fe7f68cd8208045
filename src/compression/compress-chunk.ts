// Converting one raw chunk into segments, in one transaction: the chunk is locked against writes
// (EXCLUSIVE: queries go on reading it), its rows stream out of a second connection sorted by tag
// set, ingest and time, segments are written as they fill, then the chunk's table is emptied
// (TRUNCATE, the only moment readers wait, and briefly), the registry updated and the act
// audited. Killed at any point, the transaction rolls back: the chunk holds its rows as before,
// and no segment of it was written. A chunk already compressed that received late rows goes the
// same way: its late rows become segments of their own, the existing segments are not touched.
// Each row keeps its place in the table (the order a scan returned it): readers that add floats up
// replay that order, so that sums do not change in their last digit when a chunk is compressed.
import { to as copyTo } from 'pg-copy-streams';
import type { Db, PoolClient } from '../db/pool.ts';
import { DATA_SCHEMA, ident, qualified } from '../db/sql.ts';
import { formatMicros } from '../domain/time.ts';
import type { Stream } from '../domain/types.ts';
import { appendAudit, systemActor } from '../audit/log.ts';
import { CopyRowParser } from './copy-rows.ts';
import { type EncodedSegment, SegmentBuilder } from './segment.ts';
import { insertSegments } from './store.ts';

export interface ChunkRef {
  id: number;
  tableName: string;
  startUs: bigint;
  endUs: bigint;
}

export interface CompressOutcome {
  rows: number;
  segments: number;
  bytes: number;
}

export interface CompressOptions {
  runId: number | null;
  /** How long to wait for the chunk's locks before leaving it for the next run. */
  lockTimeoutMs?: number;
  /** Called after each batch of segments is written, and just before COMMIT (tests stop the process there). */
  afterWrite?: () => Promise<void>;
  beforeCommit?: () => Promise<void>;
}

const WRITE_EVERY = 16;

function segmentBytes(s: EncodedSegment): number {
  return s.timeData.length + s.data.reduce((a, d) => a + (d?.length ?? 0), 0);
}

/** Streams the chunk's rows into segments, written on `tx` as they fill. */
async function encodeRows(db: Db, tx: PoolClient, stream: Stream, chunk: ChunkRef, opts: CompressOptions): Promise<CompressOutcome> {
  const tags = stream.columns.filter((c) => c.role === 'tag');
  const fields = stream.columns.filter((c) => c.role !== 'tag');
  const out: CompressOutcome = { rows: 0, segments: 0, bytes: 0 };
  const ready: EncodedSegment[] = [];
  const builder = new SegmentBuilder(tags, fields, (s) => ready.push(s));
  const write = async (): Promise<void> => {
    const batch = ready.splice(0);
    for (const s of batch) { out.rows += s.rowCount; out.segments++; out.bytes += segmentBytes(s); }
    await insertSegments(tx, stream.id, chunk.id, batch);
    if (opts.afterWrite) await opts.afterWrite();
  };
  const cols = ['"time"', 'ingest_id', ...tags.map((c) => ident(c.columnName)), ...fields.map((c) => ident(c.columnName)), 'place'];
  const order = [...tags.map((c) => ident(c.columnName)), 'ingest_id', '"time"', 'place'];
  const reader = await db.pool.connect();
  let broken: Error | undefined;
  try {
    await reader.query('SET work_mem = \'64MB\'');
    const parser = new CopyRowParser(cols.length, builder.add);
    const copy = reader.query(copyTo(`COPY (SELECT ${cols.join(', ')} FROM (SELECT *, row_number() OVER () AS place FROM ${qualified(DATA_SCHEMA, chunk.tableName)}) c ORDER BY ${order.join(', ')}) TO STDOUT (FORMAT binary)`));
    for await (const piece of copy) {
      parser.push(piece as Buffer);
      if (ready.length >= WRITE_EVERY) await write();
    }
    builder.flush();
    await write();
  } catch (err) {
    broken = err as Error;
    throw err;
  } finally {
    await reader.query('RESET work_mem').catch((e: Error) => { broken ??= e; });
    reader.release(broken);
  }
  return out;
}

/** Compresses the chunk's plain rows; null when it had none, or was dropped meanwhile. */
export async function compressChunk(db: Db, stream: Stream, chunk: ChunkRef, opts: CompressOptions): Promise<CompressOutcome | null> {
  const tx = await db.pool.connect();
  let broken: Error | undefined;
  const table = qualified(DATA_SCHEMA, chunk.tableName);
  try {
    await tx.query('BEGIN');
    await tx.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(opts.lockTimeoutMs ?? 5000))}`);
    const { rows: live } = await tx.query(
      `SELECT 1 FROM strata.chunks WHERE id = $1 AND state = 'active' AND to_regclass($2) IS NOT NULL
         AND EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass($2) AND NOT inhdetachpending) FOR UPDATE`, [chunk.id, table]);
    if (live.length === 0) { await tx.query('ROLLBACK'); return null; }
    await tx.query(`LOCK TABLE ${table} IN EXCLUSIVE MODE`);
    const { rows: any } = await tx.query(`SELECT 1 FROM ${table} LIMIT 1`);
    if (any.length === 0) { await tx.query('ROLLBACK'); return null; }
    const out = await encodeRows(db, tx, stream, chunk, opts);
    await tx.query(`TRUNCATE ${table}`);
    await tx.query(
      `UPDATE strata.chunks SET compressed_at = coalesce(compressed_at, now()), compressed_rows = coalesce(compressed_rows, 0) + $2,
              compressed_bytes = coalesce(compressed_bytes, 0) + $3 WHERE id = $1`, [chunk.id, out.rows, out.bytes]);
    await appendAudit(tx, systemActor, 'chunk.compress', `chunk:${chunk.tableName}`, {
      stream: stream.name, stream_id: stream.id, chunk: chunk.tableName, chunk_id: chunk.id,
      range_start: formatMicros(chunk.startUs), range_end: formatMicros(chunk.endUs),
      rows: out.rows, segments: out.segments, bytes: out.bytes, run_id: opts.runId,
    });
    if (opts.beforeCommit) await opts.beforeCommit();
    await tx.query('COMMIT');
    return out;
  } catch (err) {
    await tx.query('ROLLBACK').catch((e: Error) => { broken = e; });
    throw err;
  } finally {
    tx.release(broken);
  }
}
