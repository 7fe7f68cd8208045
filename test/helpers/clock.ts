// A clock tests move by hand: the scheduler's sleeps end when the test advances time past them.
import { afterAll, beforeAll } from 'vitest';
import { type Clock, systemClock, useClock } from '../../src/jobs/clock.ts';

interface Sleeper { until: number; wake: () => void }

export class FakeClock implements Clock {
  private t: number;
  private readonly sleepers = new Set<Sleeper>();

  constructor(start: Date | number) {
    this.t = typeof start === 'number' ? start : start.getTime();
  }

  now(): Date {
    return new Date(this.t);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const s: Sleeper = {
        until: this.t + Math.max(ms, 0),
        wake: () => {
          this.sleepers.delete(s);
          signal?.removeEventListener('abort', s.wake);
          resolve();
        },
      };
      this.sleepers.add(s);
      signal?.addEventListener('abort', s.wake, { once: true });
      if (ms <= 0) s.wake();
    });
  }

  /**
   * Moves time forward and wakes every sleeper whose time has come, in random order (replicas
   * woken by the same tick race each other, as on separate machines).
   */
  advance(ms: number): void {
    this.t += ms;
    const due = [...this.sleepers].filter((s) => s.until <= this.t);
    for (let i = due.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [due[i], due[j]] = [due[j], due[i]];
    }
    for (const s of due) s.wake();
  }

  set(to: Date | number): void {
    const t = typeof to === 'number' ? to : to.getTime();
    if (t < this.t) throw new Error('the fake clock does not go back');
    this.advance(t - this.t);
  }

  /** How many sleeps are pending (scheduler loops asleep, run timeouts armed). */
  get sleeping(): number {
    return this.sleepers.size;
  }
}

/**
 * Polls `check` (real time) until it returns a value other than undefined/false. The default
 * wait is long: it only has to catch a hang, and a loaded machine is slow.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** Runs a test file's jobs on `clock`: set before `setup` (which makes the app), put back after `teardown`. */
export function onClock(clock: Clock, setup: () => Promise<void>, teardown: () => Promise<void>): void {
  beforeAll(async () => {
    useClock(clock);
    await setup();
  });
  afterAll(async () => {
    useClock(systemClock);
    await teardown();
  });
}
