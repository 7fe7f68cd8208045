// Parquet uploads (Content-Type application/vnd.apache.parquet). The body is spooled to a temp
// file; a worker thread (parquet/worker.mjs) reads it row group by row group with parquet-wasm
// and sends each record batch as Arrow IPC messages, which are decoded by the Arrow decoder: the
// same type rules, time column rules and COPY path as an Arrow upload. Memory stays bounded by
// one row group (compressed and uncompressed sizes are checked against STRATA_MAX_BATCH_BYTES
// before any is read); the worker's wasm heap is freed when the worker ends after its upload.
// A worker that stops answering (hostile input can make a decoder spin) is ended after STALL_MS.
import { Worker } from 'node:worker_threads';
import { AppError, type ErrorCode } from '../../errors/index.ts';
import type { ColumnBatch, StreamColumn } from '../../domain/types.ts';
import type { IngestBody } from '../body.ts';
import { type SpooledFile, spoolToFile } from '../spool.ts';
import { ArrowDecoder } from './arrow.ts';
import type { DecodedSchema, Decoder } from './decoder.ts';
import { type DecoderOptions, registerDecoder } from './index.ts';

/**
 * Rows per record batch read from a row group, and batches the worker may read ahead of the COPY:
 * with 65,536 rows and two ahead, the decoder alone peaked at 429 MB on the benchmark's file, with
 * 16,384 and one at 371 MB.
 */
const BATCH_ROWS = 16_384;
const READ_AHEAD = 1;
/** Longest wait for one batch before the reader is considered stuck on the file. */
const STALL_MS = 120_000;

const ENTRY = new URL('./parquet/worker.mjs', import.meta.url);
const EOS = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

interface WireError { status: number; code: ErrorCode; message: string }
type FromWorker =
  | { type: 'schema'; ipc: Uint8Array; metadata: Record<string, unknown> }
  | { type: 'batch'; ipc: Uint8Array }
  | { type: 'end' }
  | { type: 'error'; error: WireError };

/** The worker's messages, one at a time, with a time budget for each. */
class ReaderThread {
  private readonly worker: Worker;
  private readonly queue: FromWorker[] = [];
  private waiter: ((m: FromWorker) => void) | null = null;
  private ended = false;

  constructor(path: string, maxRowGroupBytes: number) {
    this.worker = new Worker(ENTRY, { workerData: { path, maxRowGroupBytes, batchRows: BATCH_ROWS }, resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 }, stderr: true });
    this.worker.stderr.resume();
    this.worker.on('message', (m: FromWorker) => this.push(m));
    this.worker.on('error', (err: Error) => this.push(readerError(err)));
    this.worker.on('exit', (code) => { if (!this.ended) this.push(crash(`the Parquet reader exited (code ${code})`)); });
  }

  private push(m: FromWorker): void {
    const w = this.waiter;
    this.waiter = null;
    if (w) w(m);
    else this.queue.push(m);
  }

  credit(n: number): void {
    this.worker.postMessage({ type: 'credit', n });
  }

  async next(): Promise<FromWorker> {
    const queued = this.queue.shift();
    if (queued) return queued;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await new Promise<FromWorker>((resolve) => {
        this.waiter = resolve;
        timer = setTimeout(() => {
          this.waiter = null;
          resolve({ type: 'error', error: { status: 422, code: 'malformed_parquet',
            message: `reading the Parquet file made no progress for ${STALL_MS / 1000} s; it is corrupt or built to stall a reader; nothing was stored` } });
        }, STALL_MS);
      });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the worker; a read waiting for it fails instead of waiting out its time budget. */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    const w = this.waiter;
    this.waiter = null;
    w?.(crash('the Parquet reader was stopped'));
    await this.worker.terminate();
  }
}

/**
 * The worker does nothing but read the file, so a wasm trap in it (the Rust reader panicking:
 * "unreachable") is the file's doing; anything else is ours.
 */
function readerError(err: Error): FromWorker {
  if (err.name === 'RuntimeError' || /unreachable|panicked/i.test(err.message)) {
    return { type: 'error', error: { status: 400, code: 'malformed_parquet',
      message: `the Parquet reader gave up on the file (${err.message}): it is corrupt or truncated; nothing was stored` } };
  }
  return crash(`the Parquet reader failed: ${err.message}`);
}

function crash(message: string): FromWorker {
  return { type: 'error', error: { status: 500, code: 'decoder_crashed', message: `${message}; nothing was stored` } };
}

function failure(m: FromWorker): AppError {
  if (m.type === 'error') return new AppError(m.error.status, m.error.code, m.error.message);
  return new AppError(500, 'decoder_crashed', `the Parquet reader sent ${m.type} out of turn; nothing was stored`);
}

export class ParquetDecoder implements Decoder {
  readonly format = 'parquet';
  private decoded!: DecodedSchema;
  private arrow!: ArrowDecoder;

  private constructor(private readonly reader: ReaderThread, private readonly file: SpooledFile) {}

  static async open(body: IngestBody, opts: DecoderOptions): Promise<ParquetDecoder> {
    const file = await spoolToFile(body, opts.spoolDir, opts.identityEncoding);
    if (file.size === 0) {
      await file.remove();
      throw new AppError(400, 'empty_body', 'the body is empty: a Parquet file starts and ends with PAR1');
    }
    const d = new ParquetDecoder(new ReaderThread(file.path, opts.maxBatchBytes), file);
    try {
      const first = await d.reader.next();
      if (first.type !== 'schema') throw failure(first);
      d.reader.credit(READ_AHEAD);
      d.arrow = await ArrowDecoder.openStream(d.messages(first.ipc), { maxBatchBytes: opts.maxBatchBytes });
      const s = d.arrow.schema;
      d.decoded = { ...s, metadata: { ...s.metadata, parquet: first.metadata } };
      return d;
    } catch (err) {
      await d.close();
      throw err;
    }
  }

  /** The upload as one Arrow IPC stream: the schema, each batch's messages, the end marker. */
  private async *messages(schema: Uint8Array): AsyncGenerator<Uint8Array> {
    yield schema;
    while (true) {
      const m = await this.reader.next();
      if (m.type === 'end') break;
      if (m.type !== 'batch') throw failure(m);
      this.reader.credit(1);
      yield m.ipc;
    }
    yield EOS;
  }

  get schema(): DecodedSchema {
    return this.decoded;
  }

  get subMicrosecondCount(): number {
    return this.arrow?.subMicrosecondCount ?? 0;
  }

  /**
   * The Arrow decoder's batches. When the ingest stops early (a bad value, a database error), the
   * worker is ended first: the Arrow reader may be waiting on a batch the worker holds back.
   */
  async *batches(timeColumn: string, bound: ReadonlyMap<string, StreamColumn>): AsyncGenerator<ColumnBatch> {
    const inner = this.arrow.batches(timeColumn, bound);
    let finished = false;
    try {
      while (true) {
        const next = await inner.next();
        if (next.done) break;
        yield next.value;
      }
      finished = true;
    } finally {
      if (!finished) {
        await this.reader.end();
        await inner.return(undefined).catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    await this.arrow?.close();
    await this.reader.end();
    await this.file.remove();
  }
}

registerDecoder('parquet', (body, opts) => ParquetDecoder.open(body, opts));
