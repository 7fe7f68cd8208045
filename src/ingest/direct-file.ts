// A file written around the page cache (O_DIRECT), for an upload's original while it is being
// received: nothing reads it again before it is archived, so keeping it in the page cache only
// costs a kernel copy into fresh pages (on a virtual machine, each one a fault to the host:
// 0.6 GB/s instead of 5 GB/s) and pushes PostgreSQL's pages out of the cache. Writes leave from
// page-aligned staging memory in 1 MiB pieces, with up to three in flight while the next
// fills. Where the file system refuses O_DIRECT, the same writes go through the page cache.
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { BufferPool } from '../copy/buffer-pool.ts';

const SLOT_BYTES = 1 << 20;
const SLOTS = 4;
/** O_DIRECT writes start and end on multiples of the device's block size; 4 KiB covers every device. */
const BLOCK = 4096;
const WASM_PAGE = 65_536;

// WebAssembly memories are page-aligned, which O_DIRECT needs and Buffers do not promise.
// (Node's types leave WebAssembly.Memory to the DOM library, which this project does not load.)
const { Memory } = (globalThis as unknown as { WebAssembly: { Memory: new (size: { initial: number; maximum: number }) => { buffer: ArrayBuffer } } }).WebAssembly;
// Staging memories are kept for the next upload (a few: enough for concurrent uploads).
const staging = new BufferPool(SLOT_BYTES * SLOTS, 8, (bytes) => {
  const pages = bytes / WASM_PAGE;
  return Buffer.from(new Memory({ initial: pages, maximum: pages }).buffer);
});

function isEinval(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'EINVAL';
}

export class DirectFileWriter {
  private readonly slots: Buffer[];
  private readonly inFlight: (Promise<void> | null)[] = new Array<Promise<void> | null>(SLOTS).fill(null);
  private slot = 0;
  private fill = 0;
  /** Bytes handed to write() so far; the file's size once ended. */
  size = 0;
  private failure: Error | null = null;
  private closed = false;
  private fallingBack: Promise<void> | null = null;
  private readonly memory = staging.take(SLOT_BYTES * SLOTS);

  private constructor(private fh: FileHandle, private direct: boolean, private readonly path: string) {
    this.slots = Array.from({ length: SLOTS }, (_, i) => this.memory.subarray(i * SLOT_BYTES, (i + 1) * SLOT_BYTES));
  }

  /**
   * Creates `path` (which must not exist). `cached` writes through the page cache instead, for a
   * file that is about to be read back.
   */
  static async create(path: string, cached = false): Promise<DirectFileWriter> {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
    let fh: FileHandle | null = null;
    if (!cached) {
      try {
        fh = await open(path, flags | constants.O_DIRECT, 0o600);
      } catch (err) {
        if (!isEinval(err)) throw err; // else the file system does not do O_DIRECT (e.g. older tmpfs)
      }
    }
    const direct = fh !== null;
    fh ??= await open(path, flags, 0o600);
    return new DirectFileWriter(fh, direct, path);
  }

  /** Whether writes bypass the page cache (false where the file system refused O_DIRECT). */
  get bypassesCache(): boolean {
    return this.direct;
  }

  /** Copies `chunk` into staging; waits only when every slot is still being written. */
  async write(chunk: Uint8Array): Promise<void> {
    this.check();
    let at = 0;
    while (at < chunk.byteLength) {
      const n = Math.min(SLOT_BYTES - this.fill, chunk.byteLength - at);
      this.slots[this.slot].set(chunk.subarray(at, at + n), this.fill);
      this.fill += n;
      at += n;
      if (this.fill === SLOT_BYTES) {
        this.startWrite(this.slot, SLOT_BYTES, this.size + at - SLOT_BYTES);
        this.slot = (this.slot + 1) % SLOTS;
        this.fill = 0;
        const busy = this.inFlight[this.slot];
        if (busy) await busy;
        this.check();
      }
    }
    this.size += chunk.byteLength;
  }

  /** Throws the first failed write's error, or if the writer was closed meanwhile (its staging may serve another file by now). */
  private check(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new Error(`${this.path} was closed while being written`);
  }

  private startWrite(slot: number, bytes: number, position: number): void {
    const done = this.put(this.slots[slot].subarray(0, bytes), position)
      .catch((err: unknown) => { this.failure ??= err as Error; })
      .finally(() => { if (this.inFlight[slot] === done) this.inFlight[slot] = null; });
    this.inFlight[slot] = done;
  }

  private async put(buf: Buffer, position: number): Promise<void> {
    let written: number;
    try {
      ({ bytesWritten: written } = await this.fh.write(buf, 0, buf.byteLength, position));
    } catch (err) {
      // O_DIRECT accepted at open but refused for these writes (a device with larger blocks):
      // the rest goes through the page cache.
      if (!this.direct || !isEinval(err)) throw err;
      await this.fallBack();
      ({ bytesWritten: written } = await this.fh.write(buf, 0, buf.byteLength, position));
    }
    if (written !== buf.byteLength) throw new Error(`short write to ${this.path}: ${written} of ${buf.byteLength} bytes (disk full?)`);
  }

  private fallBack(): Promise<void> {
    this.fallingBack ??= (async () => {
      const buffered = await open(this.path, constants.O_WRONLY);
      const old = this.fh;
      this.fh = buffered;
      this.direct = false;
      await old.close().catch(() => undefined);
    })();
    return this.fallingBack;
  }

  private async settle(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  /** Writes what is staged, sets the file's exact size and closes it. */
  async end(): Promise<void> {
    this.check();
    try {
      // The last piece goes out whole blocks long (zero-padded); the file is then cut to size.
      const padded = this.direct ? Math.ceil(this.fill / BLOCK) * BLOCK : this.fill;
      if (padded > 0) {
        this.slots[this.slot].fill(0, this.fill, padded);
        this.startWrite(this.slot, padded, this.size - this.fill);
      }
      await this.settle();
      if (this.failure) throw this.failure;
      if (padded > this.fill) await this.fh.truncate(this.size);
    } finally {
      await this.close();
    }
  }

  /** Stops writing; the caller removes the file. Waits for writes in flight before the staging memory is reused. */
  async destroy(): Promise<void> {
    await this.settle();
    await this.close();
  }

  /** Closes the file; only once no write is in flight, so the staging memory can serve the next file. */
  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    staging.release(this.memory);
    await this.fh.close();
  }
}
