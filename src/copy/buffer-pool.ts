// Reusable output buffers for COPY data. A fresh 1 MiB Buffer per slice of rows costs a page
// fault per 4 KiB on first touch and, being memory outside V8's heap, drives V8 into full
// garbage collections every few dozen megabytes; at ingest rates that was a quarter of the
// server's CPU. Reusing a few buffers avoids both. The pool only hands out buffers; a buffer
// comes back through release(), which its user calls once nothing can read it any more (the
// socket's write callback, see copy-stream.ts).

export class BufferPool {
  private readonly free: Buffer[] = [];
  /** Pooled buffers handed out and not yet released (weakly: one never released is just garbage). */
  private readonly lent = new WeakSet<ArrayBufferLike>();

  /**
   * @param size capacity of each pooled buffer; larger requests get a one-off buffer
   * @param keep how many released buffers to hold for reuse; the rest are left to the GC
   */
  constructor(readonly size: number, readonly keep: number,
    /** Makes a pooled buffer of `size` bytes (e.g. from page-aligned memory). */
    private readonly allocate: (size: number) => Buffer = (n) => Buffer.allocUnsafeSlow(n)) {}

  /** A buffer of exactly `bytes` bytes, uninitialised. */
  take(bytes: number): Buffer {
    if (bytes > this.size) return Buffer.allocUnsafe(bytes);
    const whole = this.free.pop() ?? this.allocate(this.size);
    this.lent.add(whole.buffer);
    return whole.subarray(0, bytes);
  }

  /** Returns a buffer from take() for reuse; one-off buffers and repeated releases are ignored. */
  release(buf: Buffer): void {
    if (!this.lent.delete(buf.buffer)) return;
    if (this.free.length < this.keep) this.free.push(Buffer.from(buf.buffer, 0, this.size));
  }
}
