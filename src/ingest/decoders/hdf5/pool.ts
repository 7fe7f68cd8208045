// HDF5 decoder workers, seen from the server thread. Each upload leases a worker; a worker that
// never saw an HDF5 error and whose wasm heap stayed small is kept for the next one, any other
// (an HDF5 error, a wasm abort, a heap that grew — it never shrinks) is terminated, which frees
// its memory and every file descriptor h5wasm leaked. A worker that dies or stops answering turns
// into a clean error for its upload; the server thread never runs HDF5 code itself.
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { AppError } from '../../../errors/index.ts';
import type { WireError } from './errors.ts';
import type { FromWorker, ToWorker } from './protocol.ts';

/** A worker whose wasm heap grew beyond this is replaced after its file. */
const HEAP_RECYCLE_BYTES = 192 * 1024 * 1024;
/** Files one worker reads before it is replaced anyway. */
const MAX_USES = 200;
/** Idle workers kept, and for how long. */
const MAX_IDLE = 1;
const IDLE_MS = 60_000;
/** Longest wait for one message (a batch, the schema) before the worker is considered stalled. */
const STALL_MS = 300_000;

const ENTRY = new URL('./worker-entry.mjs', import.meta.url);

function crashError(message: string): WireError {
  return { status: 500, code: 'decoder_crashed', message: `${message}; nothing was stored` };
}

export class DecoderWorker {
  private readonly worker: Worker;
  private readonly queue: FromWorker[] = [];
  private waiter: ((m: FromWorker) => void) | null = null;
  private dead = false;
  uses = 0;
  versions: Record<string, string> = {};
  idleTimer: NodeJS.Timeout | null = null;

  constructor() {
    // emscripten prints "Aborted(…)" to stderr before throwing; the error carries the same text.
    this.worker = new Worker(ENTRY, { resourceLimits: { maxOldGenerationSizeMb: 512 }, stderr: true });
    this.worker.stderr.resume();
    this.worker.on('message', (m: FromWorker) => this.push(m));
    this.worker.on('error', (err: Error) => {
      this.dead = true;
      this.push({ type: 'error', error: crashError(`the HDF5 decoder worker failed: ${err.message}`) });
    });
    this.worker.on('exit', (code) => {
      const wasDead = this.dead;
      this.dead = true;
      if (!wasDead) this.push({ type: 'error', error: crashError(`the HDF5 decoder worker exited (code ${code})`) });
    });
  }

  get alive(): boolean {
    return !this.dead;
  }

  private push(m: FromWorker): void {
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w(m);
    } else {
      this.queue.push(m);
    }
  }

  post(msg: ToWorker): void {
    if (!this.dead) this.worker.postMessage(msg);
  }

  /** The next message; a stalled worker is terminated and reported as crashed. */
  next(timeoutMs = STALL_MS): Promise<FromWorker> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.dead) return Promise.resolve({ type: 'error', error: crashError('the HDF5 decoder worker is gone') });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        void this.terminate();
        resolve({ type: 'error', error: crashError(`the HDF5 decoder did not answer within ${Math.round(timeoutMs / 1000)} s`) });
      }, timeoutMs);
      this.waiter = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
    });
  }

  ref(on: boolean): void {
    if (on) this.worker.ref();
    else this.worker.unref();
  }

  async terminate(): Promise<void> {
    this.dead = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    await this.worker.terminate().catch(() => undefined);
  }
}

const idle: DecoderWorker[] = [];
let active = 0;
const waiting: (() => void)[] = [];
const maxActive = Math.max(2, Math.min(8, os.availableParallelism()));

async function start(): Promise<DecoderWorker> {
  const w = new DecoderWorker();
  const first = await w.next(60_000);
  if (first.type !== 'ready') {
    await w.terminate();
    const e = first.type === 'error' ? first.error : crashError('the HDF5 decoder worker did not start');
    throw new AppError(500, 'decoder_crashed', e.message);
  }
  w.versions = first.versions;
  return w;
}

/** A worker for one file; at most `maxActive` decode at once, further uploads wait their turn. */
export async function acquireWorker(): Promise<DecoderWorker> {
  if (active >= maxActive) await new Promise<void>((resolve) => waiting.push(resolve));
  active++;
  try {
    if (idle.length === 0 && warming) await warming;
    let w = idle.pop();
    while (w && !w.alive) w = idle.pop();
    if (w) {
      if (w.idleTimer) clearTimeout(w.idleTimer);
      w.ref(true);
    } else {
      w = await start();
    }
    w.uses++;
    return w;
  } catch (err) {
    releaseSlot();
    throw err;
  }
}

function park(w: DecoderWorker): void {
  w.ref(false);
  w.idleTimer = setTimeout(() => {
    const i = idle.indexOf(w);
    if (i >= 0) idle.splice(i, 1);
    void w.terminate();
  }, IDLE_MS);
  w.idleTimer.unref();
  idle.push(w);
}

let warming: Promise<void> | null = null;

/** Starts a spare worker in the background (start-up takes ~0.6 s), so the next upload need not wait. */
function prewarm(): void {
  if (warming || idle.length >= MAX_IDLE) return;
  warming = start().then((w) => park(w), () => undefined).finally(() => { warming = null; });
}

function releaseSlot(): void {
  active--;
  waiting.shift()?.();
}

/**
 * Returns a worker after its file, finished or not. It is kept only when it closes the file
 * cleanly and reports no HDF5 error in its life (a failed read leaks a file handle; an abort
 * leaves the module unsound), a small wasm heap and few files served; otherwise it is
 * terminated and a spare is started.
 */
export async function releaseWorker(w: DecoderWorker): Promise<void> {
  try {
    let keep = false;
    if (w.alive) {
      w.post({ type: 'close' });
      // Batches already sent (read-ahead) arrive before the answer to "close".
      for (let i = 0; i < 16; i++) {
        const m = await w.next(30_000);
        if (m.type === 'batch' || m.type === 'end') continue;
        keep = m.type === 'closed' && m.errors === 0 && m.heapBytes < HEAP_RECYCLE_BYTES
          && w.uses < MAX_USES && idle.length < MAX_IDLE && w.alive;
        break;
      }
    }
    if (keep) park(w);
    else {
      await w.terminate();
      prewarm();
    }
  } finally {
    releaseSlot();
  }
}

/** Workers currently running or idle (for tests and metrics). */
export function workerCounts(): { active: number; idle: number } {
  return { active, idle: idle.length };
}
