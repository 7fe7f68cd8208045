// Background work yields to uploads: retention waits for a share of the time each step took, and
// the conversion and a backup's copy pause for a larger share while uploads are in flight.
import { describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { BUSY_GRACE_MS, Foreground } from '../../src/jobs/foreground.ts';
import { Pacer, pauseAfter, rateLimit, withPause } from '../../src/jobs/pause.ts';

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

describe('background work beside uploads', () => {
  /** Busy-waits `ms` of work between steps of the pacer, `steps` times; answers the wall time. */
  async function work(pacer: Pacer, steps: number, ms: number): Promise<number> {
    const started = performance.now();
    for (let i = 0; i < steps; i++) {
      const until = performance.now() + ms;
      while (performance.now() < until) { /* work */ }
      await pacer.step();
    }
    return performance.now() - started;
  }

  it('pauses for the busy percentage while uploads run, and for the idle one otherwise', async () => {
    const uploads = new Foreground();
    const pacer = new Pacer({ idlePercent: 0, busyPercent: 400, busy: () => uploads.busy() });
    await work(pacer, 10, 10);
    expect(pacer.pausedMs).toBe(0);
    const ended = uploads.begin();
    const wall = await work(pacer, 10, 10);
    ended();
    // 100 ms of work, then pauses of four times the work: at least 400 ms more.
    expect(pacer.pausedMs).toBeGreaterThanOrEqual(350);
    expect(wall).toBeGreaterThanOrEqual(450);
  });

  it('does not count waiting that rested() marks as work', async () => {
    const pacer = new Pacer({ idlePercent: 400, busyPercent: 400, busy: () => false });
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 30)); // another bound's sleep
      pacer.rested();
      await pacer.step();
    }
    expect(pacer.pausedMs).toBe(0);
  });

  it('counts uploads in flight, and stays busy a moment after the last one ends', () => {
    const uploads = new Foreground();
    expect(uploads.busy()).toBe(false);
    const a = uploads.begin();
    const b = uploads.begin();
    a();
    a(); // a second call of the same end counts once
    expect(uploads.busy()).toBe(true);
    b();
    const now = Date.now();
    expect(uploads.busy(now)).toBe(true);
    expect(uploads.busy(now + BUSY_GRACE_MS + 1)).toBe(false);
  });

  it('is seen from a worker thread through the shared memory', async () => {
    const uploads = new Foreground();
    const ask = async (): Promise<boolean> => {
      const w = new Worker(`
        const { parentPort, workerData } = require('node:worker_threads');
        const cells = new BigInt64Array(workerData);
        parentPort.postMessage(Atomics.load(cells, 0) > 0n);`, { eval: true, workerData: uploads.shared });
      const [answer] = await once(w, 'message') as [boolean];
      await w.terminate();
      return answer;
    };
    expect(await ask()).toBe(false);
    const ended = uploads.begin();
    expect(await ask()).toBe(true);
    ended();
    expect(await ask()).toBe(false);
  });
});

describe('the rate bound of a backup\'s copy', () => {
  const MB = 1 << 20;
  /** Milliseconds `n` calls of 1 MB take under the bound, after `stallMs` spent behind first. */
  async function timed(bound: (bytes: number) => Promise<void>, n: number, stallMs = 0): Promise<number> {
    if (stallMs > 0) await new Promise((r) => setTimeout(r, stallMs));
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await bound(MB);
    return performance.now() - t0;
  }

  it('holds the rate, and a share of it while uploads run', async () => {
    // 20 MB/s: 1 MB each 50 ms; five of them at least about 250 ms.
    expect(await timed(rateLimit(20 * MB), 5)).toBeGreaterThanOrEqual(230);
    // Busy with a 400 % pause: a fifth of the rate, 250 ms a MB.
    let busy = true;
    const bound = rateLimit(20 * MB, () => (busy ? 5 : 1));
    expect(await timed(bound, 3)).toBeGreaterThanOrEqual(700);
    busy = false;
    const idle = await timed(bound, 3);
    expect(idle).toBeGreaterThanOrEqual(130);
    expect(idle).toBeLessThan(600);
    expect(await timed(rateLimit(0, () => 5), 50)).toBeLessThan(50);
  });

  it('is a share of the rate the pacer leaves while uploads run', () => {
    let busy = true;
    const pacer = new Pacer({ idlePercent: 100, busyPercent: 400, busy: () => busy });
    expect(pacer.busySlowdown()).toBe(5);
    busy = false;
    expect(pacer.busySlowdown()).toBe(1);
  });

  it('gives no credit for time spent behind: after a stall it does not run above the rate', async () => {
    const bound = rateLimit(20 * MB);
    // 600 ms stalled (a pause, a slow disk) would have allowed 12 MB; the next 6 MB still take 300 ms.
    expect(await timed(bound, 6, 600)).toBeGreaterThanOrEqual(230);
  });
});
