// Frames an Arrow IPC stream body into whole messages before apache-arrow sees them, because the
// library trusts what it is given: a body cut exactly at a batch boundary decodes as complete,
// garbage yields zero batches, and a bogus length makes it allocate up to 1 GiB. Here every
// message length is checked against its limit before it is buffered, the end-of-stream marker is
// required, and bytes after it are refused.
//
// Record batch messages assembled from several chunks go into pooled buffers: a fresh buffer per
// batch is megabytes of memory outside V8's heap each time, which drives V8 into a full garbage
// collection every few dozen megabytes of upload. The ingest hands a batch's buffer back
// (releaseFrame) once it has written and observed the batch.
import { Message, MessageHeader } from 'apache-arrow';
import { AppError } from '../../errors/index.ts';
import { BufferPool } from '../../copy/buffer-pool.ts';
import { checkMessage, newMessageOrder } from './arrow-messages.ts';

const CONTINUATION = 0xffffffff;
export const MAX_METADATA_BYTES = 64 * 1024 * 1024;

export interface FramingLimits {
  maxBatchBytes: number;
}

export interface FramingState {
  messages: number;
  recordBatches: number;
  sawEos: boolean;
  bytes: number;
}

/** Frames from this size on are assembled in pooled buffers, by power-of-two size class. */
const POOLED_FROM = 256 * 1024;
/** Released buffers kept per size class: a few concurrent uploads' batches in flight. */
const POOL_KEEP = 4;
const framePools = new Map<number, BufferPool>();

function frameBuffer(n: number): Buffer {
  if (n < POOLED_FROM) return Buffer.allocUnsafeSlow(n);
  const size = 2 ** Math.ceil(Math.log2(n));
  let pool = framePools.get(size);
  if (!pool) framePools.set(size, (pool = new BufferPool(size, POOL_KEEP)));
  return pool.take(n);
}

/**
 * Gives a frame's memory back for the frames of later uploads and batches. Only for frames nothing
 * reads any more; frames not from the pool are left to the garbage collector.
 */
export function releaseFrame(frame: Uint8Array): void {
  if (frame.byteLength < POOLED_FROM) return;
  framePools.get(2 ** Math.ceil(Math.log2(frame.byteLength)))?.release(frame as Buffer);
}

/** Accumulates incoming chunks and hands out exact byte ranges without copying when it can. */
class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0; // offset into chunks[0]
  length = 0;

  push(c: Uint8Array): void {
    if (c.byteLength === 0) return;
    this.chunks.push(c);
    this.length += c.byteLength;
  }

  peekUint32LE(at: number): number {
    const b = this.peek(at, 4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  }

  /** Returns n bytes starting at `at` without consuming them. */
  peek(at: number, n: number): Uint8Array {
    const out = this.take(at + n, false);
    return out.subarray(at, at + n);
  }

  /** Removes and returns the first n bytes. */
  shift(n: number): Uint8Array {
    return this.take(n, true);
  }

  private take(n: number, consume: boolean): Uint8Array {
    const first = this.chunks[0];
    if (first && first.byteLength - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      if (consume) this.advance(n);
      return out;
    }
    // Every byte is written below, so the buffer need not be zeroed first (a record batch is
    // megabytes; zeroing it would cost as much as the copy).
    const out = consume ? frameBuffer(n) : Buffer.allocUnsafeSlow(n);
    let filled = 0;
    let ci = 0;
    let off = this.head;
    while (filled < n) {
      const c = this.chunks[ci];
      const part = Math.min(c.byteLength - off, n - filled);
      out.set(c.subarray(off, off + part), filled);
      filled += part;
      ci++;
      off = 0;
    }
    if (consume) this.advance(n);
    return out;
  }

  private advance(n: number): void {
    this.length -= n;
    while (n > 0) {
      const c = this.chunks[0];
      const left = c.byteLength - this.head;
      if (n < left) { this.head += n; return; }
      n -= left;
      this.chunks.shift();
      this.head = 0;
    }
  }
}

function truncated(state: FramingState, what: string): AppError {
  return new AppError(400, 'truncated_arrow',
    `the Arrow stream ends inside ${what} at byte ${state.bytes}: the upload was cut short; nothing was stored`,
    { detail: { byte: state.bytes, record_batches_seen: state.recordBatches } });
}

/**
 * Yields each complete IPC message (prefix, metadata and body) of an Arrow stream; throws a
 * 4xx AppError for anything that is not a whole, well-formed stream.
 */
export async function* frameArrowStream(
  source: AsyncIterable<Uint8Array>, limits: FramingLimits, state: FramingState,
): AsyncGenerator<Uint8Array> {
  const q = new ByteQueue();
  const it = source[Symbol.asyncIterator]();
  let ended = false;
  const order = newMessageOrder();
  const fill = async (n: number): Promise<boolean> => {
    while (q.length < n && !ended) {
      const r = await it.next();
      if (r.done) { ended = true; break; }
      q.push(r.value);
    }
    return q.length >= n;
  };

  try {
    if (!(await fill(1))) {
      throw new AppError(400, 'empty_body', 'the body is empty: an Arrow stream starts with a schema message');
    }
    if (await fill(6)) {
      const magic = Buffer.from(q.peek(0, 6)).toString('latin1');
      if (magic === 'ARROW1') {
        throw new AppError(400, 'malformed_arrow',
          'the body is an Arrow IPC file (it starts with ARROW1); send it with Content-Type: application/vnd.apache.arrow.file');
      }
    }
    while (true) {
      if (!(await fill(4))) {
        if (q.length === 0) throw truncatedEnd(state);
        throw truncated(state, 'a message prefix');
      }
      let prefix = 4;
      let metaLen = q.peekUint32LE(0);
      if (metaLen === CONTINUATION) {
        if (!(await fill(8))) throw truncated(state, 'a message prefix');
        metaLen = q.peekUint32LE(4);
        prefix = 8;
      }
      if (metaLen === 0) {
        // End-of-stream marker. Only whitespace-free silence may follow.
        q.shift(prefix);
        state.bytes += prefix;
        state.sawEos = true;
        if (await fill(1)) {
          throw new AppError(400, 'malformed_arrow',
            `unexpected bytes after the end-of-stream marker at byte ${state.bytes}; nothing was stored`);
        }
        return;
      }
      if (metaLen > MAX_METADATA_BYTES) {
        throw garbage(state, `a message header claims ${metaLen} bytes`);
      }
      if (!(await fill(prefix + metaLen))) throw truncated(state, 'a message header');
      let message: Message;
      try {
        message = Message.decode(q.peek(prefix, metaLen));
      } catch (err) {
        throw garbage(state, 'a message header does not decode', err);
      }
      const bodyLength = Number(message.bodyLength);
      if (!Number.isFinite(bodyLength) || bodyLength < 0) throw garbage(state, `a message claims a body of ${message.bodyLength} bytes`);
      const isBatch = message.headerType === MessageHeader.RecordBatch || message.headerType === MessageHeader.DictionaryBatch;
      if (state.messages === 0 && message.headerType !== MessageHeader.Schema) {
        throw garbage(state, 'the first message is not a schema');
      }
      if (!isBatch && message.headerType !== MessageHeader.Schema) {
        throw garbage(state, `message type ${message.headerType} is not allowed in a stream`);
      }
      if (bodyLength > limits.maxBatchBytes) {
        throw new AppError(413, 'batch_too_large',
          `record batch ${state.recordBatches + 1} has a body of ${bodyLength} bytes; the limit is ${limits.maxBatchBytes} (STRATA_MAX_BATCH_BYTES) — write smaller batches`,
          { detail: { byte: state.bytes, body_bytes: bodyLength, limit: limits.maxBatchBytes } });
      }
      checkMessage(message, order, state.bytes, limits.maxBatchBytes);
      const total = prefix + metaLen + bodyLength;
      if (!(await fill(total))) {
        throw truncated(state, `record batch ${state.recordBatches + 1} (expected ${bodyLength} body bytes)`);
      }
      const frame = q.shift(total);
      state.bytes += total;
      state.messages++;
      if (message.headerType === MessageHeader.RecordBatch) state.recordBatches++;
      yield frame;
    }
  } finally {
    if (!ended) await it.return?.();
  }
}

function truncatedEnd(state: FramingState): AppError {
  return new AppError(400, 'truncated_arrow',
    `the Arrow stream ends at byte ${state.bytes} after ${state.recordBatches} record batches without its end-of-stream marker (0xFFFFFFFF 0x00000000): the upload may have been cut short; nothing was stored. Writers add the marker when the stream is closed.`,
    { detail: { byte: state.bytes, record_batches_seen: state.recordBatches } });
}

function garbage(state: FramingState, what: string, cause?: unknown): AppError {
  return new AppError(400, 'malformed_arrow',
    `the body is not an Arrow IPC stream: ${what} at byte ${state.bytes}`, { cause, detail: { byte: state.bytes } });
}
