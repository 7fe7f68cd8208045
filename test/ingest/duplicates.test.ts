// Duplicate uploads: by Idempotency-Key (a reused key with another body is a 422 naming the
// original, recorded as rejected), by the body's SHA-256, and by the content's (the body after its
// Content-Encoding is undone), also when the uploads race each other.
import { createHash } from 'node:crypto';
import { gzipSync, brotliCompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_STREAM } from '../helpers/fixtures.ts';
import { T0, arrowStream, loggerFrame, times } from '../helpers/polars.ts';
import { storedRowCount } from '../helpers/stored.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const body = (startUs: bigint, n = 40): Buffer => arrowStream([loggerFrame({ time: times(startUs, n, 1_000_000n) })]);

interface Result { status: number; json: Record<string, unknown> & { ingest: { id: string; sha256: string; content_sha256: string | null } } }

async function upload(stream: string, data: Buffer, headers: Record<string, string> = {}): Promise<Result> {
  const res = await t.request(`/v1/streams/${stream}/ingest`, { method: 'POST', headers: { 'content-type': ARROW_STREAM, ...headers }, body: data });
  return { status: res.status, json: await res.json() as Result['json'] };
}

describe('an Idempotency-Key', () => {
  it('returns the original for the same body, also sent compressed', async () => {
    const plain = body(T0);
    const first = await upload('key-same', plain, { 'idempotency-key': 'k-1' });
    expect(first.status).toBe(201);
    const again = await upload('key-same', plain, { 'idempotency-key': 'k-1' });
    expect(again).toMatchObject({ status: 200, json: { duplicate: true, matched: 'idempotency_key', ingest: { id: first.json.ingest.id } } });
    const gz = await upload('key-same', gzipSync(plain), { 'idempotency-key': 'k-1', 'content-encoding': 'gzip' });
    expect(gz).toMatchObject({ status: 200, json: { duplicate: true, matched: 'idempotency_key', ingest: { id: first.json.ingest.id } } });
    expect(await storedRowCount(t.db, 'key-same')).toBe(40);
  });

  it('reused with a different body is a 422 naming the original, recorded as rejected, nothing stored', async () => {
    const first = await upload('key-reused', body(T0), { 'idempotency-key': 'k-2' });
    expect(first.status).toBe(201);
    const other = body(T0 + 86_400_000_000n, 25);
    const res = await upload('key-reused', other, { 'idempotency-key': 'k-2' });
    expect(res.status).toBe(422);
    const problem = res.json as unknown as { code: string; original_ingest_id: string; ingest_id: string; detail: string };
    expect(problem.code).toBe('idempotency_key_reused');
    expect(problem.original_ingest_id).toBe(first.json.ingest.id);
    expect(problem.detail).toContain(`ingest ${first.json.ingest.id}`);
    const rec = await (await t.request(`/v1/ingests/${problem.ingest_id}`)).json() as Record<string, unknown>;
    expect(rec).toMatchObject({ status: 'rejected', rows: 0, idempotency_key: 'k-2', sha256: sha(other), error: { code: 'idempotency_key_reused' } });
    expect(await storedRowCount(t.db, 'key-reused')).toBe(40);
    // The data itself goes in with a new key.
    expect((await upload('key-reused', other, { 'idempotency-key': 'k-3' })).status).toBe(201);
    expect(await storedRowCount(t.db, 'key-reused')).toBe(65);
  });

  it('reused by two different bodies at the same moment: one is stored, the other refused', async () => {
    await upload('key-race', body(T0 - 86_400_000_000n, 5));
    const bodies = [body(T0, 300), body(T0 + 86_400_000_000n, 300)];
    const results = await Promise.all(bodies.map((b) => upload('key-race', b, { 'idempotency-key': 'k-race' })));
    expect(results.map((r) => r.status).sort(), JSON.stringify(results)).toEqual([201, 422]);
    expect(await storedRowCount(t.db, 'key-race')).toBe(305);
  });
});

describe('without a key', () => {
  it('the same body is stored once (matched by its SHA-256)', async () => {
    const b = body(T0);
    const first = await upload('by-body', b);
    expect(first.json.ingest).toMatchObject({ sha256: sha(b), content_sha256: sha(b) });
    expect(await upload('by-body', b)).toMatchObject({ status: 200, json: { duplicate: true, matched: 'body_sha256', ingest: { id: first.json.ingest.id } } });
  });

  it('the same file sent plain, gzipped and brotli-compressed is stored once (matched by its content)', async () => {
    const plain = body(T0, 1000);
    const gz = gzipSync(plain);
    const first = await upload('by-content', gz, { 'content-encoding': 'gzip' });
    expect(first.status).toBe(201);
    expect(first.json.ingest).toMatchObject({ sha256: sha(gz), content_sha256: sha(plain) });
    const again = await upload('by-content', plain);
    expect(again).toMatchObject({ status: 200, json: { duplicate: true, matched: 'content_sha256', ingest: { id: first.json.ingest.id } } });
    const br = await upload('by-content', brotliCompressSync(plain), { 'content-encoding': 'br' });
    expect(br).toMatchObject({ status: 200, json: { matched: 'content_sha256', ingest: { id: first.json.ingest.id } } });
    // gzip at another level: other bytes, same content
    const gz9 = gzipSync(plain, { level: 1 });
    expect(sha(gz9)).not.toBe(sha(gz));
    expect((await upload('by-content', gz9, { 'content-encoding': 'gzip' })).json).toMatchObject({ matched: 'content_sha256' });
    expect(await storedRowCount(t.db, 'by-content')).toBe(1000);
  });

  it('plain and gzipped copies racing each other are stored once', async () => {
    const plain = body(T0, 5000);
    const results = await Promise.all([
      upload('content-race', plain), upload('content-race', gzipSync(plain), { 'content-encoding': 'gzip' }),
      upload('content-race', gzipSync(plain, { level: 1 }), { 'content-encoding': 'gzip' }),
    ]);
    expect(results.map((r) => r.status).sort(), JSON.stringify(results)).toEqual([200, 200, 201]);
    expect(new Set(results.map((r) => r.json.ingest.id)).size).toBe(1);
    expect(await storedRowCount(t.db, 'content-race')).toBe(5000);
  });

  it('the same content into another stream is stored there too', async () => {
    const b = body(T0, 7);
    expect((await upload('dup-a', b)).status).toBe(201);
    expect((await upload('dup-b', b)).status).toBe(201);
  });
});
