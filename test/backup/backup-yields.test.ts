// A base backup yields to uploads. With no upload running its copy does not pause (the idle pause
// STRATA_BACKUP_PAUSE is 0 here); with one in flight all along, the server tells the copy process
// so, the copy pauses for STRATA_JOB_BUSY_PAUSE of its working time, and the job run records how
// long; so does `strata backup` run by hand beside the server, which sees the upload's claim in the
// spool directory. The upload completes meanwhile, whole.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StrataProcess, arrowBody, manualUpload, removeDir, request, startStrata, tempDir } from '../faults/lib.ts';
import { PORTS, cli, upload } from './lib.ts';

let dataDir: string;
let backupDir: string;
let strata: StrataProcess | null = null;

beforeAll(async () => {
  dataDir = await tempDir('strata-yields-data-');
  backupDir = await tempDir('strata-yields-backup-');
});

afterAll(async () => {
  await strata?.stop();
  for (const d of [dataDir, backupDir]) await removeDir(d);
});

async function backup(): Promise<Record<string, unknown>> {
  const run = await request(strata!.url, '/v1/jobs/backup/run', { method: 'POST', timeoutMs: 300_000 });
  expect(run.status, JSON.stringify(run.body)).toBe(200);
  expect(run.body.outcome, JSON.stringify(run.body)).toBe('succeeded');
  return run.body.details as Record<string, unknown>;
}

describe('a base backup beside uploads', () => {
  it('copies without pausing when no upload runs, and pauses while one is in flight', async () => {
    strata = await startStrata({
      STRATA_DATA_DIR: dataDir, STRATA_BACKUP_DIR: backupDir, STRATA_PG_PORT: String(PORTS.yields),
      STRATA_BACKUP_CHECKPOINT: 'fast', STRATA_BACKUP_PAUSE: '0', STRATA_JOB_BUSY_PAUSE: '400',
      // The upload below waits for two backups between its halves.
      STRATA_BODY_IDLE_TIMEOUT: '10m',
    });
    await upload(strata.url, 'yields', 1);
    const idle = await backup();
    expect(idle.copy_paused_ms).toBe(0);

    // An upload whose first half is sent, the rest only after the backup: it is in flight all along.
    const body = arrowBody(4, 20_000);
    const up = manualUpload(strata.url, 'yields', body.length);
    await up.send(body.subarray(0, body.length >> 1));
    const busy = await backup();
    // `strata backup` by hand, beside the running server: it sees the upload by its claim in the spool directory.
    const byHand = await cli(['backup'], { STRATA_DATA_DIR: dataDir, STRATA_BACKUP_DIR: backupDir, STRATA_BACKUP_PAUSE: '0', STRATA_BACKUP_CHECKPOINT: 'fast' });
    expect(byHand.code, byHand.stderr).toBe(0);
    expect(up.answered).toBe(false);
    await up.send(body.subarray(body.length >> 1));
    up.end();
    const answer = await up.answer;
    expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    expect((answer.body.ingest as { rows: number }).rows).toBe(80_000);
    // At 400 % the copy pauses four times as long as it works, in steps of at least 50 ms.
    expect(busy.copy_paused_ms as number).toBeGreaterThan(0);
    expect((JSON.parse(byHand.stdout) as { copy_paused_ms: number }).copy_paused_ms).toBeGreaterThan(0);
  });
});
