// Uploads in flight, as background work sees them. A nice value only helps when the CPU is
// short, and uploads were still 21 % slower beside a conversion at nice 10 on an idle 2-core
// machine (test/bench/README.md, "Compression"). So background work also pauses, while an
// upload is running and for a moment after one ends, for a larger share of the time it works
// (STRATA_JOB_BUSY_PAUSE, STRATA_COMPRESSION_BUSY_PAUSE): it then runs on when uploads leave it
// room, and slower, never stopped, under uploads that never end.
//
// The state is two 64-bit cells of shared memory, so that a worker thread reads it without a
// message: uploads in flight, and the wall-clock millisecond the last one ended.

/** After an upload ends, background work stays slowed this long: the next one often follows at once. */
export const BUSY_GRACE_MS = 250;

export class Foreground {
  private readonly cells: BigInt64Array;

  /** `shared`: the memory of another thread's Foreground (its `shared`), or none for a new one. */
  constructor(readonly shared: SharedArrayBuffer = new SharedArrayBuffer(16)) {
    this.cells = new BigInt64Array(shared);
  }

  /** An upload begins; call the answer once when it ends, however it ends. */
  begin(): () => void {
    Atomics.add(this.cells, 0, 1n);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      // The end time first: a reader never sees no upload and an old end.
      Atomics.store(this.cells, 1, BigInt(Date.now()));
      Atomics.sub(this.cells, 0, 1n);
    };
  }

  /** Whether an upload is in flight, or one ended less than BUSY_GRACE_MS ago. */
  busy(now = Date.now()): boolean {
    return Atomics.load(this.cells, 0) > 0n || now - Number(Atomics.load(this.cells, 1)) < BUSY_GRACE_MS;
  }
}

/** This process's uploads (run-ingest.ts marks them; background work reads them). */
export const foreground = new Foreground();
