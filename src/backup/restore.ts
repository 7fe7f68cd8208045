// Restores a backup into a new data directory: the base backup taken before the target is
// copied (each file checked against the manifest), the archived WAL it needs is checked (each
// segment against the SHA-256 recorded when it was archived), PostgreSQL replays the WAL up to
// the target (recovery_target_time) or to its end, and promotes. Then the originals are copied
// back and the restored database is checked (verify-restore.ts). The directory is left ready for
// Strata to start on.
import { existsSync } from 'node:fs';
import { chown, copyFile, lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { type EmbeddedServer, startEmbedded } from '../db/embedded.ts';
import { type Queryable, createDb } from '../db/pool.ts';
import { type OsIds, embeddedLayout } from '../db/embedded-layout.ts';
import { archiveRelativePath } from '../provenance/archive.ts';
import { copyHashed } from './files.ts';
import { type Manifest, baseDir, listBackups, originalsDir } from './manifest.ts';
import { type RestoreChecks, checkRestored } from './verify-restore.ts';
import { checkArchivedWal, restoreCommand } from './wal-archive.ts';

/** A restore that cannot go on; the message says why and what to do. */
export class RestoreRefused extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'RestoreRefused';
  }
}

export interface RestoreOptions {
  /** The backup directory (STRATA_BACKUP_DIR of the server backed up). */
  from: string;
  /** Replay up to this instant; null replays every archived segment. */
  toTime: Date | null;
  /** The new Strata data directory (its embedded cluster goes to <dataDir>/pg, originals to <dataDir>/archive). */
  dataDir: string;
  port?: number;
  /** Leaves the restored server running (a drill stops it itself). */
  keepRunning?: boolean;
  log?: (msg: string) => void;
}

export interface RestoreReport {
  ok: boolean;
  backup: string;
  data_dir: string;
  wal_segments: number;
  /** Where replay stopped: the last transaction replayed, as PostgreSQL reports it. */
  replayed_until: string | null;
  seconds: { copy: number; replay: number; checks: number; total: number };
  checks: RestoreChecks;
  /** The restored server, when keepRunning. */
  server?: EmbeddedServer;
}

/** The backup a restore to `toTime` starts from: the newest that finished before it. */
export function chooseBackup(backups: Manifest[], toTime: Date | null): Manifest {
  if (backups.length === 0) throw new RestoreRefused('no complete base backup in this directory (no base/<id>/manifest.json); run `strata backup` first', 'no_backup');
  if (toTime === null) return backups[backups.length - 1];
  const before = backups.filter((b) => Date.parse(b.finished_at) < toTime.getTime());
  if (before.length === 0) {
    throw new RestoreRefused(`no base backup finished before ${toTime.toISOString()} (the oldest kept finished at ${backups[0].finished_at}); choose a later time`, 'target_before_backups');
  }
  return before[before.length - 1];
}

/** Refuses a data directory that holds a cluster already, running or not. */
async function assertFreshDataDir(dataDir: string): Promise<void> {
  const pgLink = path.join(dataDir, 'pg');
  const st = await lstat(pgLink).catch(() => null);
  if (!st) return;
  const real = st.isSymbolicLink() ? path.resolve(dataDir, await import('node:fs/promises').then((fs) => fs.readlink(pgLink))) : pgLink;
  if (existsSync(path.join(real, 'postmaster.pid'))) {
    throw new RestoreRefused(`${dataDir} is in use: a PostgreSQL runs (or ran and was killed) on ${real}; restore into a new directory`, 'data_dir_in_use');
  }
  const entries = await readdir(real).catch(() => [] as string[]);
  if (entries.length > 0) {
    throw new RestoreRefused(`${dataDir} already holds a database (${real} is not empty); restore into a new directory, never over one`, 'data_dir_in_use');
  }
}

/** Copies the base backup's files into the new cluster, each checked against the manifest. */
async function copyBase(from: string, m: Manifest, pgDir: string, ids: OsIds): Promise<void> {
  const src = path.join(baseDir(from), m.id, 'pg');
  const listed = new Map(m.files.map((f) => [f.path, f]));
  async function walk(rel: string): Promise<void> {
    for (const e of await readdir(path.join(src, rel), { withFileTypes: true })) {
      const r = rel ? path.join(rel, e.name) : e.name;
      if (e.isDirectory()) {
        await mkdir(path.join(pgDir, r), { recursive: true, mode: 0o700 });
        await walk(r);
      } else if (e.isFile()) {
        const want = listed.get(r);
        if (!want) throw new RestoreRefused(`backup ${m.id}: ${r} is not in its manifest; the backup was altered`, 'backup_damaged');
        const got = await copyHashed(path.join(src, r), path.join(pgDir, r));
        if (got.sha256 !== want.sha256) {
          throw new RestoreRefused(`backup ${m.id}: ${r} is damaged (SHA-256 ${got.sha256}, ${want.sha256} in the manifest)`, 'backup_damaged');
        }
        listed.delete(r);
      }
    }
  }
  await walk('');
  if (listed.size > 0) {
    throw new RestoreRefused(`backup ${m.id}: ${listed.size} file(s) of its manifest are missing (first: ${[...listed.keys()][0]})`, 'backup_damaged');
  }
  if (ids.uid !== undefined) await chownTree(pgDir, ids);
}

async function chownTree(dir: string, ids: OsIds): Promise<void> {
  await chown(dir, ids.uid as number, ids.gid as number);
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    await chown(path.join(e.parentPath, e.name), ids.uid as number, ids.gid as number);
  }
}

/** Copies the originals the restored database refers to from the backup into <dataDir>/archive. */
async function restoreOriginals(db: Queryable, from: string, archiveDir: string): Promise<void> {
  const { rows } = await db.query<{ sha256: string }>(
    "SELECT DISTINCT sha256 FROM strata.ingests WHERE archive_path IS NOT NULL AND sha256 IS NOT NULL AND status <> 'rejected'");
  for (const r of rows) {
    const rel = archiveRelativePath(r.sha256);
    // A missing or damaged copy is left for the checks to report, by ingest.
    await copyHashed(path.join(originalsDir(from), rel), path.join(archiveDir, rel)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}

function pgTime(d: Date): string {
  return d.toISOString().replace('T', ' ').replace('Z', '+00');
}

async function serverLogTail(pgDir: string): Promise<string> {
  const text = await readFile(path.join(pgDir, 'server.log'), 'utf8').catch(() => '');
  return text.split('\n').filter((l) => /FATAL|PANIC|ERROR|LOG: {2}(redo|recovery|last completed)/.test(l)).slice(-6).join('\n');
}

/** Waits until PostgreSQL has finished recovery and promoted; throws with its log when it stopped instead. */
async function awaitPromotion(url: string, pgDir: string, toTime: Date | null): Promise<string | null> {
  for (;;) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      const { rows } = await c.query<{ rec: boolean; until: Date | null }>('SELECT pg_is_in_recovery() AS rec, pg_last_xact_replay_timestamp() AS until');
      if (!rows[0].rec) return rows[0].until?.toISOString() ?? null;
    } catch (err) {
      if (!existsSync(path.join(pgDir, 'postmaster.pid'))) {
        const tail = await serverLogTail(pgDir);
        if (/recovery ended before configured recovery target was reached/.test(tail)) {
          throw new RestoreRefused(`the archived WAL ends before ${toTime?.toISOString()}: nothing was archived that late; choose an earlier time or --to-latest\n${tail}`, 'target_after_archive');
        }
        throw new Error(`PostgreSQL stopped during recovery: ${(err as Error).message}\n${tail}`, { cause: err });
      }
    } finally {
      await c.end().catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function restoreBackup(opts: RestoreOptions): Promise<RestoreReport> {
  const t0 = performance.now();
  const log = opts.log ?? (() => undefined);
  const manifest = chooseBackup(await listBackups(opts.from), opts.toTime);
  log(`restoring base backup ${manifest.id} (finished ${manifest.finished_at}, WAL ${manifest.start_wal}–${manifest.stop_wal})`);
  const wal = await checkArchivedWal(opts.from, manifest.start_wal, manifest.wal_segment_bytes, manifest.stop_wal);
  if (!wal.ok && wal.problem) {
    throw new RestoreRefused(`WAL segment ${wal.problem.segment} is ${wal.problem.reason}; refusing to restore past it (recovery would stop there silently)`, 'wal_damaged');
  }
  await assertFreshDataDir(opts.dataDir);
  await mkdir(opts.dataDir, { recursive: true });
  const layout = await embeddedLayout(opts.dataDir);
  try {
    await copyBase(opts.from, manifest, layout.pgDir, layout.ids);
    await copyFile(path.join(baseDir(opts.from), manifest.id, 'pg-password'), path.join(opts.dataDir, 'pg-password'));
    await writeFile(path.join(layout.pgDir, 'recovery.signal'), '');
    if (layout.ids.uid !== undefined) await chown(path.join(layout.pgDir, 'recovery.signal'), layout.ids.uid, layout.ids.gid as number);
  } catch (err) {
    // The directory was empty: leave it so, for the next attempt.
    await rm(layout.pgDir, { recursive: true, force: true });
    await rm(path.join(opts.dataDir, 'pg-password'), { force: true });
    throw err;
  }
  const tCopy = performance.now();
  log(`base backup copied (${(manifest.bytes / 1e6).toFixed(1)} MB); replaying ${wal.segments} archived WAL segment(s)`);
  const server = await startEmbedded({
    dataDir: opts.dataDir, port: opts.port,
    settings: async () => ({
      restore_command: restoreCommand(opts.from),
      recovery_target_action: 'promote',
      ...(opts.toTime ? { recovery_target_time: pgTime(opts.toTime) } : {}),
      // A restored server never writes into the archive it was restored from, until Strata starts it with archiving.
      archive_mode: 'off',
    }),
  }).catch((err: Error) => {
    if (/recovery ended before configured recovery target was reached/.test(err.message)) {
      throw new RestoreRefused(`the archived WAL ends before ${opts.toTime?.toISOString()}: nothing was archived that late; choose an earlier time or --to-latest`, 'target_after_archive');
    }
    throw err;
  });
  try {
    const replayedUntil = await awaitPromotion(server.url, server.dataDir, opts.toTime);
    const tReplay = performance.now();
    const c = createDb(server.url, 2).pool;
    let checks: RestoreChecks;
    try {
      const archiveDir = path.join(opts.dataDir, 'archive');
      await restoreOriginals(c, opts.from, archiveDir);
      const anchors = manifest.audit_head ? [manifest.audit_head] : [];
      checks = await checkRestored(c, { archiveDir, target: opts.toTime, anchors });
    } finally {
      await c.end();
    }
    const tChecks = performance.now();
    const s = (a: number, b: number): number => Math.round((b - a) / 10) / 100;
    return {
      ok: checks.ok, backup: manifest.id, data_dir: opts.dataDir, wal_segments: wal.segments, replayed_until: replayedUntil,
      seconds: { copy: s(t0, tCopy), replay: s(tCopy, tReplay), checks: s(tReplay, tChecks), total: s(t0, tChecks) },
      checks, ...(opts.keepRunning ? { server } : {}),
    };
  } finally {
    if (!opts.keepRunning) await server.stop();
  }
}

/** Removes a scratch restore (a drill's), cluster and all. */
export async function removeRestored(dataDir: string): Promise<void> {
  const link = path.join(dataDir, 'pg');
  const st = await lstat(link).catch(() => null);
  if (st?.isSymbolicLink()) {
    const target = path.resolve(dataDir, await import('node:fs/promises').then((fs) => fs.readlink(link)));
    await rm(path.dirname(target), { recursive: true, force: true });
  }
  await rm(dataDir, { recursive: true, force: true });
}
