// The embedded PostgreSQL that Strata started is killed (kill -9 of its postmaster) during an
// upload. Strata supervises it: the upload gets 503 database_unavailable, requests meanwhile get
// 503 with Retry-After and /readyz 503, PostgreSQL is started again by Strata itself (counted in
// /metrics), and Strata serves again without being restarted. When PostgreSQL cannot be started
// again, Strata gives up after repeated attempts and exits non-zero, saying why.
import { chmod, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/clock.ts';
import {
  type StrataProcess, ARROW_STREAM, alive, arrowBody, manualUpload, removeDir, request, secondsUntil, serves,
  spoolFiles, startStrata, tempDir,
  SPAWNED_TIMEOUT_MS,
} from './lib.ts';

let strata: StrataProcess | null = null;
let dataDir: string | null = null;

afterEach(async () => {
  await strata?.stop();
  strata = null;
  if (dataDir) {
    await chmod(path.join(dataDir, 'pg'), 0o700).catch(() => undefined);
    await removeDir(dataDir);
  }
  dataDir = null;
});

async function postmasterPid(dir: string): Promise<number> {
  return Number((await readFile(path.join(dir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(new URL('/metrics', url))).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('the embedded PostgreSQL is killed', () => {
  it('mid-upload: 503 for the upload, Strata starts PostgreSQL again by itself and serves again', async () => {
    dataDir = await tempDir('strata-faults-embedded-');
    const dir = dataDir;
    // Jobs run, as in production: their connections break too.
    strata = await startStrata({ STRATA_DATA_DIR: dir, STRATA_JOBS: 'on' });
    const s = strata;
    const created = await request(s.url, '/v1/streams/rig/ingest', { method: 'POST', body: arrowBody(2, 1000), contentType: ARROW_STREAM });
    expect(created.status).toBe(201);

    const body = arrowBody(24, 20_000);
    const up = manualUpload(s.url, 'rig', body.length);
    await up.send(body.subarray(0, body.length >> 1));
    // Its rows are being stored: the upload's ingest is not in the catalog yet.
    await waitFor('the upload to be receiving', async () => {
      const m = await metric(s.url, 'strata_uploads_active');
      return m === 1 || undefined;
    });
    await new Promise((r) => setTimeout(r, 500));
    const pid = await postmasterPid(dir);
    process.kill(pid, 'SIGKILL');
    const killedAt = performance.now();
    await waitFor('the postmaster to be gone', () => !alive(pid));
    await up.send(body.subarray(body.length >> 1));
    up.end();
    const answer = await up.answer;
    expect(answer.status).toBe(503);
    expect(answer.body.code).toBe('database_unavailable');
    expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);

    const served = await secondsUntil('Strata to serve again', () => serves(s.url), 60_000);
    const ready = await secondsUntil('/readyz to be 200', async () => (await fetch(new URL('/readyz', s.url))).status === 200, 30_000);
    const total = (performance.now() - killedAt) / 1000;
    console.log(`fault postmaster kill -9: client got ${answer.status}; served again ${total.toFixed(2)} s after the kill (ready ${ready.toFixed(2)} s after serving; polled ${served.toFixed(2)} s)`);
    expect(s.child.exitCode).toBeNull();
    expect(s.output()).not.toMatch(/Unhandled 'error' event|ERR_UNHANDLED/i);
    expect(s.output()).toMatch(/embedded PostgreSQL is not running; starting it again/);
    // PostgreSQL may accept connections (and /readyz answer 200) a moment before pg_ctl's wait
    // returns and the restart is counted.
    await waitFor('the restart to be counted', async () =>
      (await metric(s.url, 'strata_embedded_postgres_restarts_total{outcome="restarted"}')) === 1 || undefined);
    expect(await postmasterPid(dir)).not.toBe(pid);

    // Nothing of the killed upload is stored: the stream holds the first upload's rows alone.
    const q = await request(s.url, '/v1/streams/rig/query?from=2024-01-01T00:00:00Z&to=2025-01-01T00:00:00Z&agg=count&resolution=1d');
    expect(q.status, JSON.stringify(q.body)).toBe(200);
    const count = (q.body.rows as unknown[][]).reduce((n, row) => n + Number(row[row.length - 1]), 0);
    expect(count).toBe(2000);
    const again = await request(s.url, '/v1/streams/rig/ingest', { method: 'POST', body: arrowBody(2, 1000), contentType: ARROW_STREAM });
    expect(again.status).toBe(201);
    await waitFor('the spool to be empty', async () => (await spoolFiles(dir)).length === 0 || undefined, 45_000);
  }, SPAWNED_TIMEOUT_MS);

  it('and cannot be started again: Strata gives up after repeated attempts and exits non-zero', async () => {
    dataDir = await tempDir('strata-faults-embedded-');
    const dir = dataDir;
    strata = await startStrata({ STRATA_DATA_DIR: dir });
    const s = strata;
    const pid = await postmasterPid(dir);
    // PostgreSQL refuses to start on a data directory it cannot read.
    await chmod(path.join(dir, 'pg'), 0o000);
    process.kill(pid, 'SIGKILL');
    const meanwhile = await waitFor('a request while PostgreSQL is down', async () => {
      const r = await request(s.url, '/v1/streams', { timeoutMs: 5_000 }).catch(() => null);
      return r && r.status !== 200 ? r : undefined;
    });
    expect(meanwhile.status).toBe(503);
    expect(Number(meanwhile.headers['retry-after'])).toBeGreaterThan(0);
    expect((await fetch(new URL('/readyz', s.url))).status).toBe(503);
    const code = await Promise.race([s.exited, new Promise((r) => setTimeout(() => r('still running'), 90_000))]);
    expect(code).toBe(1);
    expect(s.output()).toMatch(/attempts to start it again failed/);
  }, SPAWNED_TIMEOUT_MS);
});
