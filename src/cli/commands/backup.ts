// `strata backup [--originals-only]` and `strata backup verify [--from DIR]`.
import path from 'node:path';
import type { CliCommand } from '../command.ts';
import { FlagError, parseFlags } from '../parse-flags.ts';
import { loadConfig } from '../../config/index.ts';
import { closeDb, createDb } from '../../db/pool.ts';
import { startEmbedded } from '../../db/embedded.ts';
import { backupNow } from '../../backup/module.ts';
import { drillRestore } from '../../backup/drill.ts';
import { RestoreRefused } from '../../backup/restore.ts';
import { prepareArchiving } from '../../backup/wal-archive.ts';
import { UploadWatch } from '../../backup/upload-watch.ts';
import { existsSync } from 'node:fs';

const usage = `usage: strata backup [--originals-only]
       strata backup verify [--from DIR]

  backup           a base backup of the embedded PostgreSQL (under STRATA_DATA_DIR) and a copy of the
                   originals into STRATA_BACKUP_DIR; prints the backup's summary as JSON.
                   --originals-only  copy the originals alone (the only form allowed with DATABASE_URL,
                   whose database the operator backs up with PostgreSQL's own tools)
  backup verify    restore the newest backup with all archived WAL into a scratch directory on a spare
                   port, run the restore checks, remove the scratch; prints the report as JSON and
                   exits 0 (all checks pass), 1 (a check failed) or 2 (the restore was refused or failed).
                   --from DIR  the backup directory (default STRATA_BACKUP_DIR)`;

async function backup(args: string[]): Promise<number> {
  const flags = parseFlags(args, [], ['originals-only']);
  const config = loadConfig();
  if (!config.backup) throw new FlagError('STRATA_BACKUP_DIR is not set: say where backups go');
  const originalsOnly = flags.has('originals-only');
  if (config.databaseUrl && !originalsOnly) {
    throw new FlagError('with DATABASE_URL Strata does not back the database up: back it up with the operator\'s tools (pgBackRest, pg_basebackup) and run `strata backup --originals-only` for the originals');
  }
  if (!config.databaseUrl && !existsSync(path.join(config.dataDir, 'pg', 'PG_VERSION'))) {
    throw new FlagError(`no Strata database in ${config.dataDir}; set STRATA_DATA_DIR to the server's data directory`);
  }
  const backupSettings = config.backup;
  const embedded = config.databaseUrl ? null : await startEmbedded({
    dataDir: config.dataDir, settings: (layout) => prepareArchiving(backupSettings.dir, backupSettings.archiveTimeoutMs, layout.ids),
  });
  const db = createDb(config.databaseUrl ?? (embedded?.url as string), 2);
  // A server running on this data directory: the copy yields to its uploads, seen by their claims.
  const uploads = embedded?.reused ? new UploadWatch(config.spoolDir).start() : null;
  try {
    const summary = await backupNow(db, config, embedded, { originalsOnly, uploadsRunning: uploads ? () => uploads.busy() : undefined });
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  } finally {
    uploads?.stop();
    await closeDb(db);
    if (embedded && !embedded.reused) await embedded.stop();
  }
}

async function verify(args: string[]): Promise<number> {
  const flags = parseFlags(args, ['from']);
  const from = flags.get('from') ?? loadConfig().backup?.dir;
  if (!from) throw new FlagError('say which backup directory: --from DIR or STRATA_BACKUP_DIR');
  try {
    const report = await drillRestore(path.resolve(from), { log: (m) => process.stderr.write(`strata backup verify: ${m}\n`) });
    process.stdout.write(`${JSON.stringify(report, null, 1)}\n`);
    return report.ok ? 0 : 1;
  } catch (err) {
    if (err instanceof RestoreRefused) {
      process.stdout.write(`${JSON.stringify({ ok: false, refused: err.code, reason: err.message })}\n`);
      process.stderr.write(`strata backup verify: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

export const backupCommand: CliCommand = {
  name: 'backup',
  usage,
  run: (args) => (args[0] === 'verify' ? verify(args.slice(1)) : backup(args)),
};
