// Thirty uploads that send their headers and 30 % of their body, then stop. They must not take the
// API down: beyond STRATA_MAX_CONCURRENT_UPLOADS they get 503 too_many_uploads with Retry-After at
// once; the admitted ones end with 408 body_timeout after STRATA_BODY_IDLE_TIMEOUT (recorded as
// rejected, nothing stored); meanwhile the stream list and queries answer promptly, because uploads
// draw on connections of their own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadPoolSize } from '../../src/server.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { waitFor } from '../helpers/clock.ts';
import {
  type Answer, type StrataProcess, ARROW_STREAM, arrowBody, ingestRecord, manualUpload, removeDir, request, spoolFiles,
  startStrata, tempDir, SPAWNED_TIMEOUT_MS,
} from './lib.ts';

const STALLED = 30;
const SLOTS = 8;
let db: TestDb;
let dataDir: string;
let strata: StrataProcess;

beforeAll(async () => {
  db = await createTestDb();
  dataDir = await tempDir('strata-faults-stall-');
  strata = await startStrata({
    DATABASE_URL: db.url, STRATA_DATA_DIR: dataDir, STRATA_BODY_IDLE_TIMEOUT: '8s', STRATA_HEADERS_TIMEOUT: '3s', STRATA_MAX_CONCURRENT_UPLOADS: String(SLOTS),
  });
}, SPAWNED_TIMEOUT_MS);

afterAll(async () => {
  await strata?.stop();
  await db?.drop();
  await removeDir(dataDir);
});

async function timed(pathname: string): Promise<{ answer: Answer; seconds: number }> {
  const started = performance.now();
  const answer = await request(strata.url, pathname, { timeoutMs: 30_000 });
  return { answer, seconds: (performance.now() - started) / 1000 };
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(new URL('/metrics', strata.url))).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').pop()) : Number.NaN;
}

async function uploadSessions(): Promise<{ active: number; idleInTx: number }> {
  const { rows } = await db.pool.query<{ state: string | null; n: number }>(
    `SELECT state, count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'strata-upload' GROUP BY state`);
  const n = (s: string): number => rows.find((r) => r.state === s)?.n ?? 0;
  return { active: n('active'), idleInTx: n('idle in transaction') };
}

describe('30 stalled uploads', () => {
  it('leave the API answering; the excess gets 503, the admitted ones 408 after the idle timeout; nothing stored', async () => {
    const seeded = await request(strata.url, '/v1/streams/rig/ingest', { method: 'POST', body: arrowBody(2, 1000), contentType: ARROW_STREAM });
    expect(seeded.status).toBe(201);
    const body = arrowBody(20, 5000);
    const uploads = Array.from({ length: STALLED }, () => manualUpload(strata.url, 'rig', body.length));
    await Promise.all(uploads.map((u) => u.send(body.subarray(0, Math.floor(body.length * 0.3)))));

    const refused = await waitFor('the uploads beyond the bound to be refused', () => {
      const n = uploads.filter((u) => u.answered).length;
      return n >= STALLED - SLOTS ? n : undefined;
    }, 30_000);

    // The admitted uploads are stalled now; the API still answers, reads and authentication included.
    const activeBefore = await metric('strata_uploads_active');
    const streams = await timed('/v1/streams');
    const query = await timed('/v1/streams/rig/query?from=2024-01-01T00:00:00Z&to=2025-01-01T00:00:00Z&agg=count&resolution=1h');
    const ready = await fetch(new URL('/readyz', strata.url));
    console.log(`fault ${STALLED} stalled uploads: ${refused} got 503 too_many_uploads; GET /v1/streams ${streams.seconds.toFixed(3)} s, query ${query.seconds.toFixed(3)} s while stalled`);
    const activeAfter = await metric('strata_uploads_active');
    expect([activeBefore, activeAfter]).toEqual([SLOTS, SLOTS]);
    expect(streams.answer.status).toBe(200);
    expect(query.answer.status).toBe(200);
    expect(ready.status).toBe(200);
    // Promptly: a request that had to wait for a connection held by an upload would wait for the
    // pool's 30 s connect timeout and then fail; on a loaded two-core machine an answer may still
    // take a few seconds of CPU.
    expect(streams.seconds).toBeLessThan(10);
    expect(query.seconds).toBeLessThan(10);
    const sessions = await uploadSessions();
    expect(sessions.active + sessions.idleInTx).toBeLessThanOrEqual(uploadPoolSize(SLOTS));

    const answers = await Promise.all(uploads.map((u) => u.answer));
    const tooMany = answers.filter((a) => a.status === 503);
    const timedOut = answers.filter((a) => a.status === 408);
    expect([tooMany.length, timedOut.length]).toEqual([STALLED - SLOTS, SLOTS]);
    for (const a of tooMany) {
      expect(a.body.code).toBe('too_many_uploads');
      expect(Number(a.headers['retry-after'])).toBeGreaterThan(0);
    }
    const ids: string[] = [];
    for (const a of timedOut) {
      expect(a.body.code).toBe('body_timeout');
      ids.push(String(a.body.ingest_id));
    }
    for (const id of ids) expect((await ingestRecord(db.url, id))?.error_code).toBe('body_timeout');
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM strata.ingests WHERE status = 'committed'`);
    expect(Number(rows[0].n)).toBe(1);
    const q = await request(strata.url, '/v1/streams/rig/query?from=2024-01-01T00:00:00Z&to=2025-01-01T00:00:00Z&agg=count&resolution=1d');
    expect((q.body.rows as unknown[][]).reduce((n, row) => n + Number(row[row.length - 1]), 0)).toBe(2000);
    await waitFor('upload sessions to be idle', async () => (await uploadSessions()).idleInTx === 0 || undefined);
    expect(await spoolFiles(dataDir)).toEqual([]);

    // And a new upload is taken at once.
    const after = await request(strata.url, '/v1/streams/rig/ingest', { method: 'POST', body: arrowBody(2, 1000), contentType: ARROW_STREAM });
    expect(after.status).toBe(201);
  }, SPAWNED_TIMEOUT_MS);

  it('a client that sends its headers slowly is cut off by the headers timeout', async () => {
    const { Socket } = await import('node:net');
    const u = new URL(strata.url);
    const sock = new Socket();
    await new Promise<void>((resolve) => sock.connect(Number(u.port), u.hostname, resolve));
    sock.write('POST /v1/streams/rig/ingest HTTP/1.1\r\nHost: x\r\n');
    const closed = await Promise.race([
      new Promise<string>((resolve) => {
        let text = '';
        sock.on('data', (d: Buffer) => { text += d.toString(); });
        sock.on('close', () => resolve(text));
      }),
      new Promise<string>((resolve) => setTimeout(() => resolve('still open'), 55_000)),
    ]);
    sock.destroy();
    expect(closed).toMatch(/^HTTP\/1\.1 408|^$/);
  }, SPAWNED_TIMEOUT_MS);
});
