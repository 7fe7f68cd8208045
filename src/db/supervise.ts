// Supervision of the embedded PostgreSQL. Strata started that server, so Strata keeps it running:
// once a second it checks that the postmaster lives; when it has died (killed, crashed, out of
// memory) it is started again on the same port and data directory, after a pause that doubles
// with each failed attempt. PostgreSQL's own crash recovery replays the WAL, so every committed
// ingest is there again and nothing uncommitted is. Meanwhile requests that need the database
// get 503 database_unavailable with Retry-After and /readyz answers 503. After `maxFailures`
// failed starts in a row the supervisor gives up and says so through onGiveUp (main.ts exits
// non-zero): a server that cannot start again needs an operator.
import { existsSync, readFileSync } from 'node:fs';
import type { EmbeddedServer } from './embedded.ts';

export type SupervisorState = 'running' | 'restarting' | 'failed';

export interface SupervisorEvents {
  onDown(pid: number | null): void;
  onRestarted(attempt: number, downForMs: number): void;
  onRestartFailed(attempt: number, err: Error): void;
  onGiveUp(err: Error): void;
}

export interface SupervisorOptions {
  checkEveryMs?: number;
  /** Pause before the first restart attempt; doubled after each failure. */
  firstBackoffMs?: number;
  maxBackoffMs?: number;
  /** Failed starts in a row before giving up. */
  maxFailures?: number;
}

export interface Supervisor {
  readonly state: SupervisorState;
  readonly restarts: number;
  stop(): Promise<void>;
}

/** Whether the postmaster with this pid runs (a pid reused by another program does not count). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return /postgres/.test(readFileSync(`/proc/${pid}/cmdline`, 'latin1'));
  } catch {
    return !existsSync('/proc/self'); // no /proc here: the signal test is all there is
  }
}

export function superviseEmbedded(server: EmbeddedServer, events: SupervisorEvents, opts: SupervisorOptions = {}): Supervisor {
  const checkEvery = opts.checkEveryMs ?? 1000;
  const first = opts.firstBackoffMs ?? 500;
  const maxBackoff = opts.maxBackoffMs ?? 10_000;
  const maxFailures = opts.maxFailures ?? 5;
  let state: SupervisorState = 'running';
  let restarts = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let work: Promise<void> = Promise.resolve();
  let wake: (() => void) | null = null;
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => {
    wake = resolve;
    timer = setTimeout(resolve, ms);
  });

  async function recover(pid: number | null): Promise<void> {
    const downAt = Date.now();
    state = 'restarting';
    events.onDown(pid);
    for (let attempt = 1; !stopped; attempt++) {
      await sleep(Math.min(maxBackoff, first * 2 ** (attempt - 1)));
      if (stopped) return;
      try {
        await server.restart();
        restarts++;
        state = 'running';
        events.onRestarted(attempt, Date.now() - downAt);
        return;
      } catch (err) {
        events.onRestartFailed(attempt, err as Error);
        if (attempt >= maxFailures) {
          state = 'failed';
          events.onGiveUp(new Error(`the embedded PostgreSQL died and ${attempt} attempts to start it again failed; last: ${(err as Error).message}`, { cause: err }));
          return;
        }
      }
    }
  }

  async function check(): Promise<void> {
    const pid = await server.postmasterPid();
    if (pid !== null && alive(pid)) return;
    await recover(pid);
  }

  function schedule(): void {
    if (stopped || state === 'failed') return;
    timer = setTimeout(() => {
      work = check().catch((err: Error) => events.onRestartFailed(0, err)).finally(schedule);
    }, checkEvery);
    timer.unref();
  }
  schedule();

  return {
    get state() { return state; },
    get restarts() { return restarts; },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      (wake as (() => void) | null)?.();
      await work;
    },
  };
}
