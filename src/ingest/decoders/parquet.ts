// Parquet uploads (Content-Type application/vnd.apache.parquet). The body is spooled to a temp
// file; a worker thread (parquet/worker.mjs) reads it row group by row group with parquet-wasm
// and sends each record batch as Arrow IPC messages, which are decoded by the Arrow decoder: the
// same type rules, time column rules and COPY path as an Arrow upload. Memory stays bounded by
// one row group (compressed and uncompressed sizes are checked against STRATA_MAX_BATCH_BYTES
// before any is read); the worker's wasm heap is freed when the worker ends after its upload.
// A worker that stops answering (hostile input can make a decoder spin) is ended after STALL_MS.
import { AppError } from '../../errors/index.ts';
import type { ColumnBatch, StreamColumn } from '../../domain/types.ts';
import type { IngestBody } from '../body.ts';
import { type SpooledFile, spoolToFile } from '../spool.ts';
import { ArrowDecoder } from './arrow.ts';
import type { DecodedSchema, Decoder } from './decoder.ts';
import { type DecoderOptions, registerDecoder } from './index.ts';
import { DecoderThread, type ErrorMessage, crash } from './worker-thread.ts';

/**
 * Rows per record batch read from a row group, and batches the worker may read ahead of the COPY:
 * with 65,536 rows and two ahead, the decoder alone peaked at 429 MB on the benchmark's file, with
 * 16,384 and one at 371 MB.
 */
const BATCH_ROWS = 16_384;
const READ_AHEAD = 1;

const ENTRY = new URL('./parquet/worker.mjs', import.meta.url);
const EOS = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

type FromWorker =
  | { type: 'schema'; ipc: Uint8Array; metadata: Record<string, unknown> }
  | { type: 'batch'; ipc: Uint8Array }
  | { type: 'end' }
  | ErrorMessage;
type ReaderThread = DecoderThread<FromWorker>;

/** A reader that stops making progress was made to by the file. */
function stalled(seconds: number): ErrorMessage {
  return { type: 'error', error: { status: 422, code: 'malformed_parquet',
    message: `reading the Parquet file made no progress for ${seconds} s; it is corrupt or built to stall a reader; nothing was stored` } };
}

/**
 * The worker does nothing but read the file, so a wasm trap in it (the Rust reader panicking:
 * "unreachable") is the file's doing; anything else is ours.
 */
function readerError(err: Error): ErrorMessage {
  if (err.name === 'RuntimeError' || /unreachable|panicked/i.test(err.message)) {
    return { type: 'error', error: { status: 400, code: 'malformed_parquet',
      message: `the Parquet reader gave up on the file (${err.message}): it is corrupt or truncated; nothing was stored` } };
  }
  return crash(`the Parquet reader failed: ${err.message}`);
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
    const d = new ParquetDecoder(new DecoderThread<FromWorker>(ENTRY, {
      reader: 'the Parquet reader', workerData: { path: file.path, maxRowGroupBytes: opts.maxBatchBytes, batchRows: BATCH_ROWS },
      onError: readerError, onStall: stalled,
    }), file);
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
