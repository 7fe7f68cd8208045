// What retention needs to know from the rollups before it drops raw chunks: which rollup levels
// a stream has, and whether they have absorbed (materialised) a time range — refreshing it if
// they can. The rollups module provides it; without one, a stream has no rollup levels.
import type { Db, Queryable } from '../db/pool.ts';
import type { Stream } from '../streams/catalog.ts';

export interface LevelCoverage {
  level: string;
  absorbed: boolean;
  /** Why not, when not absorbed. */
  reason?: string;
}

export interface AbsorbOptions {
  /** How far behind now watermarks stay (STRATA_ROLLUP_LAG). */
  lagUs: bigint;
  maxNewChunks: number;
  /** The job run asking, for the refresh records. */
  runId: number | null;
  /** Pause after each refreshed range for this percentage of the time it took. */
  pausePercent?: number;
  signal?: AbortSignal;
}

export interface RollupCoverage {
  /** Rollup level names of a stream, finest first (e.g. ["1m", "1h", "1d"]). */
  levels(db: Db, stream: Stream): Promise<string[]>;
  /**
   * Makes every listed level materialise [fromUs, toUs) if it can (refreshing invalidated or
   * unrefreshed buckets), and reports per level whether the range is now fully absorbed.
   */
  absorb(db: Db, stream: Stream, levels: string[], fromUs: bigint, toUs: bigint, now: Date, opts?: AbsorbOptions): Promise<LevelCoverage[]>;
  /**
   * Whether any of the levels has buckets within [fromUs, toUs) that rows written or retracted
   * since it absorbed them made stale (every upload and retraction below a watermark records
   * that in its own transaction): read in the caller's transaction.
   */
  staleWithin(q: Queryable, stream: Stream, levels: string[], fromUs: bigint, toUs: bigint): Promise<boolean>;
}

let provider: RollupCoverage | null = null;

export function registerRollupCoverage(p: RollupCoverage): void {
  provider = p;
}

export function rollupCoverage(): RollupCoverage | null {
  return provider;
}
