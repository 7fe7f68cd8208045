// One COPY … FROM STDIN (FORMAT binary) on a connection inside the caller's transaction, with
// backpressure: writes wait while more than `windowBytes` are queued, which lets the next batch
// be decoded and encoded while PostgreSQL stores the previous one. A database error ends the
// COPY at once; abort() sends CopyFail so nothing of it is stored.
//
// Buffers from allocate() carry room for the 5-byte CopyData message header in front, go to the
// socket as one write, and return to a pool from that write's callback, when the kernel holds
// every byte (buffer-pool.ts says why). This rests on pg-copy-streams sending each chunk through
// its flushChunk() on the connection's socket; where that hook is missing, buffers are plain.
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { from as copyFrom } from 'pg-copy-streams';
import type { PoolClient } from '../db/pool.ts';
import { copyHeader, copyTrailer } from './binary-format.ts';
import { BufferPool } from './buffer-pool.ts';

/** CopyData: 'd', then the message length (itself included) as int32. */
const FRAME_HEAD = 5;
const COPY_DATA = 0x64;
/** Released buffers kept per pool: enough for a few concurrent uploads' windows. */
const POOL_KEEP = 32;

const pools = new Map<number, BufferPool>();

function poolFor(bytes: number): BufferPool {
  let pool = pools.get(bytes);
  if (!pool) pools.set(bytes, (pool = new BufferPool(bytes, POOL_KEEP)));
  return pool;
}

interface ChunkSender {
  flushChunk(chunk: Buffer): boolean;
  connection?: { stream: Socket } | null;
}

export class CopyStream {
  private readonly stream: ReturnType<typeof copyFrom>;
  private failure: Error | null = null;
  private readonly failed: Promise<never>;
  private readonly pool: BufferPool | null;
  /** Payloads from allocate() (with room for the header in front), and the frames made of them. */
  private readonly payloads = new WeakSet<Buffer>();
  private readonly frames = new WeakSet<Buffer>();
  bytes = 0;

  /**
   * @param bufferBytes the usual size of a write; allocate() pools buffers up to about this size
   */
  constructor(client: PoolClient, table: string, columns: readonly string[], windowBytes: number, bufferBytes = 1 << 20) {
    this.stream = copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN (FORMAT binary)`, { highWaterMark: windowBytes });
    this.pool = this.sendFramesWhole() ? poolFor(FRAME_HEAD + Math.ceil(bufferBytes * 1.25)) : null;
    this.failed = new Promise<never>((_, reject) => {
      this.stream.on('error', (err: Error) => {
        this.failure = err;
        reject(err);
      });
    });
    this.failed.catch(() => undefined);
    client.query(this.stream);
    this.stream.write(copyHeader());
  }

  /** Routes our frames straight to the socket, releasing each once written; true if it could. */
  private sendFramesWhole(): boolean {
    const sender = this.stream as unknown as ChunkSender;
    if (typeof sender.flushChunk !== 'function') return false;
    const plain = sender.flushChunk.bind(sender);
    sender.flushChunk = (chunk: Buffer): boolean => {
      const socket = sender.connection?.stream;
      if (!this.frames.has(chunk)) return plain(chunk);
      if (!socket) return plain(chunk.subarray(FRAME_HEAD));
      return socket.write(chunk, (err) => {
        if (!err) this.pool?.release(chunk);
      });
    };
    return true;
  }

  /** An uninitialised buffer of `bytes` bytes to fill and pass to write() once. */
  allocate(bytes: number): Buffer {
    if (!this.pool) return Buffer.allocUnsafe(bytes);
    const payload = this.pool.take(FRAME_HEAD + bytes).subarray(FRAME_HEAD);
    this.payloads.add(payload);
    return payload;
  }

  async write(buf: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    this.bytes += buf.byteLength;
    let chunk = buf;
    if (this.payloads.delete(buf)) {
      chunk = Buffer.from(buf.buffer, buf.byteOffset - FRAME_HEAD, buf.byteLength + FRAME_HEAD);
      chunk[0] = COPY_DATA;
      chunk.writeUInt32BE(buf.byteLength + 4, 1);
      this.frames.add(chunk);
    }
    if (!this.stream.write(chunk)) {
      await Promise.race([once(this.stream, 'drain'), this.failed]);
    }
  }

  /** Ends the COPY; resolves with the number of rows PostgreSQL stored. */
  async finish(): Promise<number> {
    if (this.failure) throw this.failure;
    this.stream.end(copyTrailer());
    await Promise.race([once(this.stream, 'finish'), this.failed]);
    return this.stream.rowCount;
  }

  /** Aborts the COPY (CopyFail); PostgreSQL discards everything it received. */
  async abort(reason: string): Promise<void> {
    if (this.failure || this.stream.destroyed || this.stream.writableFinished) return;
    const done = new Promise<void>((resolve) => {
      this.stream.once('close', () => resolve());
      this.stream.once('error', () => resolve());
    });
    this.stream.destroy(new Error(reason));
    await done;
  }
}
