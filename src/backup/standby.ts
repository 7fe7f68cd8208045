// `strata standby`: a streaming-replication standby of the embedded PostgreSQL, made on the same
// machine with the embedded binaries. Without pg_basebackup there is no base backup over the
// replication protocol, so the primary's files are copied directly between pg_backup_start and
// pg_backup_stop (the primary's data directory must be readable here: same machine, same or root
// user). A physical replication slot on the primary keeps the WAL the standby has not received
// yet; the standby streams from it with primary_conninfo (in its postgresql.auto.conf, mode 600,
// not on a command line) and answers read-only queries (hot_standby).
import { chown, mkdir, rm, writeFile, appendFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { type EmbeddedServer, startEmbedded } from '../db/embedded.ts';
import { embeddedLayout } from '../db/embedded-layout.ts';
import { closeDb, createDb } from '../db/pool.ts';
import { clusterFiles } from './base-backup.ts';
import { copyHashed } from './files.ts';
import { RestoreRefused } from './restore.ts';

export interface StandbyOptions {
  /** A superuser connection string of the primary (its embedded server's, from its data directory). */
  primary: string;
  /** The standby's Strata-style data directory (its cluster goes to <dataDir>/pg). */
  dataDir: string;
  port?: number;
  log?: (m: string) => void;
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
    return startEmbedded({ dataDir: opts.dataDir, port: opts.port });
  }
  const url = new URL(opts.primary);
  const slot = `strata_standby_${createHash('sha256').update(path.resolve(opts.dataDir)).digest('hex').slice(0, 12)}`;
  const db = createDb(opts.primary, { max: 1, name: 'strata-standby' });
  const client = await db.pool.connect();
  try {
    const { rows } = await client.query<{ dir: string; recovery: boolean }>("SELECT current_setting('data_directory') AS dir, pg_is_in_recovery() AS recovery");
    const primaryDir = rows[0].dir;
    if (rows[0].recovery) throw new RestoreRefused('the primary is itself in recovery; make the standby from the primary', 'not_a_primary');
    if (!existsSync(path.join(primaryDir, 'PG_VERSION'))) {
      throw new RestoreRefused(`the primary's data directory ${primaryDir} is not readable here: \`strata standby\` copies it directly, so it runs on the primary's machine (elsewhere, make the standby with pg_basebackup)`, 'primary_not_local');
    }
    await client.query('SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)', [slot]);
    await client.query("SELECT pg_backup_start('strata standby', true)");
    let stopped = false;
    try {
      const { files, dirs } = await clusterFiles(primaryDir);
      for (const d of dirs) await mkdir(path.join(layout.pgDir, d), { recursive: true, mode: 0o700 });
      await mkdir(path.join(layout.pgDir, 'pg_wal', 'archive_status'), { recursive: true, mode: 0o700 });
      for (const f of files) {
        await copyHashed(path.join(primaryDir, f), path.join(layout.pgDir, f)).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
      }
      const stop = (await client.query<{ labelfile: string }>('SELECT labelfile FROM pg_backup_stop(false)')).rows[0];
      stopped = true;
      await writeFile(path.join(layout.pgDir, 'backup_label'), stop.labelfile, { mode: 0o600 });
    } finally {
      if (!stopped) await client.query('SELECT pg_backup_stop(false)').catch(() => undefined);
    }
  } catch (err) {
    await rm(layout.pgDir, { recursive: true, force: true });
    throw err;
  } finally {
    client.release();
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
  return startEmbedded({ dataDir: opts.dataDir, port: opts.port });
}
