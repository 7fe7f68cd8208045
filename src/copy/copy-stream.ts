// One COPY … FROM STDIN (FORMAT binary) on a connection inside the caller's transaction, with
// backpressure: writes wait while more than `windowBytes` are queued, which lets the next batch
// be decoded and encoded while PostgreSQL stores the previous one. A database error ends the
// COPY at once; abort() sends CopyFail so nothing of it is stored.
import { once } from 'node:events';
import { from as copyFrom } from 'pg-copy-streams';
import type { PoolClient } from '../db/pool.ts';
import { copyHeader, copyTrailer } from './binary-format.ts';

export class CopyStream {
  private readonly stream: ReturnType<typeof copyFrom>;
  private failure: Error | null = null;
  private readonly failed: Promise<never>;
  bytes = 0;

  constructor(client: PoolClient, table: string, columns: readonly string[], windowBytes: number) {
    this.stream = copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN (FORMAT binary)`, { highWaterMark: windowBytes });
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

  async write(buf: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    this.bytes += buf.byteLength;
    if (!this.stream.write(buf)) {
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
