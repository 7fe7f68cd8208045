// What the HTTP layer is given by main.ts (or a test): handles, settings and versions.
import type { Db } from '../db/pool.ts';
import type { Config } from '../config/index.ts';
import type { Logger } from '../logging/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';

export interface AppDeps {
  db: Db;
  /** The connections uploads draw on (see STRATA_MAX_CONCURRENT_UPLOADS); db when not given. */
  uploadDb?: Db;
  config: Config;
  log: Logger;
  metrics: Metrics;
  versions: Record<string, string>;
  /** Hooks other modules add (jobs, scheduler) — called by routes that need them. */
  services: Record<string, unknown>;
}
