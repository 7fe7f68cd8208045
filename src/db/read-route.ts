// Where reads go when a streaming-replication standby serves them (STRATA_READ_DATABASE_URL).
// Queries and lists read from the standby while it answers; every write, ingest and job stays on
// the primary. Once a second the standby is probed (and its replay lag measured against the
// primary's WAL position); while it does not answer, reads fall back to the primary — said once
// in the log and counted — and they return to it when it answers again. A read that must see an
// ingest just made (?after_ingest=ID) waits, for a bounded time, until the standby has replayed
// that ingest's commit: its ingest record is written in the same transaction as its rows, so the
// record being visible on the standby means the rows are. After the wait it reads from the primary.
import type { Db } from './pool.ts';

export type ReadTarget = 'standby' | 'primary';
export type ReadReason = 'standby' | 'standby_down' | 'after_ingest_timeout' | 'after_ingest_seen';

export interface ReadChoice { db: Db; target: ReadTarget; reason: ReadReason }

export interface StandbyState {
  up: boolean;
  /** Seconds of replay behind the primary (0 when it has replayed everything), null when unknown. */
  lagSeconds: number | null;
  lagBytes: number | null;
  error: string | null;
  since: Date;
}

export interface ReadRouteEvents {
  onDown(err: string): void;
  onUp(downForMs: number): void;
  onLag(state: StandbyState): void;
  onRead(choice: ReadChoice): void;
}

const PROBE_TIMEOUT_MS = 2_000;
const AFTER_INGEST_POLL_MS = 50;

function timeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export class ReadRoute {
  private timer: NodeJS.Timeout | null = null;
  private probing: Promise<void> = Promise.resolve();
  private stopped = false;
  readonly state: StandbyState = { up: false, lagSeconds: null, lagBytes: null, error: 'not probed yet', since: new Date() };

  constructor(readonly primary: Db, readonly standby: Db, private readonly opts: { afterIngestWaitMs: number; checkEveryMs?: number; events: ReadRouteEvents }) {}

  async start(): Promise<void> {
    await this.probe();
    const every = this.opts.checkEveryMs ?? 1000;
    const tick = (): void => {
      if (this.stopped) return;
      this.probing = this.probe().finally(() => { this.timer = setTimeout(tick, every); this.timer.unref(); });
    };
    this.timer = setTimeout(tick, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.probing;
  }

  /** Probes the standby: does it answer, and how far behind is it? */
  async probe(): Promise<void> {
    try {
      const { rows } = await timeout(this.standby.pool.query<{ replay: string | null; ts: Date | null }>(
        'SELECT pg_last_wal_replay_lsn()::text AS replay, pg_last_xact_replay_timestamp() AS ts'), PROBE_TIMEOUT_MS, 'the standby');
      let bytes: number | null = null;
      if (rows[0].replay !== null) {
        const p = await timeout(this.primary.pool.query<{ d: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::text AS d', [rows[0].replay]), PROBE_TIMEOUT_MS, 'the primary')
          .catch(() => null);
        bytes = p ? Math.max(0, Number(p.rows[0].d)) : null;
      }
      const seconds = bytes === 0 ? 0 : rows[0].ts ? Math.max(0, (Date.now() - rows[0].ts.getTime()) / 1000) : null;
      this.markUp();
      Object.assign(this.state, { lagBytes: bytes, lagSeconds: seconds });
      this.opts.events.onLag(this.state);
    } catch (err) {
      this.markDown((err as Error).message);
    }
  }

  private markUp(): void {
    if (this.state.up) return;
    const downFor = Date.now() - this.state.since.getTime();
    const wasProbed = this.state.error !== 'not probed yet';
    Object.assign(this.state, { up: true, error: null, since: new Date() });
    if (wasProbed) this.opts.events.onUp(downFor);
  }

  /** A read on the standby failed for want of a connection: reads go to the primary until a probe succeeds. */
  markDown(error: string): void {
    const wasUp = this.state.up || this.state.error === 'not probed yet';
    Object.assign(this.state, { up: false, error, lagSeconds: null, lagBytes: null });
    if (wasUp) {
      this.state.since = new Date();
      this.opts.events.onDown(error);
    }
    this.opts.events.onLag(this.state);
  }

  /** Where a read goes; afterIngest: the ingest (id) it must see. */
  async choose(afterIngest?: string): Promise<ReadChoice> {
    const choice = await this.decide(afterIngest);
    this.opts.events.onRead(choice);
    return choice;
  }

  private async decide(afterIngest?: string): Promise<ReadChoice> {
    if (!this.state.up) return { db: this.primary, target: 'primary', reason: 'standby_down' };
    if (afterIngest === undefined) return { db: this.standby, target: 'standby', reason: 'standby' };
    const deadline = Date.now() + this.opts.afterIngestWaitMs;
    for (;;) {
      try {
        const { rowCount } = await timeout(this.standby.pool.query('SELECT 1 FROM strata.ingests WHERE id = $1', [afterIngest]), PROBE_TIMEOUT_MS, 'the standby');
        if ((rowCount ?? 0) > 0) return { db: this.standby, target: 'standby', reason: 'after_ingest_seen' };
      } catch (err) {
        this.markDown((err as Error).message);
        return { db: this.primary, target: 'primary', reason: 'standby_down' };
      }
      if (Date.now() >= deadline) return { db: this.primary, target: 'primary', reason: 'after_ingest_timeout' };
      await new Promise((r) => setTimeout(r, AFTER_INGEST_POLL_MS));
    }
  }
}
