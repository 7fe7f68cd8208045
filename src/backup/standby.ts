// `strata standby`: a streaming-replication standby of the embedded PostgreSQL, made with the
// embedded binaries on this machine or another one. The files come over a replication connection
// (BASE_BACKUP, stream-base-backup.ts), so only a connection to the primary is needed. A physical
// replication slot on the primary keeps the WAL the standby has not received yet; the standby
// streams from it with primary_conninfo (in its postgresql.auto.conf, mode 600, not on a command
// line) and answers read-only queries (hot_standby).
import { execFile } from 'node:child_process';
import { chown, mkdir, rm, writeFile, appendFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { type EmbeddedServer, startEmbedded } from '../db/embedded.ts';
import { type EmbeddedLayout, embeddedLayout } from '../db/embedded-layout.ts';
import { closeDb, createDb } from '../db/pool.ts';
import { RestoreRefused } from './restore.ts';
import { streamBaseBackup } from './stream-base-backup.ts';

export interface StandbyOptions {
  /** A superuser connection string of the primary (its embedded server's, from its data directory). */
  primary: string;
  /** The standby's Strata-style data directory (its cluster goes to <dataDir>/pg). */
  dataDir: string;
  port?: number;
  /** Networks (CIDR) that may reach the standby from other machines (STRATA_PG_ALLOW). */
  allow?: readonly string[];
  log?: (m: string) => void;
}

/** The major version of the embedded binaries (`postgres --version`). */
async function embeddedMajor(layout: EmbeddedLayout): Promise<number> {
  const { stdout } = await promisify(execFile)(layout.bin.postgres, ['--version']);
  const m = /(\d+)(?:\.\d+)?/.exec(stdout);
  if (!m) throw new Error(`cannot read the embedded PostgreSQL's version from ${JSON.stringify(stdout.trim())}`);
  return Number(m[1]);
}

function quoteConf(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** Makes the standby (when dataDir has none yet) and starts it; returns the running server. */
export async function createStandby(opts: StandbyOptions): Promise<EmbeddedServer> {
  const log = opts.log ?? (() => undefined);
  await mkdir(opts.dataDir, { recursive: true });
  const layout = await embeddedLayout(opts.dataDir);
  if (existsSync(path.join(layout.pgDir, 'PG_VERSION'))) {
    if (!existsSync(path.join(layout.pgDir, 'standby.signal'))) {
      throw new RestoreRefused(`${opts.dataDir} holds a database that is not a standby; choose a new directory`, 'data_dir_in_use');
    }
    log('the standby exists; starting it');
    return startEmbedded({ dataDir: opts.dataDir, port: opts.port, allow: opts.allow ?? [] });
  }
  const url = new URL(opts.primary);
  const slot = `strata_standby_${createHash('sha256').update(path.resolve(opts.dataDir)).digest('hex').slice(0, 12)}`;
  const db = createDb(opts.primary, { max: 1, name: 'strata-standby' });
  try {
    const { rows } = await db.pool.query<{ recovery: boolean; version: string }>("SELECT pg_is_in_recovery() AS recovery, current_setting('server_version_num') AS version");
    if (rows[0].recovery) throw new RestoreRefused('the primary is itself in recovery; make the standby from the primary', 'not_a_primary');
    const major = Math.floor(Number(rows[0].version) / 10000);
    const own = await embeddedMajor(layout);
    if (major !== own) throw new RestoreRefused(`the primary runs PostgreSQL ${major} and the embedded binaries are PostgreSQL ${own}: a standby needs the same major version`, 'version_mismatch');
    await db.pool.query('SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)', [slot]);
    // The files come over a replication connection (BASE_BACKUP), so the primary may be on another
    // machine; the slot made above keeps the WAL from the backup's start until the standby streams it.
    const got = await streamBaseBackup(opts.primary, layout.pgDir, 'strata standby');
    log(`base backup received: ${got.files} files, ${(got.bytes / 1e6).toFixed(1)} MB, WAL ${got.startLsn}–${got.endLsn}`);
  } catch (err) {
    await rm(layout.pgDir, { recursive: true, force: true });
    throw err;
  } finally {
    await closeDb(db);
  }
  const conninfo = `host=${url.hostname} port=${url.port || 5432} user=${decodeURIComponent(url.username)} password=${decodeURIComponent(url.password)} application_name=strata_standby`;
  await appendFile(path.join(layout.pgDir, 'postgresql.auto.conf'),
    `# Added by strata standby\nprimary_conninfo = ${quoteConf(conninfo)}\nprimary_slot_name = ${quoteConf(slot)}\nhot_standby = on\narchive_mode = off\n`);
  await writeFile(path.join(layout.pgDir, 'standby.signal'), '');
  await writeFile(path.join(opts.dataDir, 'pg-password'), decodeURIComponent(url.password), { mode: 0o600 });
  if (layout.ids.uid !== undefined) {
    const { readdir } = await import('node:fs/promises');
    await chown(layout.pgDir, layout.ids.uid, layout.ids.gid as number);
    for (const e of await readdir(layout.pgDir, { withFileTypes: true, recursive: true })) {
      await chown(path.join(e.parentPath, e.name), layout.ids.uid, layout.ids.gid as number);
    }
  }
  log(`files copied; starting the standby (replication slot ${slot} on the primary)`);
  return startEmbedded({ dataDir: opts.dataDir, port: opts.port, allow: opts.allow ?? [] });
}
