// `strata verify-restore [--to-time T]`: the restore checks on a database restored by other means
// (an operator's pgBackRest or pg_basebackup copy, named by DATABASE_URL).
import type { CliCommand } from '../command.ts';
import { FlagError, parseFlags, parseInstant } from '../parse-flags.ts';
import { loadConfig } from '../../config/index.ts';
import { closeDb, createDb } from '../../db/pool.ts';
import { checkRestored } from '../../backup/verify-restore.ts';

const usage = `usage: strata verify-restore [--to-time T] [--expect <seq>:<sha256>]

  Checks the database DATABASE_URL names, restored by other tools, and the originals under
  STRATA_ARCHIVE_DIR (or STRATA_DATA_DIR/archive): the audit chain verifies up to its head, every
  ingest committed (per the audit log) is present with its row count, every original matches its
  SHA-256, and with --to-time nothing committed after T is present. Prints the report as JSON;
  exits 0 (every check passed), 1 (a check failed) or 2 (error).
  --expect <seq>:<sha256>  an audit entry an outside copy holds (e.g. the audit head logged before
                           the loss), which the restored chain must contain; repeatable`;

async function run(args: string[]): Promise<number> {
  const anchors: { seq: number; hash: string }[] = [];
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--expect' || args[i].startsWith('--expect=')) {
      const v = args[i] === '--expect' ? args[++i] : args[i].slice('--expect='.length);
      const m = /^(\d{1,15}):([0-9a-fA-F]{64})$/.exec(v ?? '');
      if (!m) throw new FlagError(`--expect needs <seq>:<64 hex digits>, got ${JSON.stringify(v ?? '')}`);
      anchors.push({ seq: Number(m[1]), hash: m[2].toLowerCase() });
    } else rest.push(args[i]);
  }
  const flags = parseFlags(rest, ['to-time']);
  const config = loadConfig();
  if (!config.databaseUrl) throw new FlagError('DATABASE_URL must name the restored database (an embedded one is checked by `strata restore` itself)');
  const target = flags.has('to-time') ? parseInstant('to-time', flags.get('to-time') as string) : null;
  const db = createDb(config.databaseUrl, 2);
  try {
    const checks = await checkRestored(db.pool, { archiveDir: config.archiveDir, target, anchors });
    process.stdout.write(`${JSON.stringify(checks, null, 1)}\n`);
    return checks.ok ? 0 : 1;
  } finally {
    await closeDb(db);
  }
}

export const verifyRestoreCommand: CliCommand = { name: 'verify-restore', usage, run };
