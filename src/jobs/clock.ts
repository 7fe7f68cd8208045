// The scheduler's clock. Jobs ask it for "now" and the scheduler sleeps on it, so a test can
// replace it (useClock) and move time: 90 days of retention or 20 schedule ticks in seconds.
// Replicas in one process share it, as replicas on one machine share the wall clock.

export interface Clock {
  now(): Date;
  /** Resolves after `ms` of this clock's time, or at once when `signal` aborts (never rejects). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

// setTimeout takes at most 2^31-1 ms; longer sleeps are cut, and callers loop anyway.
const MAX_TIMER_MS = 2_147_483_647;

export const systemClock: Clock = {
  now: () => new Date(),
  sleep(ms, signal) {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(Math.max(ms, 0), MAX_TIMER_MS));
      signal?.addEventListener('abort', done, { once: true });
    });
  },
};

let current: Clock = systemClock;

/** Replaces the clock of every scheduler and job run started afterwards (tests). */
export function useClock(clock: Clock): void {
  current = clock;
}

export function jobClock(): Clock {
  return current;
}
