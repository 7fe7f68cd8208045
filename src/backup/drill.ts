// `strata backup verify` and the restore-drill job: a full restore of the newest backup, replayed
// to the end of the archived WAL, into a scratch directory on a spare port; the checks of
// verify-restore.ts; then the scratch is removed whatever happened.
import { chmod, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type RestoreReport, removeRestored, restoreBackup } from './restore.ts';

export async function drillRestore(backupDir: string, opts: { scratchParent?: string; log?: (m: string) => void } = {}): Promise<RestoreReport> {
  const scratch = await mkdtemp(path.join(opts.scratchParent ?? os.tmpdir(), 'strata-restore-drill-'));
  // Searchable by the postgres OS user a root Strata runs PostgreSQL as (the cluster then stays inside).
  await chmod(scratch, 0o755);
  try {
    return await restoreBackup({ from: backupDir, toTime: null, dataDir: path.join(scratch, 'data'), log: opts.log });
  } finally {
    await removeRestored(path.join(scratch, 'data'));
    await removeRestored(scratch);
  }
}
