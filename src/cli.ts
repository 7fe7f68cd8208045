// `npm run cli -- <command>`: operator commands that talk to the database directly, so they work
// without a running server or an API key (whoever can run them can read the database anyway).
// Uses DATABASE_URL, or the embedded PostgreSQL under STRATA_DATA_DIR (reusing it when a server is
// running on it, otherwise starting and stopping it).
//
//   audit verify [--expect <seq>:<sha256>]…   recompute the audit hash chain; exit 0 when intact,
//                                              1 when broken (naming the first bad entry), 2 on error
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from './config/index.ts';
import { type Db, closeDb, createDb } from './db/pool.ts';
import { startEmbedded } from './db/embedded.ts';
import { type ChainAnchor, verifyAndLog } from './audit/log.ts';
import { createLogger } from './logging/logger.ts';
import type { CliCommand } from './cli/command.ts';
import { backupCommand } from './cli/commands/backup.ts';
import { restoreCommand } from './cli/commands/restore.ts';
import { standbyCommand } from './cli/commands/standby.ts';
import { verifyRestoreCommand } from './cli/commands/verify-restore.ts';

const USAGE = `usage: npm run cli -- audit verify [--expect <seq>:<sha256>]…

  audit verify   recompute the audit log's hash chain; prints {"ok": true, "entries": N, "head": "<hex>"}
                 or {"ok": false, "first_bad": <seq>, "reason": "…"}; exits 0, 1 (broken) or 2 (error).
                 --expect <seq>:<sha256>  also check that entry <seq> still has the hash an outside
                 copy (an earlier verification, the server log) recorded; repeatable.
Environment: DATABASE_URL, or STRATA_DATA_DIR for the embedded PostgreSQL.`;

class UsageError extends Error {}
/** A refusal explained in one line, without the usage text. */
class CliError extends Error {}

function parseExpect(args: string[]): ChainAnchor[] {
  const anchors: ChainAnchor[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = arg === '--expect' ? args[++i] : arg.startsWith('--expect=') ? arg.slice('--expect='.length) : null;
    if (value === null) throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
    const m = /^(\d{1,15}):([0-9a-fA-F]{64})$/.exec(value ?? '');
    if (!m) throw new UsageError(`--expect needs <seq>:<64 hex digits>, got ${JSON.stringify(value ?? '')}`);
    anchors.push({ seq: Number(m[1]), hash: m[2].toLowerCase() });
  }
  return anchors;
}

/** Refuses a data directory without an embedded cluster, rather than creating an empty one. */
function checkDataDir(dataDir: string): void {
  const cluster = path.join(dataDir, 'pg');
  if (!existsSync(path.join(cluster, 'PG_VERSION'))) {
    throw new CliError(`no Strata database in ${dataDir} (no embedded PostgreSQL at ${cluster}); set STRATA_DATA_DIR to the server's data directory, or DATABASE_URL to its database`);
  }
}

async function withDatabase<T>(fn: (db: Db) => Promise<T>): Promise<T> {
  const config = loadConfig();
  let url = config.databaseUrl;
  if (!url) checkDataDir(config.dataDir);
  const embedded = url ? null : await startEmbedded({ dataDir: config.dataDir });
  url ??= embedded?.url as string;
  const db = createDb(url, 2);
  try {
    return await fn(db);
  } finally {
    await closeDb(db);
    if (embedded && !embedded.reused) await embedded.stop();
  }
}

async function auditVerify(args: string[]): Promise<number> {
  const anchors = parseExpect(args);
  // The head goes to stderr as a log line (like the server's) and the result to stdout as JSON.
  const log = createLogger('info', process.stderr);
  const result = await withDatabase((db) => verifyAndLog(db.pool, log, 'cli audit verify', anchors));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.ok ? 0 : 1;
}

/** Commands written as modules (src/cli/commands/), ahead of the command line's restructuring. */
const MODULE_COMMANDS: CliCommand[] = [backupCommand, restoreCommand, standbyCommand, verifyRestoreCommand];

async function main(argv: string[]): Promise<number> {
  const [group, command, ...rest] = argv;
  const moduleCommand = MODULE_COMMANDS.find((c) => c.name === group);
  if (moduleCommand) return moduleCommand.run(argv.slice(1));
  if (group === 'audit' && command === 'verify') return auditVerify(rest);
  if (group === undefined || group === 'help' || group === '--help') {
    process.stdout.write(`${USAGE}\n`);
    return group === undefined ? 2 : 0;
  }
  throw new UsageError(`unknown command ${JSON.stringify([group, command].filter(Boolean).join(' '))}`);
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err: unknown) => {
  if (err instanceof UsageError) process.stderr.write(`strata cli: ${err.message}\n\n${USAGE}\n`);
  else if (err instanceof CliError) process.stderr.write(`strata cli: ${err.message}\n`);
  else if ((err as { code?: string }).code === '42P01') {
    process.stderr.write('strata cli: this database has no Strata catalog (strata.audit_log is missing); start the server on it once, or check DATABASE_URL\n');
  } else process.stderr.write(`strata cli: ${(err as Error).message ?? String(err)}\n`);
  process.exit(2);
});
