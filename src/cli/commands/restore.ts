// `strata restore --from DIR (--to-time T | --to-latest) --data-dir NEW [--port N]`.
import path from 'node:path';
import type { CliCommand } from '../command.ts';
import { FlagError, parseFlags, parseInstant } from '../parse-flags.ts';
import { RestoreRefused, restoreBackup } from '../../backup/restore.ts';

const usage = `usage: strata restore --from DIR (--to-time T | --to-latest) --data-dir NEW [--port N]

  Restores the base backup taken before T from the backup directory DIR into the new Strata data
  directory NEW, replays the archived WAL up to T (or all of it), checks the manifest, the WAL
  segments' checksums, the audit chain, every ingest committed before T with its row count, every
  original's SHA-256 and that nothing after T is present, and prints the report as JSON. Refuses a
  data directory that already holds a database. Start Strata with STRATA_DATA_DIR=NEW afterwards.
  Exits 0 (restored, every check passed), 1 (restored, a check failed: see the report) or 2 (refused).
  --to-time T  an ISO 8601 instant with its zone (2026-03-01T12:00:00Z)
  --port N     the port PostgreSQL listens on during the replay (default: a free one)`;

async function run(args: string[]): Promise<number> {
  const flags = parseFlags(args, ['from', 'to-time', 'data-dir', 'port'], ['to-latest']);
  const from = flags.get('from');
  const dataDir = flags.get('data-dir');
  if (!from || !dataDir) throw new FlagError('--from and --data-dir are both needed');
  if (flags.has('to-time') === flags.has('to-latest')) throw new FlagError('give exactly one of --to-time T and --to-latest');
  const toTime = flags.has('to-time') ? parseInstant('to-time', flags.get('to-time') as string) : null;
  const port = flags.has('port') ? Number(flags.get('port')) : undefined;
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new FlagError('--port needs a port number');
  try {
    const report = await restoreBackup({
      from: path.resolve(from), toTime, dataDir: path.resolve(dataDir), port, log: (m) => process.stderr.write(`strata restore: ${m}\n`),
    });
    process.stdout.write(`${JSON.stringify(report, null, 1)}\n`);
    if (!report.ok) process.stderr.write('strata restore: restored, but some checks failed (see "checks" in the report)\n');
    return report.ok ? 0 : 1;
  } catch (err) {
    if (err instanceof RestoreRefused) {
      process.stdout.write(`${JSON.stringify({ ok: false, refused: err.code, reason: err.message })}\n`);
      process.stderr.write(`strata restore: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

export const restoreCommand: CliCommand = { name: 'restore', usage, run };
