// Shared by the backup tests: a Strata process with its embedded PostgreSQL and WAL archiving,
// uploads noted with their commit times, the embedded server's superuser URL, and the CLI.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { root } from '../bench/lib.ts';
import { startEmbedded } from '../../src/db/embedded.ts';
import { waitFor } from '../helpers/clock.ts';
import { ARROW_STREAM, arrowBody, request } from '../faults/lib.ts';

/** Ports of the clusters these tests start (their own range, apart from other suites'). */
// Below the kernel's ephemeral range (32768–60999 on Linux): a fixed port there can be taken, as
// the source port of any outgoing connection of a busy machine, just when a cluster binds it.
export const PORTS = { primary: 25400, pitr: 25401, latest: 25402, damaged: 25403, standby: 25404, primary2: 25405, remote: 25406, remoteStandby: 25407, yields: 25408 } as const;

export interface Uploaded { id: string; rows: number; committedAt: number }

/** One small Arrow upload (distinct per seed); resolves once committed. */
export async function upload(url: string, stream: string, seed: number): Promise<Uploaded> {
  const r = await request(url, `/v1/streams/${stream}/ingest`, { method: 'POST', body: arrowBody(1, 500, seed), contentType: ARROW_STREAM });
  if (r.status !== 201) throw new Error(`upload ${seed}: ${r.status} ${JSON.stringify(r.body)}`);
  const ingest = r.body.ingest as { id: string; rows: number };
  return { id: String(ingest.id), rows: ingest.rows, committedAt: Date.now() };
}

/** The superuser URL of the embedded PostgreSQL under a Strata data directory. */
export async function embeddedUrl(dataDir: string): Promise<string> {
  const password = (await readFile(path.join(dataDir, 'pg-password'), 'utf8')).trim();
  const lines = (await readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n');
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${lines[3]}/postgres`;
}

export async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Waits until the WAL holding everything committed so far is in the archive (archive_timeout switches it). */
export async function walArchived(url: string): Promise<void> {
  const [{ wal }] = await query<{ wal: string }>(url, 'SELECT pg_walfile_name(pg_current_wal_lsn()) AS wal');
  await waitFor(`WAL segment ${wal} to be archived`, async () => {
    const [a] = await query<{ last: string | null }>(url, 'SELECT last_archived_wal AS last FROM pg_stat_archiver');
    return a.last !== null && a.last >= wal ? true : undefined;
  }, 60_000);
}

/** Runs `strata …` (the CLI as an operator runs it); resolves to its exit code and output. */
export function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const { DATABASE_URL: _ignored, ...inherited } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), ...args], {
      cwd: root, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Stops the embedded PostgreSQL of a data directory when one runs there (never starts one). */
export async function stopCluster(dataDir: string): Promise<void> {
  if (!existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))) return;
  const s = await startEmbedded({ dataDir }).catch(() => null);
  if (s?.reused) await s.stop();
}
