// What an ingest records (hash, filename, provenance, versions, chunks), idempotent retries, and
// a client that disconnects mid-upload, against a real listening server.
import http from 'node:http';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../src/modules.ts';
import { loadConfig } from '../../src/config/index.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { ARROW_STREAM, fixture } from '../helpers/fixtures.ts';
import { T0, arrowStream, loggerFrame, times } from '../helpers/polars.ts';
import { storedRowCount } from '../helpers/stored.ts';
import { waitFor } from '../helpers/clock.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

const logger = fixture('arrow/logger_us.arrows');

describe('the ingest record', () => {
  it('holds the body hash, filename, client provenance, schema metadata, versions and chunks', async () => {
    const provenance = { instrument: 'spectrometer-7', operator: 'A. Lovelace', experiment: 'EXP-42', software: { name: 'acq', version: '3.1' } };
    const res = await t.request('/v1/streams/rec/ingest', {
      method: 'POST',
      headers: { 'content-type': ARROW_STREAM, 'content-disposition': 'attachment; filename="run 12 (final).arrows"', 'strata-provenance': JSON.stringify(provenance) },
      body: logger,
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toMatch(/^\/v1\/ingests\/\d+$/);
    const { ingest } = await res.json() as { ingest: Record<string, unknown> };
    expect(ingest).toMatchObject({
      status: 'committed', stream: 'rec', format: 'arrow-stream', bytes: logger.length, rows: 3500,
      sha256: createHash('sha256').update(logger).digest('hex'), filename: 'run 12 (final).arrows',
      provenance, instrument: 'spectrometer-7', chunks: ['s1_rec_p20240301'], archived: true,
    });
    expect(ingest.versions).toMatchObject({ strata: expect.any(String), node: process.version, 'apache-arrow': expect.any(String), postgresql: expect.stringMatching(/^1[4-9]/) });
    expect((ingest.file_metadata as { arrow_schema: unknown[] }).arrow_schema).toHaveLength(7);
    const stored = await (await t.request(`/v1/ingests/${ingest.id as string}`)).json();
    expect(stored).toEqual(ingest);
  });

  it('rejects provenance that is not JSON, too deep, or of the wrong shape — and stores nothing', async () => {
    const deep = `${'{"a":'.repeat(40)}1${'}'.repeat(40)}`;
    for (const [header, re] of [['not json', /not valid JSON/], [deep, /deeper than 16/], ['{"instrument": 5}', /instrument/], ['[1,2]', /must be object/]] as const) {
      const res = await t.request('/v1/streams/prov-bad/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM, 'strata-provenance': header }, body: logger });
      expect(res.status).toBe(400);
      const p = await res.json() as { code: string; detail: string };
      expect(p.code).toBe('invalid_provenance');
      expect(p.detail).toMatch(re);
    }
    expect(await storedRowCount(t.db, 'prov-bad')).toBe(0);
  });

  it('returns the original ingest for a repeated Idempotency-Key, storing nothing twice', async () => {
    const a = arrowStream([loggerFrame({ time: times(T0, 50, 1_000_000n) })]);
    const b = arrowStream([loggerFrame({ time: times(T0 + 3_600_000_000n, 50, 1_000_000n) })]);
    const first = await t.request('/v1/streams/idem/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM, 'idempotency-key': 'upload-0001' }, body: a });
    expect(first.status).toBe(201);
    const id = ((await first.json()) as { ingest: { id: string } }).ingest.id;
    // a retry with the same key and body returns the original
    const retry = await t.request('/v1/streams/idem/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM, 'idempotency-key': 'upload-0001' }, body: a });
    expect(retry.status).toBe(200);
    expect(await retry.json()).toMatchObject({ duplicate: true, matched: 'idempotency_key', ingest: { id } });
    // the same key with another body is refused, naming the original: the new data is never dropped silently
    const reused = await t.request('/v1/streams/idem/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM, 'idempotency-key': 'upload-0001' }, body: b });
    expect(reused.status).toBe(422);
    expect(await reused.json()).toMatchObject({ code: 'idempotency_key_reused', original_ingest_id: id });
    expect(await storedRowCount(t.db, 'idem')).toBe(50);
  });

  it('stores identical bodies sent at the same moment once', async () => {
    const body = arrowStream([loggerFrame({ time: times(T0, 200, 1_000_000n) })]);
    const results = await Promise.all([1, 2, 3].map(async () => {
      const r = await t.request('/v1/streams/same/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body });
      return { status: r.status, body: await r.json() as { ingest: { id: string } } };
    }));
    expect(results.map((r) => r.status).sort(), JSON.stringify(results)).toEqual([200, 200, 201]);
    const ids = new Set(results.map((r) => r.body.ingest.id));
    expect(ids.size).toBe(1);
    expect(await storedRowCount(t.db, 'same')).toBe(200);
  });
});

describe('a client that disconnects mid-upload', () => {
  let db: TestDb;
  let server: RunningServer;
  let dataDir: string;
  beforeAll(async () => {
    db = await createTestDb();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'strata-srv-'));
    const config = { ...loadConfig({ STRATA_DATA_DIR: dataDir }), databaseUrl: db.url, port: 0, host: '127.0.0.1', adminKey: 'strata_test_disconnect_admin_key', jobs: false };
    server = await startServer(config, { log: silentLogger(), quiet: true });
  });
  afterAll(async () => {
    await server.stop();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('leaves nothing behind, records the ingest as rejected, and the server keeps serving', async () => {
    const body = arrowStream([0, 1, 2, 3].map((i) => loggerFrame({ time: times(T0 + BigInt(i) * 1_000_000_000n, 20_000, 1000n) })));
    const url = new URL('/v1/streams/cut/ingest', server.url);
    await new Promise<void>((resolve) => {
      const req = http.request(url, { method: 'POST', headers: { authorization: 'Bearer strata_test_disconnect_admin_key', 'content-type': ARROW_STREAM, 'content-length': body.length } });
      req.on('error', () => resolve());
      req.write(body.subarray(0, Math.floor(body.length * 0.7)), () => {
        setTimeout(() => { req.destroy(); resolve(); }, 300);
      });
    });
    const rec = await waitFor('the rejected ingest record', async () => {
      const { rows } = await db.pool.query(`SELECT status, error_code FROM strata.ingests WHERE stream_name = 'cut'`);
      return rows[0] ? { status: rows[0].status as string, error: { code: rows[0].error_code as string } } : undefined;
    });
    expect(rec).toEqual({ status: 'rejected', error: { code: 'client_disconnected' } });
    expect(await storedRowCount(db, 'cut')).toBe(0);
    // The upload's transaction ends (rolled back) whether or not the record was written first.
    await waitFor('no session left idle in a transaction', async () => {
      const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'`, [db.name]);
      return rows[0].n === 0;
    });
    const health = await fetch(new URL('/healthz', server.url));
    expect(health.status).toBe(200);
  });
});
