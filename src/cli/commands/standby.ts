// `strata standby --primary URL --data-dir DIR [--port N]`.
import path from 'node:path';
import type { CliCommand } from '../command.ts';
import { FlagError, parseFlags } from '../parse-flags.ts';
import { createStandby } from '../../backup/standby.ts';
import { RestoreRefused } from '../../backup/restore.ts';
import { loadConfig } from '../../config/index.ts';

const usage = `usage: strata standby --primary URL --data-dir DIR [--port N]

  Makes a streaming-replication standby of the embedded PostgreSQL in the new data directory DIR,
  with the embedded binaries, and starts it (in the background, like pg_ctl); run again to start a
  standby that was stopped. URL is a superuser connection string of the primary (for Strata's
  embedded server: postgres://postgres:<STRATA_DATA_DIR/pg-password>@HOST:<port>/postgres). The
  files come over a replication connection, so the standby may be on another machine: start the
  primary's server with STRATA_PG_ALLOW naming this machine's network, and give this command
  STRATA_PG_ALLOW naming the Strata server's, so that it can read from the standby. Prints
  {"url": …} — the standby's connection string (127.0.0.1; from elsewhere use this machine's name)
  for STRATA_READ_DATABASE_URL.
  --port N   the standby's port (default: a free one; give one to keep it across restarts)`;

async function run(args: string[]): Promise<number> {
  const flags = parseFlags(args, ['primary', 'data-dir', 'port']);
  const primary = flags.get('primary');
  const dataDir = flags.get('data-dir');
  if (!primary || !dataDir) throw new FlagError('--primary and --data-dir are both needed');
  const port = flags.has('port') ? Number(flags.get('port')) : undefined;
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new FlagError('--port needs a port number');
  try {
    const s = await createStandby({ primary, dataDir: path.resolve(dataDir), port, allow: loadConfig().pgAllow, log: (m) => process.stderr.write(`strata standby: ${m}\n`) });
    process.stdout.write(`${JSON.stringify({ url: s.url, port: s.port, data_dir: s.dataDir })}\n`);
    return 0;
  } catch (err) {
    if (err instanceof RestoreRefused) {
      process.stderr.write(`strata standby: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

export const standbyCommand: CliCommand = { name: 'standby', usage, run };
