// Every `strata` command, in the order `strata help` lists them. A new command is one line here.
import type { CliCommand } from '../command.ts';
import { audit } from './audit.ts';
import { backupCommand } from './backup.ts';
import { push } from './push.ts';
import { query } from './query.ts';
import { restoreCommand } from './restore.ts';
import { standbyCommand } from './standby.ts';
import { verifyOriginal } from './verify-original.ts';
import { verifyRestoreCommand } from './verify-restore.ts';
import { watch } from './watch.ts';

export const commands: CliCommand[] = [
  push,
  watch,
  query,
  verifyOriginal,
  audit,
  backupCommand,
  restoreCommand,
  verifyRestoreCommand,
  standbyCommand,
];
