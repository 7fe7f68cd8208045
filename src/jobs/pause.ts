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
