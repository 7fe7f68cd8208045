// Background work that yields to the foreground: after a step that took `workMs`, wait for
// `percent` % of that (real time, not the job clock), or until the run is aborted.
export function pauseAfter(workMs: number, percent: number, signal?: AbortSignal): Promise<void> {
  const ms = (workMs * percent) / 100;
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Runs `step`, then pauses for `percent` % of the time it took. */
export async function withPause<T>(percent: number, signal: AbortSignal | undefined, step: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const out = await step();
  await pauseAfter(performance.now() - started, percent, signal);
  return out;
}

/** How background work paces itself: the share of its working time it pauses, with and without uploads running. */
export interface Pacing {
  /** Percentage paused while no upload runs (0: none). */
  idlePercent: number;
  /**
   * Percentage paused while uploads run (STRATA_JOB_BUSY_PAUSE, STRATA_COMPRESSION_BUSY_PAUSE);
   * the larger of the two applies then.
   */
  busyPercent: number;
  /** Whether uploads are running (foreground.ts). */
  busy: () => boolean;
}

/** Work between two pauses: long enough that sleeping costs little, short enough that an upload starting soon finds room. */
const STEP_MS = 50;

/**
 * Background work that yields to the foreground: `step()` is called after each piece of work and
 * pauses, once STEP_MS of work have gone by, for the percentage of that time the pacing asks for
 * now.
 */
export class Pacer {
  /** Milliseconds paused so far. */
  pausedMs = 0;
  private worked = 0;
  private last = performance.now();

  constructor(private readonly pacing: Pacing, private readonly signal?: AbortSignal) {}

  readonly step = async (): Promise<void> => {
    const now = performance.now();
    this.worked += now - this.last;
    if (this.worked >= STEP_MS) {
      const percent = this.percentNow();
      if (percent > 0) {
        await pauseAfter(this.worked, percent, this.signal);
        this.pausedMs += performance.now() - now;
      }
      this.worked = 0;
    }
    this.last = performance.now();
  };

  /** The percentage of working time paused now: the larger of the two while uploads run. */
  percentNow(): number {
    const p = this.pacing;
    return p.busy() ? Math.max(p.idlePercent, p.busyPercent) : p.idlePercent;
  }

  /** While uploads run, how many times longer work takes with its pauses (1 otherwise): a rate bound divides by it. */
  busySlowdown(): number {
    return this.pacing.busy() ? 1 + this.percentNow() / 100 : 1;
  }

  /** Time since the last step was spent waiting, not working (another bound's sleep): it is not paused for. */
  rested(): void {
    this.last = performance.now();
  }
}

/**
 * Keeps a copy under `maxBytesPerSecond` (0: no bound), and under that rate divided by
 * `slowdown()` (1 + the busy pause, while uploads run), sleeping when it is ahead. Time spent
 * behind — a pause, a slow disk — earns no credit: it never runs above the rate to catch up,
 * which would undo the pauses.
 */
export function rateLimit(maxBytesPerSecond: number, slowdown: () => number = () => 1): (bytes: number) => Promise<void> {
  let schedule = performance.now();
  return async (bytes: number) => {
    if (maxBytesPerSecond <= 0) return;
    const now = performance.now();
    schedule = Math.max(schedule + (bytes * 1000 * slowdown()) / maxBytesPerSecond, now);
    const due = schedule - now;
    if (due > 5) await new Promise((r) => setTimeout(r, due));
  };
}
