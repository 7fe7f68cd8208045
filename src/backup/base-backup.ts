// A base backup of the embedded PostgreSQL with the low-level API: pg_backup_start, a copy of the
// cluster's files made by Strata while the server keeps running (ingest is never blocked; pages
// torn by concurrent writes are repaired by the WAL replayed at restore), pg_backup_stop, whose
// backup_label goes into the copy. The copy and its SHA-256 run in a child process at nice 19
// (copy-child.ts), at a bounded rate, so that the server's event loop keeps encoding uploads; the
// checkpoint pg_backup_start begins is an immediate one unless a spread one is asked for. The WAL written
// meanwhile is archived continuously (wal-archive.ts); pg_backup_stop waits until the last segment the backup needs is archived.
import { fork } from 'node:child_process';
import { copyFile, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { closeDb, createDb } from '../db/pool.ts';
import { auditHead } from '../audit/log.ts';
import { strataVersion } from '../versions.ts';
import type { CopyAnswer, CopyJob, CopyNotice } from './copy-child.ts';
import { foreground } from '../jobs/foreground.ts';
import { syncDir } from './files.ts';
import { type Manifest, type ManifestFile, MANIFEST_FORMAT, baseDir } from './manifest.ts';
import { type CopyFiles, syncOriginals } from './originals-copy.ts';
import { walDir } from './wal-archive.ts';

/** Directories whose contents a base backup leaves out (PostgreSQL's documentation, "Making a Base Backup Using the Low Level API"). */
const EMPTY_DIRS = new Set(['pg_wal', 'pg_replslot', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_stat_tmp', 'pg_subtrans']);
/** Files at the cluster's top that are never copied. */
const SKIP_FILES = new Set(['postmaster.pid', 'postmaster.opts', 'server.log', 'recovery.signal', 'standby.signal', 'backup_label', 'tablespace_map']);

export interface BaseBackupOptions {
  /** The cluster directory of the running embedded server. */
  pgDir: string;
  /** A superuser connection string for it. */
  url: string;
  backupDir: string;
  archiveDir: string;
  /** The embedded server's password file, kept with the backup so that a restored cluster can be opened. */
  passwordFile: string;
  /** Pauses for this percentage of the copying time (see STRATA_BACKUP_PAUSE). */
  pausePercent?: number;
  /** Pauses for this percentage of the copying time while uploads run (see STRATA_JOB_BUSY_PAUSE). */
  busyPausePercent?: number;
  /** Whether uploads are running: this process's own by default (foreground.ts). */
  uploadsRunning?: () => boolean;
  /** At most this many bytes per second are copied (see STRATA_BACKUP_MAX_RATE; 0: no bound). */
  maxBytesPerSecond?: number;
  /** An immediate checkpoint at pg_backup_start (a burst of writes) instead of a spread one (see STRATA_BACKUP_CHECKPOINT). */
  fastCheckpoint?: boolean;
  /** Called now and then with bytes copied so far. */
  progress?: (bytes: number) => void;
  signal?: AbortSignal;
}

function backupId(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.(\d{3})Z$/, '$1Z');
}

/** Every file of the cluster a base backup copies, relative to pgDir. */
export async function clusterFiles(pgDir: string): Promise<{ files: string[]; dirs: string[] }> {
  const files: string[] = [];
  const dirs: string[] = [];
  async function walk(rel: string): Promise<void> {
    const entries = await readdir(path.join(pgDir, rel), { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return []; // dropped meanwhile
      throw err;
    });
    for (const e of entries) {
      const r = rel ? path.join(rel, e.name) : e.name;
      if (e.isDirectory()) {
        dirs.push(r);
        if (!(rel === '' && EMPTY_DIRS.has(e.name)) && !e.name.startsWith('pgsql_tmp')) await walk(r);
      } else if (e.isFile()) {
        if (rel === '' && (SKIP_FILES.has(e.name) || e.name.startsWith('.s.PGSQL'))) continue;
        if (e.name.startsWith('pgsql_tmp')) continue;
        files.push(r);
      }
    }
  }
  await walk('');
  return { files, dirs };
}

/** A base backup taken: its manifest, and how long its copy paused (STRATA_BACKUP_PAUSE, STRATA_JOB_BUSY_PAUSE). */
export interface BaseBackup { manifest: Manifest; copyPausedMs: number }

export async function takeBaseBackup(opts: BaseBackupOptions): Promise<BaseBackup> {
  const started = new Date();
  const id = backupId(started);
  const partial = path.join(baseDir(opts.backupDir), `.${id}.partial`);
  const final = path.join(baseDir(opts.backupDir), id);
  await rm(partial, { recursive: true, force: true });
  await mkdir(path.join(partial, 'pg'), { recursive: true, mode: 0o700 });
  // One session from pg_backup_start to pg_backup_stop (a non-exclusive backup ends with its session).
  const db = createDb(opts.url, { max: 1, name: 'strata-backup' });
  const client = await db.pool.connect().catch(async (err: unknown) => {
    await closeDb(db);
    throw err;
  });
  let stopped = false;
  try {
    const info = (await client.query<{ sysid: string; version: string; seg: string }>(
      `SELECT system_identifier::text AS sysid, current_setting('server_version') AS version,
              current_setting('wal_segment_size') AS seg FROM pg_control_system()`)).rows[0];
    const segBytes = parseSegmentSize(info.seg);
    const archiving = (await client.query<{ mode: string; command: string }>(
      "SELECT current_setting('archive_mode') AS mode, current_setting('archive_command') AS command")).rows[0];
    if (archiving.mode === 'off' || !archiving.command.includes(walDir(opts.backupDir))) {
      throw new Error(`cannot back up: this PostgreSQL does not archive its WAL into ${walDir(opts.backupDir)} (archive_mode ${archiving.mode}); start Strata with STRATA_BACKUP_DIR=${opts.backupDir} so that it does (a restart is needed)`);
    }
    const start = (await client.query<{ lsn: string; wal: string; tli: string }>(
      `SELECT lsn::text, pg_walfile_name(lsn) AS wal, substr(pg_walfile_name(lsn), 1, 8) AS tli FROM pg_backup_start($1, $2) AS lsn`, [`strata ${id}`, opts.fastCheckpoint ?? false])).rows[0];
    const { files, dirs } = await clusterFiles(opts.pgDir);
    for (const d of dirs) await mkdir(path.join(partial, 'pg', d), { recursive: true, mode: 0o700 });
    await mkdir(path.join(partial, 'pg', 'pg_wal', 'archive_status'), { recursive: true, mode: 0o700 });
    const pacing = { pausePercent: opts.pausePercent ?? 0, busyPausePercent: opts.busyPausePercent ?? 0, maxBytesPerSecond: opts.maxBytesPerSecond ?? 0 };
    const uploadsRunning = opts.uploadsRunning ?? (() => foreground.busy());
    const cluster = await copyInChild({ pgDir: opts.pgDir, dest: path.join(partial, 'pg'), files, ...pacing }, uploadsRunning, opts.progress, opts.signal);
    const { copied, bytes } = cluster;
    let pausedMs = cluster.pausedMs;
    const head = await auditHead(client);
    const ingests = (await client.query<{ n: string; rows: string }>(
      "SELECT count(*)::text AS n, coalesce(sum(rows), 0)::text AS rows FROM strata.ingests WHERE status = 'committed'")).rows[0];
    // The originals uploaded since the last pass are copied the same way: paced, off the event loop.
    const copyOriginals: CopyFiles = async (from, to, names) => {
      if (names.length === 0) return [];
      const c = await copyInChild({ pgDir: from, dest: to, files: names, ...pacing }, uploadsRunning, undefined, opts.signal);
      pausedMs += c.pausedMs;
      return c.copied;
    };
    const originals = await syncOriginals(client, opts.archiveDir, opts.backupDir, true, copyOriginals);
    const stop = (await client.query<{ lsn: string; labelfile: string; spcmapfile: string; wal: string }>(
      'SELECT lsn::text, labelfile, spcmapfile, pg_walfile_name(lsn) AS wal FROM pg_backup_stop(true)')).rows[0];
    stopped = true;
    for (const [name, text] of [['backup_label', stop.labelfile], ['tablespace_map', stop.spcmapfile]] as const) {
      if (!text) continue;
      await writeFile(path.join(partial, 'pg', name), text, { mode: 0o600 });
      copied.push({ path: name, bytes: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') });
    }
    await copyFile(opts.passwordFile, path.join(partial, 'pg-password'));
    const manifest: Manifest = {
      format: MANIFEST_FORMAT, id, started_at: started.toISOString(), finished_at: new Date().toISOString(),
      start_lsn: start.lsn, stop_lsn: stop.lsn, start_wal: start.wal, stop_wal: stop.wal, timeline: parseInt(start.tli, 16),
      wal_segment_bytes: segBytes, system_identifier: info.sysid, postgresql_version: info.version, strata_version: strataVersion(),
      audit_head: head, ingests: { committed: Number(ingests.n), rows: Number(ingests.rows) },
      files: copied, originals: originals.all ?? [], bytes,
    };
    if (originals.missing.length > 0) {
      throw new Error(`the archive of originals lacks ${originals.missing.length} original(s) the database refers to (first: ingest ${originals.missing[0].ingest}, SHA-256 ${originals.missing[0].sha256}); the backup is incomplete`);
    }
    await writeFile(path.join(partial, 'manifest.json'), `${JSON.stringify(manifest, null, 1)}\n`, { mode: 0o600 });
    await syncDir(partial);
    await rename(partial, final);
    await syncDir(baseDir(opts.backupDir));
    return { manifest, copyPausedMs: pausedMs };
  } catch (err) {
    if (!stopped) await client.query('SELECT pg_backup_stop(false)').catch(() => undefined);
    await rm(partial, { recursive: true, force: true });
    throw err;
  } finally {
    client.release();
    await closeDb(db);
  }
}

const COPY_CHILD = new URL('./copy-child.mjs', import.meta.url);
/** How often the copy child is told whether uploads are running. */
const BUSY_POLL_MS = 50;

/** Copies the files in a child process at nice 19 (copy-child.mjs), answering them in the order given. */
function copyInChild(job: CopyJob, uploadsRunning: () => boolean, progress?: (bytes: number) => void, signal?: AbortSignal): Promise<{ copied: ManifestFile[]; bytes: number; pausedMs: number }> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(new Error('the backup was stopped before its copy was complete')); return; }
    const child = fork(COPY_CHILD, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    try {
      if (child.pid !== undefined) os.setPriority(child.pid, 19); // the child does so too, once started
    } catch {
      // refused: the child's own attempt, or the server's priority
    }
    const copied: ManifestFile[] = [];
    let bytes = 0;
    let failure: Error | null = null;
    let done = false;
    let pausedMs = 0;
    const onAbort = (): void => {
      failure ??= new Error('the backup was stopped before its copy was complete');
      child.kill('SIGTERM');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('message', (m: CopyAnswer) => {
      if (m.type === 'file') {
        copied.push({ path: m.path, bytes: m.bytes, sha256: m.sha256 });
        bytes += m.bytes;
        progress?.(bytes);
      } else if (m.type === 'error') {
        failure ??= new Error(m.message);
      } else if (m.type === 'done') {
        done = true;
        pausedMs = m.pausedMs;
      }
    });
    child.once('error', (err) => { failure ??= err; });
    child.once('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      if (failure) reject(failure);
      else if (!done) reject(new Error(`the process copying the backup's files ended before its copy was complete (${sig ?? `exit code ${code}`})`));
      else resolve({ copied, bytes, pausedMs });
    });
    child.send(job);
    // The child cannot read this process's memory: it is told when uploads start and stop.
    let busy = false;
    const watch = setInterval(() => {
      const now = uploadsRunning();
      if (now === busy || !child.connected) return;
      busy = now;
      child.send({ type: 'busy', busy } satisfies CopyNotice);
    }, BUSY_POLL_MS);
    child.once('close', () => clearInterval(watch));
  });
}

/** wal_segment_size as SHOW gives it ("16MB"). */
function parseSegmentSize(v: string): number {
  const m = /^(\d+)\s*(kB|MB|GB)?$/.exec(v.trim());
  if (!m) throw new Error(`cannot read wal_segment_size ${JSON.stringify(v)}`);
  return Number(m[1]) * ({ kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[m[2] as 'kB'] ?? 1);
}
