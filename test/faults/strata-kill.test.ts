// Strata itself is killed (kill -9) while it receives an upload, with a second Strata sharing its
// data directory and receiving an upload of its own. The restarted server removes the killed
// one's spool files, records its unfinished upload as rejected (interrupted), and leaves the live
// server's files alone: that upload then completes.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { waitFor } from '../helpers/clock.ts';
import {
  type StrataProcess, arrowBody, ingestRecord, manualUpload, removeDir, rowsOfIngest, secondsUntil, serves, spoolFiles,
  startStrata, tempDir, SPAWNED_TIMEOUT_MS,
} from './lib.ts';

let db: TestDb;
let dataDir: string;
const servers: StrataProcess[] = [];

beforeAll(async () => {
  db = await createTestDb();
  dataDir = await tempDir('strata-faults-kill-');
});

afterAll(async () => {
  for (const s of servers) await s.stop();
  await db?.drop();
  await removeDir(dataDir);
});

async function start(): Promise<StrataProcess> {
  const s = await startStrata({ DATABASE_URL: db.url, STRATA_DATA_DIR: dataDir, STRATA_BODY_IDLE_TIMEOUT: '5 minutes' });
  servers.push(s);
  return s;
}

/** The spool files a process owns (their names carry `~<pid>~`). */
async function filesOf(pid: number): Promise<string[]> {
  return (await spoolFiles(dataDir)).filter((f) => path.basename(f).includes(`~${pid}~`));
}

describe('Strata is killed mid-upload', () => {
  it('the next start cleans its spool, records the upload as interrupted, and spares a live server\'s files', async () => {
    const [doomed, live] = await Promise.all([start(), start()]);
    const body = arrowBody(16, 10_000);
    const half = body.subarray(0, body.length >> 1);
    const killed = manualUpload(doomed.url, 'rig', body.length);
    const spared = manualUpload(live.url, 'rig', body.length);
    await killed.send(half);
    await spared.send(half);
    const doomedPid = doomed.child.pid as number;
    const livePid = live.child.pid as number;
    // Both are under way: each has its claim and its spooled original.
    const claim = await waitFor('the doomed upload to be spooled', async () => {
      const files = await filesOf(doomedPid);
      return files.length >= 2 ? files.find((f) => path.basename(f).startsWith('claim.')) : undefined;
    });
    await waitFor('the live upload to be spooled', async () => (await filesOf(livePid)).length >= 2 || undefined);
    const ingestId = /ingest-(\d+)\.json$/.exec(claim as string)?.[1] as string;
    expect(ingestId).toMatch(/^\d+$/);

    doomed.child.kill('SIGKILL');
    await doomed.exited;
    const killedAt = performance.now();
    await expect(killed.answer).rejects.toThrow();
    expect((await filesOf(doomedPid)).length).toBeGreaterThanOrEqual(2);

    const restarted = await start();
    const back = await secondsUntil('the restarted server to serve', () => serves(restarted.url));
    const total = (performance.now() - killedAt) / 1000;
    console.log(`fault strata kill -9: client's connection reset; a new process served ${total.toFixed(2)} s after the kill (${back.toFixed(2)} s after listening)`);

    expect(await filesOf(doomedPid)).toEqual([]);
    expect((await filesOf(livePid)).length).toBeGreaterThanOrEqual(2);
    const record = await ingestRecord(db.url, ingestId);
    expect(record).toEqual({ status: 'rejected', error_code: 'interrupted' });
    expect(await rowsOfIngest(db.url, 'rig', ingestId)).toBe(0);
    expect(restarted.output()).toMatch(/spool: removed files left by a stopped server/);

    // The live server's upload was never disturbed.
    await spared.send(body.subarray(body.length >> 1));
    spared.end();
    const done = await spared.answer;
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    const ingest = done.body.ingest as { id: string; rows: number };
    expect(ingest.rows).toBe(160_000);
    expect(await rowsOfIngest(db.url, 'rig', ingest.id)).toBe(160_000);
    expect(await spoolFiles(dataDir)).toEqual([]);
  }, SPAWNED_TIMEOUT_MS);
});
