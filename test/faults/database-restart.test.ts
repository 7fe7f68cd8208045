// PostgreSQL going away under a running upload: restarted, stopped at once (immediate), or the
// upload's own backend terminated. The uploading client gets 503 database_unavailable with
// Retry-After, nothing of the upload is stored, the server process stays up, and it serves again
// as soon as PostgreSQL is back, without being restarted.
//
// The PostgreSQL here is an embedded PostgreSQL 17 of the test's own (never a shared server).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { EmbeddedServer } from '../../src/db/embedded.ts';
import { waitFor } from '../helpers/clock.ts';
import {
  type OwnPostgres, type StrataProcess, alive, arrowBody, copyRunning, ingestRecord, manualUpload, request, rowsOfIngest, secondsUntil,
  serves, spoolFiles, strataOnOwnPostgres, ARROW_STREAM,
  SPAWNED_TIMEOUT_MS,
} from './lib.ts';

let own: OwnPostgres;
let dataDir: string;
let embedded: EmbeddedServer;
let dbUrl: string;
let strata: StrataProcess;
const DB = 'strata_faults';

beforeAll(async () => {
  own = await strataOnOwnPostgres(DB);
  ({ dataDir, embedded, dbUrl, strata } = own);
}, SPAWNED_TIMEOUT_MS);

afterAll(async () => {
  await own?.close();
});

/** Signals the postmaster (SIGINT: fast shutdown, SIGQUIT: immediate) and waits until it has exited. */
async function stopPostgres(signal: 'SIGINT' | 'SIGQUIT'): Promise<void> {
  const pid = (await embedded.postmasterPid()) as number;
  process.kill(pid, signal);
  await waitFor('the postmaster to exit', () => !alive(pid), 60_000);
}

/** Sends half an upload, lets `fault` break its connection while its COPY runs, then sends the rest. */
async function uploadThrough(stream: string, fault: (copyPid: number) => Promise<void>): Promise<{ status: number; retryAfter: string | undefined; code: unknown; ingestId: string; faultAt: number }> {
  const body = arrowBody(24, 20_000);
  const up = manualUpload(strata.url, stream, body.length);
  await up.send(body.subarray(0, body.length >> 1));
  const copyPid = await copyRunning(embedded.url, DB);
  await fault(copyPid);
  const faultAt = performance.now();
  await up.send(body.subarray(body.length >> 1));
  up.end();
  const answer = await up.answer;
  return {
    status: answer.status, retryAfter: answer.headers['retry-after'] as string | undefined, code: answer.body.code,
    ingestId: String(answer.body.ingest_id), faultAt,
  };
}

async function expectRecovered(stream: string, failed: { ingestId: string; faultAt: number }, label: string): Promise<void> {
  const served = await secondsUntil('the server to serve again', () => serves(strata.url));
  const ok = await request(strata.url, `/v1/streams/${stream}/ingest`, { method: 'POST', body: arrowBody(2, 1000), contentType: ARROW_STREAM });
  expect(ok.status, JSON.stringify(ok.body)).toBe(201);
  const total = (performance.now() - failed.faultAt) / 1000;
  console.log(`fault ${label}: served again ${served.toFixed(2)} s after the check began, ${total.toFixed(2)} s after the fault`);
  expect(strata.child.exitCode).toBeNull();
  expect(strata.output()).not.toMatch(/Unhandled 'error' event|uncaught|ERR_UNHANDLED/i);
  expect(await rowsOfIngest(dbUrl, stream, failed.ingestId)).toBe(0);
  // The spool holds nothing of the failed upload once its refusal is recorded.
  await waitFor('the refusal to be recorded', async () => (await ingestRecord(dbUrl, failed.ingestId))?.status === 'rejected', 45_000);
  expect((await ingestRecord(dbUrl, failed.ingestId))?.error_code).toBe('database_unavailable');
  expect(await spoolFiles(dataDir)).toEqual([]);
}

describe('PostgreSQL goes away during an upload', () => {
  it('its backend is terminated: 503 database_unavailable with Retry-After, nothing stored, the server serves on', async () => {
    const r = await uploadThrough('terminated', async (copyPid) => {
      const c = new pg.Client({ connectionString: embedded.url });
      await c.connect();
      await c.query('SELECT pg_terminate_backend($1)', [copyPid]);
      await c.end();
    });
    expect(r.status).toBe(503);
    expect(r.code).toBe('database_unavailable');
    expect(Number(r.retryAfter)).toBeGreaterThan(0);
    await expectRecovered('terminated', r, 'pg_terminate_backend');
  }, SPAWNED_TIMEOUT_MS);

  it('PostgreSQL restarts (fast shutdown, then start): 503, nothing stored, serves again once it is back', async () => {
    const r = await uploadThrough('restarted', async () => {
      await stopPostgres('SIGINT'); // fast shutdown: sessions are terminated
      await embedded.restart();
    });
    expect(r.status).toBe(503);
    expect(r.code).toBe('database_unavailable');
    expect(Number(r.retryAfter)).toBeGreaterThan(0);
    await expectRecovered('restarted', r, 'PostgreSQL restart');
  }, SPAWNED_TIMEOUT_MS);

  it('PostgreSQL stops at once (immediate) and stays down a while: 503 meanwhile, auth too, then serves again', async () => {
    const r = await uploadThrough('immediate', async () => {
      await stopPostgres('SIGQUIT'); // immediate shutdown: no checkpoint, crash recovery at the next start
    });
    expect(r.status).toBe(503);
    expect(r.code).toBe('database_unavailable');
    // While it is down, a request whose key must be looked up is a 503 with Retry-After, never a 500.
    const down = await request(strata.url, '/v1/streams');
    expect(down.status).toBe(503);
    expect(down.body.code).toBe('database_unavailable');
    expect(Number(down.headers['retry-after'])).toBeGreaterThan(0);
    const ready = await fetch(new URL('/readyz', strata.url));
    expect(ready.status).toBe(503);
    await embedded.restart();
    await expectRecovered('immediate', r, 'immediate stop, 1 s down');
  }, SPAWNED_TIMEOUT_MS);
});
