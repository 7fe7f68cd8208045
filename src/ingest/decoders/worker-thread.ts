// A decoder's worker thread, seen from the server thread as a sequence of messages read one at a
// time. The worker sends a batch only against a credit (bounded read-ahead); each read waits at
// most a time budget (hostile input can make a decoder spin); a failure of the thread itself
// becomes an error message, so the decoder reports it like any refusal. CSV (csv.ts) and Parquet
// (parquet.ts) decode in such threads, and the compression job encodes chunks in one
// (compression/convert-worker.ts).
import { Worker } from 'node:worker_threads';
import type { ErrorCode } from '../../errors/index.ts';

export interface WireError { status: number; code: ErrorCode; message: string; detail?: Record<string, unknown> }
export interface ErrorMessage { type: 'error'; error: WireError }

/** Longest wait for one message before the worker is considered stuck. */
const STALL_MS = 120_000;

/** A 500 of ours: the thread failed, not the file. */
export function crash(message: string): ErrorMessage {
  return { type: 'error', error: { status: 500, code: 'decoder_crashed', message: `${message}; nothing was stored` } };
}

export interface DecoderThreadOptions {
  /** Names the reader in messages: "the CSV reader". */
  reader: string;
  workerData: unknown;
  /** The message for an error the worker threw; by default a crash. */
  onError?: (err: Error) => ErrorMessage;
  /** The message when no message came within the budget; by default a crash. */
  onStall?: (seconds: number) => ErrorMessage;
  /** The thread's heap limits; by default 64 MB old and 16 MB young generation, enough for a decoder. */
  resourceLimits?: { maxOldGenerationSizeMb: number; maxYoungGenerationSizeMb: number };
}

export class DecoderThread<M extends { type: string }> {
  private readonly worker: Worker;
  private readonly queue: (M | ErrorMessage)[] = [];
  private waiter: ((m: M | ErrorMessage) => void) | null = null;
  private ended = false;

  constructor(entry: URL, private readonly opts: DecoderThreadOptions) {
    this.worker = new Worker(entry, { workerData: opts.workerData, resourceLimits: opts.resourceLimits ?? { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 }, stderr: true });
    this.worker.stderr.resume();
    this.worker.on('message', (m: M) => this.push(m));
    this.worker.on('error', (err: Error) => this.push(opts.onError?.(err) ?? crash(`${opts.reader} failed: ${err.message}`)));
    this.worker.on('exit', (code) => { if (!this.ended) this.push(crash(`${opts.reader} exited (code ${code})`)); });
  }

  private push(m: M | ErrorMessage): void {
    const w = this.waiter;
    this.waiter = null;
    if (w) w(m);
    else this.queue.push(m);
  }

  /** Lets the worker send n more batches. */
  credit(n: number): void {
    if (!this.ended) this.worker.postMessage({ type: 'credit', n });
  }

  async next(): Promise<M | ErrorMessage> {
    const queued = this.queue.shift();
    if (queued) return queued;
    if (this.ended) return crash(`${this.opts.reader} was stopped`);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await new Promise<M | ErrorMessage>((resolve) => {
        this.waiter = resolve;
        timer = setTimeout(() => {
          this.waiter = null;
          resolve(this.opts.onStall?.(STALL_MS / 1000) ?? crash(`${this.opts.reader} made no progress for ${STALL_MS / 1000} s`));
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
    w?.(crash(`${this.opts.reader} was stopped`));
    await this.worker.terminate();
  }
}
