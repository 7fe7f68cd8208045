// The maintenance jobs Strata runs in the background (chunk pre-creation, rollup refresh,
// retention …). Each feature module registers its job here; the scheduler runs what is registered.
import type { Db } from '../db/pool.ts';
import type { Logger } from '../logging/logger.ts';
import type { Config } from '../config/index.ts';

export interface JobContext {
  db: Db;
  config: Config;
  log: Logger;
  /** The scheduler's clock (injectable in tests). */
  now(): Date;
  /** Set when the run is limited to one stream (`POST /v1/jobs/{name}/run?stream=`). */
  stream?: string;
  /** Aborted when the run times out or the server shuts down. */
  signal: AbortSignal;
  /** The run's id in the run records, when the scheduler keeps them. */
  runId: number | null;
}

export interface JobResult {
  /** Rows read, written or removed, as the job counts them. */
  rows?: number;
  /** Chunks created, dropped or refreshed. */
  chunks?: number;
  /** Anything else worth keeping in the run record. */
  details?: Record<string, unknown>;
}

export interface JobDefinition {
  name: string;
  description: string;
  /** Default schedule; the scheduler may override it from configuration. */
  defaultIntervalMs: number;
  run(ctx: JobContext): Promise<JobResult>;
}

const registered = new Map<string, JobDefinition>();

export function registerJob(def: JobDefinition): void {
  registered.set(def.name, def);
}

export function registeredJobs(): JobDefinition[] {
  return [...registered.values()];
}

export function registeredJob(name: string): JobDefinition | undefined {
  return registered.get(name);
}

/**
 * Thrown by a job that did part of its work and then failed: the run is recorded as failed, with
 * what was done (rows, chunks, details) kept in the run record.
 */
export class JobFailed extends Error {
  constructor(message: string, readonly result: JobResult) {
    super(message);
    this.name = 'JobFailed';
  }
}
