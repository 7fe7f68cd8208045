// Settings come from the environment, are validated once at start-up, and are passed down
// explicitly; nothing below main.ts reads process.env.
import { isIP } from 'node:net';
import path from 'node:path';
import { AppError } from '../errors/index.ts';
import { parseInterval } from '../domain/interval.ts';
import { DEFAULT_TIME_WINDOW, type TimeWindow, parseTimeWindow } from '../ingest/decoders/epoch-units.ts';

export interface Limits {
  /** Largest request body accepted, as received (compressed) bytes. */
  maxBodyBytes: number;
  /** Largest body after Content-Encoding is undone. */
  maxInflatedBytes: number;
  /** Largest single Arrow record batch message; memory per upload is set by this. */
  maxBatchBytes: number;
  /** Most chunks one upload may create. */
  maxNewChunks: number;
  /** Most HDF5 bytes accepted (spooled to disk). */
  maxHdf5Bytes: number;
  /** Rows per COPY buffer flushed to PostgreSQL. */
  copyFlushBytes: number;
  /** Plausible instants for epoch numbers without a unit (STRATA_TIME_WINDOW). */
  timeWindow?: TimeWindow;
}

export interface Config {
  databaseUrl: string | undefined;
  port: number;
  host: string;
  dataDir: string;
  spoolDir: string;
  archiveDir: string;
  adminKey: string | undefined;
  embeddedPgPort: number | undefined;
  /** Networks (CIDR) that may reach the embedded PostgreSQL from other machines (STRATA_PG_ALLOW). */
  pgAllow: string[];
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  jobs: boolean;
  /** Schedule overrides per job name, from STRATA_JOB_<NAME>_INTERVAL/_JITTER/_TIMEOUT/_RETRIES/_BACKOFF. */
  jobSchedules: Record<string, JobScheduleSettings>;
  /** Chunks the `chunks` job keeps created ahead of now for every stream (STRATA_CHUNKS_AHEAD). */
  chunksAhead: number;
  /** How far behind now rollup watermarks stay, so that buckets still filling are not materialised (STRATA_ROLLUP_LAG). */
  rollupLagUs: bigint;
  /**
   * After each step of its work (absorbing a range into the rollups, dropping a chunk) retention
   * pauses for this percentage of the time the step took, leaving the CPU to ingest meanwhile
   * (STRATA_RETENTION_PAUSE; 0 for none).
   */
  retentionPausePercent: number;
  /**
   * Nice value of the PostgreSQL backends that serve background jobs, when PostgreSQL runs on
   * this machine (STRATA_JOB_NICE, 0–19; 0 runs them at the priority of everything else).
   */
  jobNice: number;
  /**
   * While uploads run, a base backup's copy pauses for this percentage of the time it works
   * (STRATA_JOB_BUSY_PAUSE; 0 for none): 400 leaves it a fifth of the time.
   */
  jobBusyPausePercent: number;
  /**
   * The same for the compression job's conversion (STRATA_COMPRESSION_BUSY_PAUSE): 1900 leaves it
   * a twentieth of the time; why it is longer than the copy's: test/bench/README.md, "Compression".
   */
  compressionBusyPausePercent: number;
  /**
   * An upload whose client sends no body bytes for this long ends with 408 body_timeout
   * (STRATA_BODY_IDLE_TIMEOUT).
   */
  bodyIdleTimeoutMs: number;
  /** Time a client has to send its request headers (STRATA_HEADERS_TIMEOUT); slow-header clients are cut off. */
  headersTimeoutMs: number;
  /**
   * Uploads received at once (STRATA_MAX_CONCURRENT_UPLOADS); more get 503 too_many_uploads. Uploads
   * draw on a pool of their own (uploadPoolSize), so that authentication, queries and jobs keep theirs.
   */
  maxConcurrentUploads: number;
  limits: Limits;
  /** Backups and continuous WAL archiving (src/backup/); null when STRATA_BACKUP_DIR is unset. */
  backup: BackupSettings | null;
  /** A streaming-replication standby that serves reads (STRATA_READ_DATABASE_URL). */
  readDatabaseUrl: string | undefined;
  /** How long a read with ?after_ingest= waits for the standby before it goes to the primary (STRATA_READ_AFTER_INGEST_WAIT). */
  readAfterIngestWaitMs: number;
}

export interface BackupSettings {
  /** Where base backups, archived WAL and copies of the originals go (STRATA_BACKUP_DIR). */
  dir: string;
  /** A WAL segment is archived at the latest this long after a commit (STRATA_BACKUP_ARCHIVE_TIMEOUT, archive_timeout). */
  archiveTimeoutMs: number;
  /** Base backups kept (STRATA_BACKUP_KEEP); older ones, and the WAL only they needed, are pruned. */
  keep: number;
  /**
   * While it copies the cluster, a base backup pauses for this percentage of the time its copying
   * took, leaving CPU and disk to ingest meanwhile (STRATA_BACKUP_PAUSE; 0 for none).
   */
  pausePercent: number;
  /** The copy of a base backup reads at most this many bytes per second (STRATA_BACKUP_MAX_RATE; 0: no bound). */
  maxBytesPerSecond: number;
  /** pg_backup_start asks for an immediate checkpoint rather than a spread one (STRATA_BACKUP_CHECKPOINT, default fast). */
  fastCheckpoint: boolean;
}

export interface JobScheduleSettings {
  intervalMs?: number;
  jitterMs?: number;
  timeoutMs?: number;
  retries?: number;
  backoffMs?: number;
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export const defaultLimits: Limits = {
  maxBodyBytes: 4 * GiB,
  maxInflatedBytes: 8 * GiB,
  maxBatchBytes: 256 * MiB,
  maxNewChunks: 1000,
  maxHdf5Bytes: 8 * GiB,
  copyFlushBytes: 1 * MiB,
  timeWindow: DEFAULT_TIME_WINDOW,
};

type Env = Record<string, string | undefined>;

function bytes(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const m = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?$/i.exec(raw.trim());
  if (!m) throw configError(name, raw, 'a byte size such as 1048576, 512MiB or 4GiB');
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  const mult = { b: 1, k: 1024, m: MiB, g: GiB, t: 1024 * GiB }[unit as 'b'];
  return Math.floor(Number(m[1]) * mult);
}

function checkpointMode(env: Env): boolean {
  const raw = env.STRATA_BACKUP_CHECKPOINT;
  if (raw === undefined || raw === '' || raw === 'fast') return true;
  if (raw === 'spread') return false;
  throw configError('STRATA_BACKUP_CHECKPOINT', raw, 'spread or fast');
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw configError(name, raw, `an integer from ${min} to ${max}`);
  return n;
}

function configError(name: string, value: string, expected: string): AppError {
  return new AppError(500, 'internal', `cannot start: ${name}=${JSON.stringify(value)} is not ${expected}`);
}

const JOB_SETTING = /^STRATA_JOB_([A-Z0-9_]+?)_(INTERVAL|JITTER|TIMEOUT|RETRIES|BACKOFF)$/;

/** Durations such as "1 hour", "90s", "500ms"; "0" where zero makes sense (jitter). */
function duration(name: string, raw: string, allowZero: boolean): number {
  if (allowZero && raw.trim() === '0') return 0;
  const us = parseInterval(raw);
  if (us === null || us < 1000n) throw configError(name, raw, `a duration such as "1 hour", "15m" or "500ms"${allowZero ? ' (or 0)' : ''}`);
  return Number(us / 1000n);
}

function durationSetting(env: Env, name: string, fallbackMs: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallbackMs;
  return duration(name, raw, false);
}

function interval(env: Env, name: string, fallback: bigint): bigint {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw.trim() === '0') return 0n;
  const us = parseInterval(raw);
  if (us === null) throw configError(name, raw, 'an interval such as "1 minute", "30s" or 0');
  return us;
}

function jobSchedules(env: Env): Record<string, JobScheduleSettings> {
  const out: Record<string, JobScheduleSettings> = {};
  for (const [name, raw] of Object.entries(env)) {
    const m = JOB_SETTING.exec(name);
    if (!m || raw === undefined || raw === '') continue;
    const job = m[1].toLowerCase();
    const s = (out[job] ??= {});
    if (m[2] === 'INTERVAL') s.intervalMs = duration(name, raw, false);
    else if (m[2] === 'JITTER') s.jitterMs = duration(name, raw, true);
    else if (m[2] === 'TIMEOUT') s.timeoutMs = duration(name, raw, false);
    else if (m[2] === 'BACKOFF') s.backoffMs = duration(name, raw, false);
    else s.retries = int(env, name, 0, 0, 100);
  }
  return out;
}

/** A comma-separated list of networks in CIDR form (10.0.0.0/8, 192.168.1.20/32, fd00::/8). */
function networks(env: Env, name: string): string[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return [];
  return raw.split(',').map((part) => {
    const net = part.trim();
    const m = /^([^/\s]+)\/(\d{1,3})$/.exec(net);
    const family = m ? isIP(m[1]) : 0;
    if (!m || family === 0 || Number(m[2]) > (family === 4 ? 32 : 128)) {
      throw configError(name, raw, 'a comma-separated list of networks such as 10.1.0.0/16 or 192.168.1.20/32');
    }
    return net;
  });
}

function timeWindow(env: Env): TimeWindow {
  const raw = env.STRATA_TIME_WINDOW;
  if (raw === undefined || raw === '') return DEFAULT_TIME_WINDOW;
  const w = parseTimeWindow(raw);
  if (!w) throw configError('STRATA_TIME_WINDOW', raw, 'two ISO 8601 dates, earlier/later (e.g. 1970-01-02/2200-01-01)');
  return w;
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = path.resolve(env.STRATA_DATA_DIR || './.strata');
  const logLevel = (env.STRATA_LOG_LEVEL || 'info') as Config['logLevel'];
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) {
    throw configError('STRATA_LOG_LEVEL', logLevel, 'one of debug, info, warn, error');
  }
  const adminKey = env.STRATA_ADMIN_KEY || undefined;
  if (adminKey !== undefined && adminKey.length < 16) {
    throw configError('STRATA_ADMIN_KEY', '…', 'at least 16 characters long');
  }
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    port: int(env, 'PORT', 8080, 0, 65535),
    host: env.HOST || '0.0.0.0',
    dataDir,
    spoolDir: path.resolve(env.STRATA_SPOOL_DIR || path.join(dataDir, 'spool')),
    archiveDir: path.resolve(env.STRATA_ARCHIVE_DIR || path.join(dataDir, 'archive')),
    adminKey,
    embeddedPgPort: env.STRATA_PG_PORT ? int(env, 'STRATA_PG_PORT', 0, 1, 65535) : undefined,
    pgAllow: networks(env, 'STRATA_PG_ALLOW'),
    logLevel,
    jobs: env.STRATA_JOBS !== 'off',
    jobSchedules: jobSchedules(env),
    chunksAhead: int(env, 'STRATA_CHUNKS_AHEAD', 3, 0, 1000),
    rollupLagUs: interval(env, 'STRATA_ROLLUP_LAG', 60_000_000n),
    retentionPausePercent: int(env, 'STRATA_RETENTION_PAUSE', 100, 0, 1000),
    jobNice: int(env, 'STRATA_JOB_NICE', 10, 0, 19),
    jobBusyPausePercent: int(env, 'STRATA_JOB_BUSY_PAUSE', 400, 0, 10_000),
    compressionBusyPausePercent: int(env, 'STRATA_COMPRESSION_BUSY_PAUSE', 1900, 0, 10_000),
    bodyIdleTimeoutMs: durationSetting(env, 'STRATA_BODY_IDLE_TIMEOUT', 30_000),
    headersTimeoutMs: durationSetting(env, 'STRATA_HEADERS_TIMEOUT', 60_000),
    maxConcurrentUploads: int(env, 'STRATA_MAX_CONCURRENT_UPLOADS', 16, 1, 1000),
    backup: env.STRATA_BACKUP_DIR ? {
      dir: path.resolve(env.STRATA_BACKUP_DIR),
      archiveTimeoutMs: durationSetting(env, 'STRATA_BACKUP_ARCHIVE_TIMEOUT', 60_000),
      keep: int(env, 'STRATA_BACKUP_KEEP', 7, 1, 10_000),
      pausePercent: int(env, 'STRATA_BACKUP_PAUSE', 100, 0, 1000),
      maxBytesPerSecond: bytes(env, 'STRATA_BACKUP_MAX_RATE', 64 * MiB),
      fastCheckpoint: checkpointMode(env),
    } : null,
    readDatabaseUrl: env.STRATA_READ_DATABASE_URL || undefined,
    readAfterIngestWaitMs: durationSetting(env, 'STRATA_READ_AFTER_INGEST_WAIT', 5_000),
    limits: {
      maxBodyBytes: bytes(env, 'STRATA_MAX_BODY_BYTES', defaultLimits.maxBodyBytes),
      maxInflatedBytes: bytes(env, 'STRATA_MAX_INFLATED_BYTES', defaultLimits.maxInflatedBytes),
      maxBatchBytes: bytes(env, 'STRATA_MAX_BATCH_BYTES', defaultLimits.maxBatchBytes),
      maxNewChunks: int(env, 'STRATA_MAX_NEW_CHUNKS', defaultLimits.maxNewChunks, 1, 1_000_000),
      maxHdf5Bytes: bytes(env, 'STRATA_MAX_HDF5_BYTES', defaultLimits.maxHdf5Bytes),
      copyFlushBytes: bytes(env, 'STRATA_COPY_FLUSH_BYTES', defaultLimits.copyFlushBytes),
      timeWindow: timeWindow(env),
    },
  };
}
