// Point-in-time recovery, end to end: a Strata with WAL archiving takes a base backup, receives 20
// more uploads, and is killed with its PostgreSQL (kill -9); its data directory is deleted. The
// backup restored to a time between upload 10 and 11 holds exactly the uploads before that time
// and the audit head of that moment; restored to the end of the WAL it holds all 30, and Strata
// starts on it. Then the backup is damaged: a corrupted WAL segment is refused by name, a missing
// original is reported, and a failing restore drill shows on /readyz.
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbedded } from '../../src/db/embedded.ts';
import { RestoreRefused, restoreBackup } from '../../src/backup/restore.ts';
import { listBackups } from '../../src/backup/manifest.ts';
import { type StrataProcess, SPAWNED_TIMEOUT_MS, removeDir, request, startStrata, tempDir } from '../faults/lib.ts';
import { PORTS, type Uploaded, cli, embeddedUrl, query, stopCluster, upload, walArchived } from './lib.ts';

let dataDir: string;
let backupDir: string;
let scratch: string;
let strata: StrataProcess | null = null;
const before: Uploaded[] = [];
const after: Uploaded[] = [];
let target: Date;
let headAtTarget: { entries: number; head: string };

beforeAll(async () => {
  dataDir = await tempDir('strata-pitr-data-');
  backupDir = await tempDir('strata-pitr-backup-');
  scratch = await tempDir('strata-pitr-restored-');
});

afterAll(async () => {
  await strata?.stop();
  for (const d of ['pitr', 'latest', 'damaged', 'missing']) await stopCluster(path.join(scratch, d));
  for (const d of [dataDir, backupDir, scratch]) await removeDir(d);
});

async function auditHead(url: string): Promise<{ entries: number; head: string }> {
  const r = await request(url, '/v1/audit/verify');
  return { entries: r.body.entries as number, head: r.body.head as string };
}

async function backupsCheck(url: string): Promise<{ ok: boolean; detail: Record<string, unknown> }> {
  const r = await request(url, '/readyz');
  return (r.body.checks as { name: string; ok: boolean; detail: Record<string, unknown> }[]).find((c) => c.name === 'backups') as never;
}

async function ingestIds(dir: string): Promise<string[]> {
  const s = await startEmbedded({ dataDir: dir, port: PORTS.damaged });
  try {
    const rows = await query<{ id: string }>(s.url, "SELECT i.id::text AS id FROM strata.ingests i WHERE i.status = 'committed' ORDER BY i.id");
    return rows.map((r) => r.id);
  } finally {
    await s.stop();
  }
}

describe('backups proven by restoring them', () => {
  it('restores to a point in time and to the latest WAL after Strata and PostgreSQL were killed and the data directory deleted', async () => {
    strata = await startStrata({
      STRATA_DATA_DIR: dataDir, STRATA_BACKUP_DIR: backupDir, STRATA_BACKUP_ARCHIVE_TIMEOUT: '1s', STRATA_PG_PORT: String(PORTS.primary),
      // A spread checkpoint would make pg_backup_start wait most of checkpoint_timeout (15 min).
      STRATA_BACKUP_CHECKPOINT: 'fast',
    });
    for (let i = 0; i < 10; i++) before.push(await upload(strata.url, 'pitr', i));
    const run = await request(strata.url, '/v1/jobs/backup/run', { method: 'POST', timeoutMs: 120_000 });
    expect(run.status, JSON.stringify(run.body)).toBe(200);
    expect(run.body.outcome, JSON.stringify(run.body)).toBe('succeeded');
    const [manifest] = await listBackups(backupDir);
    expect(manifest.ingests.committed).toBe(10);
    expect(manifest.files.length).toBeGreaterThan(500);
    expect(manifest.audit_head?.hash).toMatch(/^[0-9a-f]{64}$/);

    // The restore drill restores that backup into a scratch directory and checks it; /readyz says so.
    const drill = await request(strata.url, '/v1/jobs/restore-drill/run', { method: 'POST', timeoutMs: 120_000 });
    expect(drill.body.outcome, JSON.stringify(drill.body)).toBe('succeeded');
    expect(drill.body.details).toMatchObject({ backup: manifest.id, checks: { ok: true, ingests: { committed: 10 } } });
    expect(await backupsCheck(strata.url)).toMatchObject({ ok: true, detail: { last_drill: { outcome: 'succeeded' } } });
    // A damaged base backup fails the drill, and /readyz shows it until a drill succeeds again.
    const control = path.join(backupDir, 'base', manifest.id, 'pg', 'global', 'pg_control');
    const good = await readFile(control);
    await writeFile(control, Buffer.concat([good.subarray(0, 100), Buffer.alloc(8, 0xee), good.subarray(108)]));
    const failed = await request(strata.url, '/v1/jobs/restore-drill/run', { method: 'POST', timeoutMs: 120_000 });
    expect(failed.body.outcome, JSON.stringify(failed.body)).toBe('failed');
    expect(failed.body.error).toMatch(/global\/pg_control is damaged/);
    const check = await backupsCheck(strata.url);
    expect(check.ok).toBe(false);
    expect(JSON.stringify(check.detail)).toMatch(/the last restore drill .* failed: .*pg_control is damaged/);
    await writeFile(control, good);

    for (let i = 0; i < 20; i++) {
      after.push(await upload(strata.url, 'pitr', 100 + i));
      if (i === 9) {
        headAtTarget = await auditHead(strata.url);
        await new Promise((r) => setTimeout(r, 1500));
        target = new Date(after[9].committedAt + 700);
        await new Promise((r) => setTimeout(r, 1500));
      }
    }
    const pgUrl = await embeddedUrl(dataDir);
    await walArchived(pgUrl);
    // The originals follow every archive_timeout.
    await import('../helpers/clock.ts').then(({ waitFor }) => waitFor('originals to be copied', async () => {
      const files = await readdir(path.join(backupDir, 'originals'), { recursive: true });
      return files.filter((f) => /[0-9a-f]{64}$/.test(f)).length >= 30 || undefined;
    }, 30_000));

    const postmaster = Number((await readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    strata.child.kill('SIGKILL');
    process.kill(postmaster, 'SIGKILL');
    await strata.exited;
    strata = null;
    await new Promise((r) => setTimeout(r, 500));
    await removeDir(dataDir);

    const pitr = await cli(['restore', '--from', backupDir, '--to-time', target.toISOString(), '--data-dir', path.join(scratch, 'pitr'), '--port', String(PORTS.pitr)], {});
    expect(pitr.code, pitr.stderr + pitr.stdout).toBe(0);
    const report = JSON.parse(pitr.stdout) as { ok: boolean; checks: { audit: { ok: boolean; entries: number; head: string }; ingests: { committed: number }; originals: { checked: number } } };
    expect(report.checks.audit).toMatchObject({ ok: true, entries: headAtTarget.entries, head: headAtTarget.head });
    expect(report.checks.ingests.committed).toBe(20);
    expect(report.checks.originals.checked).toBe(20);
    expect(await ingestIds(path.join(scratch, 'pitr'))).toEqual([...before, ...after.slice(0, 10)].map((u) => u.id));

    const latest = await cli(['restore', '--from', backupDir, '--to-latest', '--data-dir', path.join(scratch, 'latest'), '--port', String(PORTS.latest)], {});
    expect(latest.code, latest.stderr + latest.stdout).toBe(0);
    expect((JSON.parse(latest.stdout) as { checks: { ingests: { committed: number } } }).checks.ingests.committed).toBe(30);

    // Strata starts on the restored directory and serves every reading and original.
    strata = await startStrata({ STRATA_DATA_DIR: path.join(scratch, 'latest') });
    const rows = await request(strata.url, '/v1/streams/pitr/query?format=json&limit=100000');
    expect(rows.status).toBe(200);
    expect((rows.body.rows as unknown[]).length).toBe(30 * 500);
    const original = await fetch(new URL(`/v1/ingests/${after[19].id}/original`, strata.url), { headers: { authorization: `Bearer ${(await import('../faults/lib.ts')).ADMIN_KEY}` } });
    expect(original.status).toBe(200);
    await original.arrayBuffer();
    await strata.stop();
    strata = null;
  }, 2 * SPAWNED_TIMEOUT_MS);

  it('refuses a backup whose archived WAL is damaged, naming the segment', async () => {
    const [manifest] = await listBackups(backupDir);
    const wal = (await readdir(path.join(backupDir, 'wal'))).filter((n) => /^[0-9A-F]{24}$/.test(n) && n > manifest.stop_wal).sort()[0];
    const file = path.join(backupDir, 'wal', wal);
    const bytes = await readFile(file);
    const damaged = Buffer.from(bytes);
    damaged[8192 + 100] ^= 0xff;
    await writeFile(file, damaged);
    try {
      await expect(restoreBackup({ from: backupDir, toTime: null, dataDir: path.join(scratch, 'damaged'), port: PORTS.damaged }))
        .rejects.toThrow(new RegExp(`WAL segment ${wal} is damaged`));
      await expect(restoreBackup({ from: backupDir, toTime: null, dataDir: path.join(scratch, 'damaged'), port: PORTS.damaged }))
        .rejects.toBeInstanceOf(RestoreRefused);
    } finally {
      await writeFile(file, bytes);
    }
  }, SPAWNED_TIMEOUT_MS);

  it('reports an original missing from the backup', async () => {
    const victim = after[15];
    const [row] = await query<{ sha256: string }>(await latestUrl(), 'SELECT sha256 FROM strata.ingests WHERE id = $1', [victim.id]);
    const file = path.join(backupDir, 'originals', row.sha256.slice(0, 2), row.sha256);
    await rename(file, `${file}.away`);
    try {
      const report = await restoreBackup({ from: backupDir, toTime: null, dataDir: path.join(scratch, 'missing'), port: PORTS.damaged });
      expect(report.ok).toBe(false);
      expect(report.checks.originals.missing).toEqual([{ ingest: victim.id, sha256: row.sha256 }]);
      expect(report.checks.audit.ok).toBe(true);
    } finally {
      await rename(`${file}.away`, file);
      await rm(path.join(scratch, 'missing'), { recursive: true, force: true });
    }
  }, SPAWNED_TIMEOUT_MS);
});

let latestServer: Awaited<ReturnType<typeof startEmbedded>> | null = null;
async function latestUrl(): Promise<string> {
  latestServer ??= await startEmbedded({ dataDir: path.join(scratch, 'latest'), port: PORTS.latest });
  return latestServer.url;
}
afterAll(async () => { await latestServer?.stop(); });
