// Retention yields to uploads: after each step it waits for a share of the time the step took.
import { describe, expect, it } from 'vitest';
import { pauseAfter, withPause } from '../../src/jobs/pause.ts';

describe('pauses of background work', () => {
  it('waits the given percentage of the work time', async () => {
    const started = performance.now();
    const out = await withPause(100, undefined, async () => {
      await new Promise((r) => setTimeout(r, 60));
      return 'done';
    });
    expect(out).toBe('done');
    expect(performance.now() - started).toBeGreaterThanOrEqual(115);
  });

  // Pauses of 20 s asked for; "did not wait" is told apart from them by a margin that a loaded
  // machine (a busy CI runner) cannot eat.
  it('does not wait at 0 %, nor once the run is aborted', async () => {
    let started = performance.now();
    await pauseAfter(20_000, 0);
    expect(performance.now() - started).toBeLessThan(5_000);
    const abort = new AbortController();
    started = performance.now();
    const waiting = pauseAfter(20_000, 100, abort.signal);
    setTimeout(() => abort.abort(), 20);
    await waiting;
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
