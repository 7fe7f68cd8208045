// Converting one raw chunk into segments, in one transaction: the chunk is locked against writes
// (EXCLUSIVE: queries go on reading it); a worker thread (convert-worker.ts) reads its rows on a
// connection of its own, groups and encodes them, and hands back segment rows, which a binary
// COPY writes in the transaction as they come; then the chunk's table is emptied (TRUNCATE, the
// only moment readers wait, and briefly), the registry updated and the act audited. The server's
// thread only passes bytes on: reading, grouping and encoding never hold its event loop. Killed
// at any point, or the worker failing, the transaction rolls back: the chunk holds its rows as
// before, and no segment of it was written. A chunk already compressed that received late rows
// goes the same way: its late rows become segments of their own, the existing segments are not
// touched. Each row keeps its place in the table (the order a scan returned it): readers that add
// floats up replay that order, so that sums do not change in their last digit when a chunk is
// compressed.
import type { Db, PoolClient } from '../db/pool.ts';
import { DATA_SCHEMA, ident, qualified } from '../db/sql.ts';
import { formatMicros } from '../domain/time.ts';
import type { Stream } from '../domain/types.ts';
import { appendAudit, systemActor } from '../audit/log.ts';
import { DecoderThread } from '../ingest/decoders/worker-thread.ts';
import { foreground } from '../jobs/foreground.ts';
import type { ConvertJob, FromWorker } from './convert-protocol.ts';
import { writeSegmentRows } from './segment-copy.ts';

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
  /** Milliseconds the conversion paused for uploads (STRATA_COMPRESSION_BUSY_PAUSE). */
  pausedMs: number;
}

export interface CompressOptions {
  runId: number | null;
  /** How long to wait for the chunk's locks before leaving it for the next run. */
  lockTimeoutMs?: number;
  /** Called after each batch of segments is written, and just before COMMIT (tests stop the process there). */
  afterWrite?: () => Promise<void>;
  beforeCommit?: () => Promise<void>;
  /** The nice value of the worker thread and its reading connection (STRATA_JOB_NICE); 0 or absent: unchanged. */
  nice?: number;
  /** While uploads run, the conversion pauses for this percentage of its working time (STRATA_COMPRESSION_BUSY_PAUSE). */
  busyPausePercent?: number;
}

/** Faults tests inject: the worker exits, as a crashed thread does, after sending this many batches. */
export const conversionFaults: { workerExitAfterBatches?: number } = {};

const ENTRY = new URL('./convert-worker-entry.mjs', import.meta.url);
/**
 * Conversions running at once in this process (the job works on several streams at a time): one
 * worker busy leaves the other cores to ingest and queries, and bounds the memory conversions take.
 */
const CONVERSIONS_AT_ONCE = 1;
let running = 0;
const waiting: (() => void)[] = [];

async function conversionSlot(): Promise<() => void> {
  if (running >= CONVERSIONS_AT_ONCE) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  return () => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
}
/** Batches of segment rows (about 1 MB each) the worker may encode ahead of the COPY. */
const READ_AHEAD = 2;
/** Bytes queued on the COPY before a write waits for PostgreSQL. */
const COPY_WINDOW = 4 << 20;

function failure(m: FromWorker): Error {
  if (m.type === 'error') return new Error(m.error.message);
  return new Error(`the compression worker sent ${m.type} out of turn`);
}

/** Converts the chunk's rows in the worker; their segments are written on `tx` as they come. */
async function encodeRows(db: Db, tx: PoolClient, stream: Stream, chunk: ChunkRef, opts: CompressOptions): Promise<CompressOutcome> {
  const tags = stream.columns.filter((c) => c.role === 'tag');
  const fields = stream.columns.filter((c) => c.role !== 'tag');
  const job: ConvertJob = {
    url: db.url, table: qualified(DATA_SCHEMA, chunk.tableName),
    columns: ['"time"', 'ingest_id', ...tags.map((c) => ident(c.columnName)), ...fields.map((c) => ident(c.columnName))],
    tags, fields, streamId: stream.id, chunkId: chunk.id, nice: opts.nice ?? 0,
    foreground: foreground.shared, busyPausePercent: opts.busyPausePercent ?? 0, exitAfterBatches: conversionFaults.workerExitAfterBatches,
  };
  const out: CompressOutcome = { rows: 0, segments: 0, bytes: 0, pausedMs: 0 };
  const worker = new DecoderThread<FromWorker>(ENTRY, {
    reader: 'the compression worker', workerData: job,
    // A young generation larger than a decoder's: encoding makes many short-lived arrays. Grouping
    // and encoding took 3.5, 3.3 and 3.0 µs a row with semi-spaces of 16, 32 (this) and 64 MB.
    resourceLimits: { maxOldGenerationSizeMb: 128, maxYoungGenerationSizeMb: 96 },
  });
  try {
    worker.credit(READ_AHEAD);
    for (;;) {
      const m = await worker.next();
      if (m.type === 'end') {
        if (m.rows !== out.rows) throw new Error(`the compression worker read ${m.rows} rows and encoded ${out.rows}`);
        out.pausedMs = m.pausedMs;
        break;
      }
      if (m.type !== 'segments') throw failure(m);
      worker.credit(1);
      await writeSegmentRows(tx, {
        segments: Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength),
        parts: Buffer.from(m.parts.buffer, m.parts.byteOffset, m.parts.byteLength),
        count: m.segments,
      }, COPY_WINDOW);
      out.rows += m.rows; out.segments += m.segments; out.bytes += m.bytes;
      if (opts.afterWrite) await opts.afterWrite();
    }
    return out;
  } finally {
    await worker.end();
  }
}

/** Compresses the chunk's plain rows; null when it had none, or was dropped meanwhile. */
export async function compressChunk(db: Db, stream: Stream, chunk: ChunkRef, opts: CompressOptions): Promise<CompressOutcome | null> {
  // Taken before the chunk is locked: waiting for it never holds back writes to the chunk.
  const release = await conversionSlot();
  try {
    return await convertChunk(db, stream, chunk, opts);
  } finally {
    release();
  }
}

async function convertChunk(db: Db, stream: Stream, chunk: ChunkRef, opts: CompressOptions): Promise<CompressOutcome | null> {
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
