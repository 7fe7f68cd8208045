// One upload's bytes on their way in: counted against the body limit, hashed (SHA-256 of the
// body exactly as received), optionally copied to a spool file (the original, kept in the
// archive once the ingest commits; written around the page cache unless the decoder reads it
// back, see direct-file.ts), and inflated when Content-Encoding says so, with a cap on
// the inflated size. Reading is pull-based: nothing is read faster than the decoder consumes.
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { AppError, isAppError } from '../errors/index.ts';
import { DirectFileWriter } from './direct-file.ts';
import { SNIFF_BYTES } from './sniff.ts';
import { spoolFileName } from './upload-claims.ts';

export type ContentEncoding = 'identity' | 'gzip' | 'deflate' | 'br';

export function parseContentEncoding(header: string | undefined): ContentEncoding {
  const v = (header ?? '').trim().toLowerCase();
  if (v === '' || v === 'identity') return 'identity';
  if (v === 'gzip' || v === 'x-gzip') return 'gzip';
  if (v === 'deflate') return 'deflate';
  if (v === 'br') return 'br';
  throw new AppError(415, 'unsupported_encoding', `Content-Encoding ${JSON.stringify(header)} is not supported; use gzip, deflate, br or none`);
}

export interface BodyOptions {
  maxBodyBytes: number;
  maxInflatedBytes: number;
  encoding: ContentEncoding;
  /** Directory for the spooled original; null to not keep it. */
  spoolDir: string | null;
  /** The decoder reads the spooled original back (an Arrow file or HDF5 body, not inflated): keep it in the page cache. */
  spoolReadBack?: boolean;
  /** Called with the first SNIFF_BYTES of the decoded body (fewer if it is shorter), before any is yielded. */
  checkHead?: (head: Uint8Array) => void;
}

function spoolFailure(err: unknown): never {
  throw new AppError(500, 'internal', `cannot keep the upload's original in the spool directory: ${(err as Error).message}`, { cause: err });
}

export class IngestBody {
  received = 0;
  inflated = 0;
  private readonly hash = createHash('sha256');
  private digest: string | null = null;
  /** Of the inflated bytes, when there is a Content-Encoding (else the body's own hash is the content's). */
  private readonly inflatedHash: ReturnType<typeof createHash> | null;
  private inflatedDigest: string | null = null;
  private spool: DirectFileWriter | null = null;
  readonly spoolPath: string | null;
  private consumed = false;

  constructor(private readonly source: AsyncIterable<Uint8Array>, private readonly opts: BodyOptions) {
    this.spoolPath = opts.spoolDir ? path.join(opts.spoolDir, spoolFileName('body', randomUUID())) : null;
    this.inflatedHash = opts.encoding === 'identity' ? null : createHash('sha256');
  }

  /** SHA-256 (hex) of the received bytes; available once the body has been read to the end. */
  get sha256(): string | null {
    return this.digest;
  }

  /**
   * SHA-256 (hex) of the body after its Content-Encoding is undone — the bytes the decoder reads —
   * so that the same file sent plain or compressed has one content hash. Available once the body
   * has been read to the end.
   */
  get contentSha256(): string | null {
    return this.inflatedHash ? this.inflatedDigest : this.digest;
  }

  get complete(): boolean {
    return this.digest !== null;
  }

  private async *raw(): AsyncGenerator<Uint8Array> {
    if (this.spoolPath) {
      await mkdir(path.dirname(this.spoolPath), { recursive: true });
      this.spool = await DirectFileWriter.create(this.spoolPath, this.opts.spoolReadBack ?? false);
    }
    try {
      for await (const chunk of this.source) {
        this.received += chunk.byteLength;
        if (this.received > this.opts.maxBodyBytes) {
          throw new AppError(413, 'body_too_large',
            `the body exceeds the limit of ${this.opts.maxBodyBytes} bytes (STRATA_MAX_BODY_BYTES)`,
            { detail: { limit: this.opts.maxBodyBytes } });
        }
        this.hash.update(chunk);
        if (this.spool) await this.spool.write(chunk).catch(spoolFailure);
        yield chunk;
      }
    } catch (err) {
      if (isAppError(err)) throw err;
      throw new AppError(400, 'client_disconnected',
        `the upload ended early after ${this.received} bytes: the client closed the connection`, { cause: err });
    }
    if (this.spool) await this.spool.end().catch(spoolFailure);
    this.digest = this.hash.digest('hex');
  }

  /** The decoded body, chunk by chunk. May be iterated once. */
  async *chunks(): AsyncGenerator<Uint8Array> {
    if (this.consumed) throw new Error('the body can be read once');
    this.consumed = true;
    const check = this.opts.checkHead;
    if (!check) {
      yield* this.decoded();
      return;
    }
    const held: Uint8Array[] = [];
    let bytes = 0;
    for await (const chunk of this.decoded()) {
      if (bytes >= SNIFF_BYTES) {
        yield chunk;
        continue;
      }
      held.push(chunk);
      bytes += chunk.byteLength;
      if (bytes >= SNIFF_BYTES) {
        check(Buffer.concat(held).subarray(0, SNIFF_BYTES));
        yield* held;
        held.length = 0;
      }
    }
    if (bytes < SNIFF_BYTES) {
      check(Buffer.concat(held));
      yield* held;
    }
  }

  private async *decoded(): AsyncGenerator<Uint8Array> {
    if (this.opts.encoding === 'identity') {
      let first = true;
      for await (const chunk of this.raw()) {
        if (first && chunk.byteLength >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b) {
          throw new AppError(400, 'gzip_without_encoding',
            'the body is gzip-compressed but Content-Encoding does not say so; send it with Content-Encoding: gzip');
        }
        if (chunk.byteLength > 0) first = false;
        this.inflated += chunk.byteLength;
        yield chunk;
      }
      return;
    }
    yield* this.inflate();
  }

  private async *inflate(): AsyncGenerator<Uint8Array> {
    const inflater = this.opts.encoding === 'gzip' ? zlib.createGunzip()
      : this.opts.encoding === 'deflate' ? zlib.createInflate() : zlib.createBrotliDecompress();
    const src = Readable.from(this.raw(), { objectMode: false });
    let sourceError: unknown = null;
    src.on('error', (e) => { sourceError = e; inflater.destroy(e); });
    src.pipe(inflater);
    try {
      for await (const chunk of inflater as AsyncIterable<Buffer>) {
        this.inflated += chunk.byteLength;
        this.inflatedHash?.update(chunk);
        if (this.inflated > this.opts.maxInflatedBytes) {
          throw new AppError(413, 'body_too_large',
            `the body inflates to more than ${this.opts.maxInflatedBytes} bytes (STRATA_MAX_INFLATED_BYTES) after ${this.received} bytes received`,
            { detail: { limit: this.opts.maxInflatedBytes } });
        }
        yield chunk;
      }
    } catch (err) {
      if (isAppError(err)) throw err;
      if (isAppError(sourceError)) throw sourceError;
      throw new AppError(400, 'malformed_gzip',
        `cannot inflate the ${this.opts.encoding} body at byte ${this.received}: ${(err as Error).message}`, { cause: err });
    } finally {
      src.destroy();
      inflater.destroy();
    }
    if (isAppError(sourceError)) throw sourceError;
    if (this.inflated === 0 && this.received > 0 && !this.complete) {
      throw new AppError(400, 'malformed_gzip', `the ${this.opts.encoding} body is empty or truncated`);
    }
    if (this.complete) this.inflatedDigest = this.inflatedHash?.digest('hex') ?? null;
  }

  /** Reads whatever is left, so the hash covers the whole body (used after a decoder stops early). */
  async drain(): Promise<void> {
    if (this.complete) return;
    if (!this.consumed) {
      for await (const _ of this.chunks()) { /* read through */ }
    }
  }

  /** Removes the spooled copy (after it has been archived or the ingest failed). */
  async discard(): Promise<void> {
    await this.spool?.destroy();
    if (this.spoolPath) await rm(this.spoolPath, { force: true });
  }
}
