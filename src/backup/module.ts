// Backups wired into the server: the `backup` job (a base backup of the embedded PostgreSQL and
// of the originals, then pruning; with DATABASE_URL the originals only), the `restore-drill` job
// (a full restore into a scratch directory, checked), the copy of new originals every
// archive_timeout between backups, and the `backups` check of /readyz: unhealthy when the last
// drill failed or no base backup is newer than twice the backup job's interval.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { EmbeddedServer } from '../db/embedded.ts';
import type { Db } from '../db/pool.ts';
import type { Config } from '../config/index.ts';
import type { Logger } from '../logging/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { registerBackground } from '../server.ts';
import { registerJob, registeredJob } from '../jobs/registry.ts';
import { scheduleOf } from '../jobs/schedule.ts';
import { takeBaseBackup } from './base-backup.ts';
import { drillRestore } from './drill.ts';
import { type Manifest, baseDir, listBackups } from './manifest.ts';
import { syncOriginals } from './originals-copy.ts';
import { pruneBackups } from './prune.ts';

export const BACKUP_JOB = 'backup';
export const DRILL_JOB = 'restore-drill';
const DAY_MS = 86_400_000;

/** The embedded server of this process, when there is one (set when the server starts). */
let embedded: EmbeddedServer | null = null;

function requireBackupDir(config: Config): string {
  if (!config.backup) throw new Error('STRATA_BACKUP_DIR is not set: there is nowhere to back up to');
  return config.backup.dir;
}

/** A base backup of the embedded PostgreSQL and the originals, or the originals alone (DATABASE_URL). */
export async function backupNow(db: Db, config: Config, server: EmbeddedServer | null, opts: { originalsOnly?: boolean; signal?: AbortSignal; uploadsRunning?: () => boolean } = {}): Promise<Record<string, unknown>> {
  const dir = requireBackupDir(config);
  if (opts.originalsOnly || !server) {
    const s = await syncOriginals(db.pool, config.archiveDir, dir, true);
    if (s.missing.length > 0) throw new Error(`the archive of originals lacks ${s.missing.length} original(s) (first: ingest ${s.missing[0].ingest}); they cannot be backed up`);
    return {
      database: server ? 'not backed up (--originals-only)' : 'not backed up: DATABASE_URL names a PostgreSQL run by an operator, whose own tools back it up (README, "Backups and recovery")',
      originals_copied: s.copied, originals_bytes: s.bytes, originals: s.all?.length ?? 0,
    };
  }
  const { manifest: m, copyPausedMs } = await takeBaseBackup({
    pgDir: server.dataDir, url: server.url, backupDir: dir, archiveDir: config.archiveDir,
    passwordFile: path.join(config.dataDir, 'pg-password'), signal: opts.signal, pausePercent: config.backup?.pausePercent, busyPausePercent: config.jobBusyPausePercent, uploadsRunning: opts.uploadsRunning,
    maxBytesPerSecond: config.backup?.maxBytesPerSecond, fastCheckpoint: config.backup?.fastCheckpoint,
  });
  const pruned = await pruneBackups(dir, config.backup?.keep ?? 7);
  return {
    backup: m.id, bytes: m.bytes, files: m.files.length, wal: `${m.start_wal}–${m.stop_wal}`, audit_head: m.audit_head,
    originals: m.originals.length, pruned_backups: pruned.backups, pruned_wal_segments: pruned.wal_segments, copy_paused_ms: copyPausedMs,
  };
}

registerJob({
  name: BACKUP_JOB,
  description: 'Takes a base backup of the embedded PostgreSQL and copies the originals into STRATA_BACKUP_DIR, then prunes old backups (with DATABASE_URL: the originals only)',
  defaultIntervalMs: DAY_MS,
  async run(ctx) {
    if (!ctx.config.backup) return { details: { skipped: 'STRATA_BACKUP_DIR is not set' } };
    const details = await backupNow(ctx.db, ctx.config, embedded, { signal: ctx.signal });
    return { details };
  },
});

registerJob({
  name: DRILL_JOB,
  description: 'Restores the newest backup with all archived WAL into a scratch directory on a spare port, checks it (audit chain, ingests, originals) and removes it',
  defaultIntervalMs: 7 * DAY_MS,
  async run(ctx) {
    if (!ctx.config.backup) return { details: { skipped: 'STRATA_BACKUP_DIR is not set' } };
    if (!embedded && !ctx.config.databaseUrl) return { details: { skipped: 'no embedded PostgreSQL' } };
    if (ctx.config.databaseUrl) return { details: { skipped: 'DATABASE_URL: the database is restored with the operator\'s tools; check such a copy with strata verify-restore' } };
    const report = await drillRestore(ctx.config.backup.dir, { log: (m) => ctx.log.info({ job: DRILL_JOB }, m) });
    const details = { backup: report.backup, seconds: report.seconds, wal_segments: report.wal_segments, checks: report.checks };
    if (!report.ok) throw new Error(`the restored backup ${report.backup} failed its checks: ${firstProblem(report.checks)}`);
    return { rows: report.checks.ingests.rows, details };
  },
});

function firstProblem(c: import('./verify-restore.ts').RestoreChecks): string {
  if (!c.audit.ok) return `audit chain: ${c.audit.problem}`;
  if (c.ingests.problems[0]) return `ingest ${c.ingests.problems[0].ingest}: ${c.ingests.problems[0].problem}`;
  if (c.originals.missing[0]) return `original of ingest ${c.originals.missing[0].ingest} missing`;
  if (c.originals.mismatched[0]) return `original of ingest ${c.originals.mismatched[0].ingest} damaged`;
  return 'data after the target';
}

interface Check { name: string; ok: boolean; detail?: unknown }

/** The backups, read again when base/ changed (a manifest lists every file: readiness polls need not parse them each time). */
let backupsCache: { dir: string; mtimeMs: number; backups: Manifest[] } | null = null;
async function cachedBackups(dir: string): Promise<Manifest[]> {
  const mtimeMs = (await stat(baseDir(dir)).catch(() => null))?.mtimeMs ?? 0;
  if (backupsCache?.dir !== dir || backupsCache.mtimeMs !== mtimeMs) backupsCache = { dir, mtimeMs, backups: await listBackups(dir) };
  return backupsCache.backups;
}

/** The backups' readiness: the last drill did not fail, and a backup is newer than twice the job's interval. */
async function backupHealth(db: Db, config: Config, metrics: Metrics, startedAt: number): Promise<Check[]> {
  const dir = requireBackupDir(config);
  const def = registeredJob(BACKUP_JOB);
  const intervalMs = def ? scheduleOf(def, config).intervalMs : DAY_MS;
  const backups = await cachedBackups(dir);
  const newest = backups.at(-1) ?? null;
  const newestAt = newest ? Date.parse(newest.finished_at) : null;
  metrics.backupLastSuccess.set(newestAt === null ? 0 : newestAt / 1000);
  const { rows } = await db.pool.query<{ outcome: string; error: string | null; finished_at: Date }>(
    `SELECT outcome, error, finished_at FROM strata.job_runs WHERE job = $1 AND outcome <> 'running' ORDER BY id DESC LIMIT 1`, [DRILL_JOB]);
  const drill = rows[0] ?? null;
  const problems: string[] = [];
  if (drill && drill.outcome !== 'succeeded') problems.push(`the last restore drill (${drill.finished_at.toISOString()}) ${drill.outcome}: ${drill.error ?? ''}`);
  const limit = 2 * intervalMs;
  const since = newestAt ?? startedAt;
  if (Date.now() - since > limit) {
    problems.push(newest ? `the newest base backup (${newest.id}) is older than twice the backup interval (${intervalMs} ms)` : `no base backup in ${dir}, and none was taken within twice the backup interval (${intervalMs} ms)`);
  }
  if (!config.databaseUrl && embedded) {
    const { rows: st } = await db.pool.query<{ failed: string; last_failed_wal: string | null; last_archived_wal: string | null; last_archived_time: Date | null }>(
      'SELECT failed_count::text AS failed, last_failed_wal, last_archived_wal, last_archived_time FROM pg_stat_archiver');
    const a = st[0];
    if (a && a.last_failed_wal && (a.last_archived_wal === null || a.last_failed_wal > a.last_archived_wal)) {
      problems.push(`WAL archiving fails: segment ${a.last_failed_wal} could not be archived (see the PostgreSQL log, ${path.join(embedded.dataDir, 'server.log')})`);
    }
  }
  return [{
    name: 'backups', ok: problems.length === 0,
    detail: {
      newest_backup: newest?.id ?? null, newest_backup_finished_at: newest?.finished_at ?? null, backups: backups.length,
      last_drill: drill ? { outcome: drill.outcome, finished_at: drill.finished_at.toISOString(), error: drill.error } : null,
      ...(problems.length ? { problems } : {}),
    },
  }];
}

registerBackground((deps) => {
  let timer: NodeJS.Timeout | null = null;
  let pass: Promise<void> = Promise.resolve();
  const log: Logger = deps.log;
  return {
    start() {
      embedded = (deps.services.embedded as EmbeddedServer | undefined) ?? null;
      const backup = deps.config.backup;
      if (!backup) return;
      const startedAt = Date.now();
      const checks = (deps.services.healthChecks ??= []) as (() => Promise<Check[]>)[];
      checks.push(() => backupHealth(deps.db, deps.config, deps.metrics, startedAt));
      // Originals arriving between base backups are copied as often as WAL is archived.
      timer = setInterval(() => {
        pass = pass.then(() => syncOriginals(deps.db.pool, deps.config.archiveDir, backup.dir, false)).then((s) => {
          if (s.missing.length > 0) log.error({ missing: s.missing.slice(0, 5) }, 'backup: originals missing from the archive could not be copied');
        }, (err: Error) => log.warn({ err: err.message }, 'backup: cannot copy new originals into STRATA_BACKUP_DIR'));
      }, backup.archiveTimeoutMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      await pass;
    },
  };
});
