// Every `strata` command, in the order `strata help` lists them. A new command is one line here.
// Each module is loaded when its command runs: `strata push` does not pay for the modules of
// backup and audit (which load the server's database and backup code, seconds of start-up).
import type { CliCommand } from '../command.ts';

export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<CliCommand>;
}

export const commands: CommandEntry[] = [
  { name: 'push', summary: 'upload files to a stream, with retries and no duplicates', load: async () => (await import('./push.ts')).push },
  { name: 'watch', summary: 'upload each file that appears in a folder, once, when it is complete', load: async () => (await import('./watch.ts')).watch },
  { name: 'query', summary: 'export rows (CSV, Arrow, Parquet, JSON) to a file or stdout', load: async () => (await import('./query.ts')).query },
  { name: 'verify-original', summary: 'check that a local file holds the bytes of an ingest', load: async () => (await import('./verify-original.ts')).verifyOriginal },
  { name: 'audit', summary: 'audit verify: recompute the audit log hash chain from the database', load: async () => (await import('./audit.ts')).audit },
  { name: 'backup', summary: 'take a base backup and copy the originals into STRATA_BACKUP_DIR; `backup verify` restores one and checks it', load: async () => (await import('./backup.ts')).backupCommand },
  { name: 'restore', summary: 'restore a backup into a new data directory, to a time or to the end of the WAL, and check it', load: async () => (await import('./restore.ts')).restoreCommand },
  { name: 'verify-restore', summary: 'check a database restored with other tools (DATABASE_URL): audit chain, ingests, originals', load: async () => (await import('./verify-restore.ts')).verifyRestoreCommand },
  { name: 'standby', summary: 'make and start a streaming-replication standby of the embedded PostgreSQL, for reads', load: async () => (await import('./standby.ts')).standbyCommand },
];
