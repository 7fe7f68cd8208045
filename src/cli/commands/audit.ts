// strata audit verify: recomputes the audit log's hash chain straight from the database, so it
// works without a running server or an API key (whoever can run it can read the database anyway).
// Uses DATABASE_URL, or the embedded PostgreSQL under STRATA_DATA_DIR (reusing it when a server is
// running on it, otherwise starting and stopping it).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../config/index.ts';
import { type Db, closeDb, createDb } from '../../db/pool.ts';
import { startEmbedded } from '../../db/embedded.ts';
import { type ChainAnchor, verifyAndLog } from '../../audit/log.ts';
import { createLogger } from '../../logging/logger.ts';
import { list, parse, flag } from '../args.ts';
import { type CliCommand, CliError, EXIT, UsageError } from '../command.ts';

const usage = `usage: strata audit verify [--expect <seq>:<sha256>]…

Recomputes the audit log's hash chain; prints {"ok": true, "entries": N, "head": "<hex>"} or
{"ok": false, "first_bad": <seq>, "reason": "…"}.
  --expect <seq>:<sha256>  also check that entry <seq> still has the hash an outside copy (an
                           earlier verification, the server log) recorded; repeatable.
Reads the database directly: DATABASE_URL, or STRATA_DATA_DIR for the embedded PostgreSQL.
Exit: 0 intact, 1 broken (naming the first bad entry), 2 bad argument or no database.`;

function parseExpect(values: string[]): ChainAnchor[] {
  return values.map((value) => {
    const m = /^(\d{1,15}):([0-9a-fA-F]{64})$/.exec(value);
    if (!m) throw new UsageError(`--expect needs <seq>:<64 hex digits>, got ${JSON.stringify(value)}`);
    return { seq: Number(m[1]), hash: m[2].toLowerCase() };
  });
}

/** Refuses a data directory without an embedded cluster, rather than creating an empty one. */
function checkDataDir(dataDir: string): void {
  const cluster = path.join(dataDir, 'pg');
  if (!existsSync(path.join(cluster, 'PG_VERSION'))) {
    throw new CliError(`no Strata database in ${dataDir} (no embedded PostgreSQL at ${cluster}); set STRATA_DATA_DIR to the server's data directory, or DATABASE_URL to its database`, EXIT.usage);
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
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') {
      throw new CliError('this database has no Strata catalog (strata.audit_log is missing); start the server on it once, or check DATABASE_URL', EXIT.usage);
    }
    throw err;
  } finally {
    await closeDb(db);
    if (embedded && !embedded.reused) await embedded.stop();
  }
}

export const audit: CliCommand = {
  name: 'audit',
  usage,
  async run(args) {
    const [sub, ...rest] = args;
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') { process.stdout.write(`${usage}\n`); return sub === undefined ? EXIT.usage : EXIT.ok; }
    if (sub !== 'verify') throw new UsageError(`unknown subcommand ${JSON.stringify(`audit ${sub}`)}; audit has: verify`);
    const p = parse(rest, { expect: { type: 'string', multiple: true } });
    if (flag(p, 'help')) { process.stdout.write(`${usage}\n`); return EXIT.ok; }
    if (p.positionals.length > 0) throw new UsageError(`unknown argument ${JSON.stringify(p.positionals[0])}`);
    const anchors = parseExpect(list(p, 'expect'));
    // The head goes to stderr as a log line (like the server's) and the result to stdout as JSON.
    const log = createLogger('info', process.stderr);
    const result = await withDatabase((db) => verifyAndLog(db.pool, log, 'cli audit verify', anchors));
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return result.ok ? EXIT.ok : EXIT.failed;
  },
};
