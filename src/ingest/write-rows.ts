// Writes an upload's batches into its stream inside the ingest transaction. Rows go through
// one COPY for as long as the chunks they need exist; when a batch needs new chunks, they are
// created on another connection (partitions/) if no one has made them yet, the running COPY is
// finished, the chunks new to this upload are locked here (which makes this transaction see them,
// also those a concurrent upload attached), and a new COPY continues.
import type { Db, PoolClient } from '../db/pool.ts';
import { DATA_SCHEMA, ident, qualified } from '../db/sql.ts';
import type { ColumnBatch } from '../domain/types.ts';
import type { Limits } from '../config/index.ts';
import { CopyStream } from '../copy/copy-stream.ts';
import { encodeRows, estimateRowBytes, sliceRanges } from '../copy/encoder.ts';
import { chunkRangesCovering, chunkTableName, ensureChunks } from '../partitions/chunks.ts';
import type { Stream } from '../streams/catalog.ts';

// Encoding is synchronous; every this many ms the event loop gets a turn, for other requests
// (health checks, queries) and for the socket to PostgreSQL: the kernel's buffer on it may hold only a
// few hundred KB, which PostgreSQL reads in a few ms, and only the event loop refills it.
const YIELD_EVERY_MS = 2;

export class RowWriter {
  private lastYield = performance.now();
  private copy: CopyStream | null = null;
  private columns: string[] | null = null;
  rows = 0;
  batches = 0;
  minTime: bigint | null = null;
  maxTime: bigint | null = null;
  readonly chunks = new Set<string>();
  private readonly ensured = new Set<bigint>();

  constructor(
    private readonly db: Db,
    private readonly tx: PoolClient,
    private readonly stream: Stream,
    private readonly ingestId: bigint,
    private readonly limits: Limits,
  ) {}

  async write(batch: ColumnBatch): Promise<void> {
    if (batch.length === 0) return;
    if (!this.covered(batch.minTime, batch.maxTime)) {
      await ensureChunks(this.db,
        { streamId: this.stream.id, tableName: this.stream.tableName, chunkIntervalUs: this.stream.chunkIntervalUs },
        batch.minTime, batch.maxTime, this.limits.maxNewChunks);
      // Every chunk this upload needs for the first time is locked here, whoever created it: a
      // concurrent upload may have attached it after this transaction last looked at the stream
      // table, and only a newly taken lock makes PostgreSQL read the new partition list. A COPY
      // routes its rows with the list it started with, so the running one is finished first.
      const fresh = this.noteChunks(batch.minTime, batch.maxTime);
      if (this.copy) {
        this.rows += await this.copy.finish();
        this.copy = null;
      }
      await this.tx.query(`LOCK TABLE ${fresh.map((n) => qualified(DATA_SCHEMA, n)).join(', ')} IN ROW EXCLUSIVE MODE`);
    }
    if (!this.copy) this.copy = this.openCopy(batch);
    const est = estimateRowBytes(batch);
    const copy = this.copy;
    const alloc = (bytes: number): Buffer => copy.allocate(bytes);
    for (const [start, end] of sliceRanges(batch.length, est, this.limits.copyFlushBytes)) {
      await copy.write(encodeRows(batch, this.ingestId, start, end, alloc));
      if (performance.now() - this.lastYield > YIELD_EVERY_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        this.lastYield = performance.now();
      }
    }
    this.batches++;
    if (this.minTime === null || batch.minTime < this.minTime) this.minTime = batch.minTime;
    if (this.maxTime === null || batch.maxTime > this.maxTime) this.maxTime = batch.maxTime;
  }

  private openCopy(batch: ColumnBatch): CopyStream {
    const cols = ['"time"', ...batch.columns.map((c) => ident(c.column.columnName)), 'ingest_id'];
    if (this.columns && this.columns.join() !== cols.join()) throw new Error('batches of one upload must bind the same columns');
    this.columns = cols;
    return new CopyStream(this.tx, qualified(DATA_SCHEMA, this.stream.tableName), cols, this.limits.copyFlushBytes * 8, this.limits.copyFlushBytes);
  }

  /** True when earlier batches of this upload already made sure of every chunk in [min, max]. */
  private covered(min: bigint, max: bigint): boolean {
    const { first, count } = chunkRangesCovering(min, max, this.stream.chunkIntervalUs);
    for (let i = 0n; i < count; i++) if (!this.ensured.has(first + i * this.stream.chunkIntervalUs)) return false;
    return true;
  }

  /** Records the chunks of [min, max] as made sure of; returns the table names new to this upload. */
  private noteChunks(min: bigint, max: bigint): string[] {
    const { first, count } = chunkRangesCovering(min, max, this.stream.chunkIntervalUs);
    const fresh: string[] = [];
    for (let i = 0n; i < count; i++) {
      const start = first + i * this.stream.chunkIntervalUs;
      if (this.ensured.has(start)) continue;
      this.ensured.add(start);
      const name = chunkTableName(this.stream.tableName, start, this.stream.chunkIntervalUs);
      this.chunks.add(name);
      fresh.push(name);
    }
    return fresh;
  }

  /** Finishes the open COPY; returns the rows PostgreSQL stored for this upload. */
  async finish(): Promise<number> {
    if (this.copy) {
      this.rows += await this.copy.finish();
      this.copy = null;
    }
    return this.rows;
  }

  async abort(reason: string): Promise<void> {
    const c = this.copy;
    this.copy = null;
    await c?.abort(reason);
  }
}
