// Every kind of bad upload gets a 4xx with a stable code and a message naming the problem, a
// rejected ingest record with that reason, and stores nothing.
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_FILE, ARROW_STREAM, fixture } from '../helpers/fixtures.ts';
import { T0, arrowFile, arrowStream, loggerFrame, pl, times } from '../helpers/polars.ts';
import { storedRowCount, totalStoredRows } from '../helpers/stored.ts';
import { Message } from 'apache-arrow';

let t: TestApp;
let small: TestApp;
let tight: TestApp;
beforeAll(async () => {
  t = await createTestApp();
  small = await createTestApp({ limits: { maxBodyBytes: 50_000, maxBatchBytes: 20_000 } as never });
  tight = await createTestApp({ limits: { maxInflatedBytes: 1_000_000 } as never });
});
afterAll(async () => { await t.close(); await small.close(); await tight.close(); });

interface Problem { status: number; code: string; detail: string; ingest_id: string | null; request_id: string }

async function rejected(app: TestApp, stream: string, body: Uint8Array, headers: Record<string, string>,
  expectStatus: number, expectCode: string, detailLike?: RegExp): Promise<Problem> {
  const res = await app.request(`/v1/streams/${stream}/ingest`, { method: 'POST', headers, body });
  const text = await res.text();
  expect(res.status, text).toBe(expectStatus);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  const p = JSON.parse(text) as Problem;
  expect(p.code).toBe(expectCode);
  if (detailLike) expect(p.detail).toMatch(detailLike);
  expect(p.request_id).toBeTruthy();
  // the rejected ingest record, with the reason
  expect(p.ingest_id).toMatch(/^\d+$/);
  const rec = await (await app.request(`/v1/ingests/${p.ingest_id}`)).json() as { status: string; error: { code: string; message: string }; rows: number };
  expect(rec.status).toBe('rejected');
  expect(rec.error.code).toBe(expectCode);
  expect(rec.rows).toBe(0);
  expect(await storedRowCount(app.db, stream)).toBe(0);
  return p;
}

const logger = fixture('arrow/logger_us.arrows');
const stream = { 'content-type': ARROW_STREAM };

/** Byte offsets where each IPC message of a stream ends (continuation-framed messages). */
function messageEnds(buf: Buffer): number[] {
  const ends: number[] = [];
  let p = 0;
  while (p < buf.length) {
    const meta = buf.readInt32LE(p + 4);
    if (meta === 0) break;
    const body = Number(Message.decode(buf.subarray(p + 8, p + 8 + meta)).bodyLength);
    p += 8 + meta + body;
    ends.push(p);
  }
  return ends;
}

describe('truncated and malformed Arrow', () => {
  it('refuses a stream cut in the middle of a record batch', async () => {
    const ends = messageEnds(logger);
    const cut = logger.subarray(0, ends[2] - 100);
    await rejected(t, 'cut-mid', cut, stream, 400, 'truncated_arrow', /ends inside record batch/);
  });

  it('refuses a stream cut exactly at a batch boundary (no end-of-stream marker)', async () => {
    const ends = messageEnds(logger);
    const cut = logger.subarray(0, ends[2]);
    await rejected(t, 'cut-boundary', cut, stream, 400, 'truncated_arrow', /without its end-of-stream marker/);
  });

  it('refuses a truncated Arrow file', async () => {
    const file = fixture('arrow/logger_ns_zstd.arrow');
    await rejected(t, 'cut-file', file.subarray(0, file.length - 200), { 'content-type': ARROW_FILE }, 400, 'truncated_arrow');
  });

  it('refuses an empty body', async () => {
    await rejected(t, 'empty', new Uint8Array(0), stream, 400, 'empty_body');
  });

  it('refuses CSV text sent as Arrow, naming the content type to use', async () => {
    await rejected(t, 'garbage', Buffer.from('time,value\n2024-01-01,1\n'.repeat(20)), stream, 415, 'content_type_mismatch', /text\/csv/);
  });

  it('refuses random bytes', async () => {
    const bytes = Buffer.alloc(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + 13) & 0xff;
    await rejected(t, 'random', bytes, stream, 400, 'malformed_arrow');
  });

  it('refuses garbage behind the ARROW1 magic', async () => {
    const body = Buffer.concat([Buffer.from('ARROW1\0\0'), Buffer.alloc(2000, 0x5a), Buffer.from('ARROW1')]);
    await rejected(t, 'fake-file', body, { 'content-type': ARROW_FILE }, 400, 'malformed_arrow');
  });

  it('refuses an Arrow file sent as a stream, saying which content type to use', async () => {
    await rejected(t, 'file-as-stream', fixture('arrow/logger_ns_zstd.arrow'), stream, 415, 'content_type_mismatch', /application\/vnd\.apache\.arrow\.file/);
  });

  it('refuses bytes after the end-of-stream marker', async () => {
    await rejected(t, 'trailing', Buffer.concat([logger, Buffer.from('extra')]), stream, 400, 'malformed_arrow', /after the end-of-stream marker/);
  });

  it('refuses a gzip body sent without Content-Encoding', async () => {
    await rejected(t, 'gz-noenc', gzipSync(logger), stream, 400, 'gzip_without_encoding', /Content-Encoding: gzip/);
  });

  it('refuses a corrupt gzip body', async () => {
    const gz = gzipSync(logger);
    await rejected(t, 'gz-bad', gz.subarray(0, gz.length / 2), { ...stream, 'content-encoding': 'gzip' }, 400, 'malformed_gzip');
  });
});

describe('limits', () => {
  it('refuses a body over the size limit', async () => {
    await rejected(small, 'too-big', logger, stream, 413, 'body_too_large', /50000 bytes/);
  });

  it('refuses a gzip body that inflates past the inflated-size limit (decompression bomb)', async () => {
    const n = 400_000;
    const arrow = arrowStream([loggerFrame({ time: times(T0, n, 0n), sample: Array(n).fill('x'), value: new Float64Array(n) })]);
    const bomb = gzipSync(arrow, { level: 9 });
    expect(arrow.length).toBeGreaterThan(5_000_000);
    expect(bomb.length).toBeLessThan(arrow.length / 50);
    await rejected(tight, 'bomb', bomb, { ...stream, 'content-encoding': 'gzip' }, 413, 'body_too_large', /inflates to more than 1000000/);
  });

  it('refuses a record batch over the batch size limit', async () => {
    const body = arrowStream([loggerFrame({ time: times(T0, 1000, 1_000_000n) })]);
    expect(body.length).toBeLessThan(50_000);
    await rejected(small, 'big-batch', body, stream, 413, 'batch_too_large', /limit is 20000/);
  });
});

describe('content types and encodings', () => {
  it('answers 415 for an unknown content type', async () => {
    await rejected(t, 'csv', Buffer.from('a,b\n'), { 'content-type': 'text/plain' }, 415, 'unsupported_media_type', /application\/vnd\.apache\.arrow\.stream/);
  });

  it('answers 415 for an unsupported Content-Encoding', async () => {
    await rejected(t, 'zstd-enc', logger, { ...stream, 'content-encoding': 'compress' }, 415, 'unsupported_encoding');
  });

  it('accepts gzip with Content-Encoding, hashing the body as received', async () => {
    const gz = gzipSync(logger);
    const res = await t.request('/v1/streams/gz-ok/ingest', { method: 'POST', headers: { ...stream, 'content-encoding': 'gzip' }, body: gz });
    expect(res.status).toBe(201);
    const { ingest } = await res.json() as { ingest: { rows: number; bytes: number; inflated_bytes: number; sha256: string } };
    expect(ingest.rows).toBe(3500);
    expect(ingest.bytes).toBe(gz.length);
    expect(ingest.inflated_bytes).toBe(logger.length);
    const { createHash } = await import('node:crypto');
    expect(ingest.sha256).toBe(createHash('sha256').update(gz).digest('hex'));
  });
});

describe('schema problems', () => {
  it('answers 409 naming the column and both types when a later upload clashes', async () => {
    const first = arrowStream([loggerFrame({ time: times(T0, 10, 1_000_000n) })]);
    expect((await t.request('/v1/streams/clash/ingest', { method: 'POST', headers: stream, body: first })).status).toBe(201);
    const df = pl.DataFrame([
      pl.Series('time', times(T0 + 100_000_000n, 10, 1_000_000n), pl.Int64).cast(pl.Datetime('us', 'UTC')),
      pl.Series('value', Array.from({ length: 10 }, (_, i) => `v${i}`), pl.Utf8),
    ]);
    const before = await storedRowCount(t.db, 'clash');
    const res = await t.request('/v1/streams/clash/ingest', { method: 'POST', headers: stream, body: arrowStream([df]) });
    expect(res.status).toBe(409);
    const p = await res.json() as Problem;
    expect(p.code).toBe('schema_clash');
    expect(p.detail).toMatch(/"value" is text .* but float8 in the stream/);
    expect(await storedRowCount(t.db, 'clash')).toBe(before);
  });

  it('refuses columns of unsupported types, naming each column and its type', async () => {
    const p = await rejected(t, 'types-misc', fixture('arrow/types_misc.arrows'), stream, 422, 'unsupported_type');
    expect(p.detail).toMatch(/"lst" \(LargeList<Int32>\)/);
    expect(p.detail).toMatch(/"fsl" \(FixedSizeList\[3\]<Int32>\)/);
    expect(p.detail).toMatch(/"st" \(Struct/);
  });

  it('refuses uint64 values above the int8 range, naming the column and row', async () => {
    const df = pl.DataFrame([
      pl.Series('time', times(T0, 3, 1_000_000n), pl.Int64).cast(pl.Datetime('us', 'UTC')),
      pl.Series('u64', BigUint64Array.of(1n, 2n ** 64n - 1n, 3n) as unknown as number[], pl.UInt64),
    ]);
    await rejected(t, 'u64', arrowStream([df]), stream, 422, 'unsupported_type', /"u64".*18446744073709551615 at row 1/);
  });

  it('answers 422 listing the candidates when the time column is ambiguous', async () => {
    const df = pl.DataFrame([
      pl.Series('t_start', times(T0, 5, 1_000_000n), pl.Int64).cast(pl.Datetime('us', 'UTC')),
      pl.Series('t_end', times(T0 + 500_000n, 5, 1_000_000n), pl.Int64).cast(pl.Datetime('ns', 'UTC')),
      pl.Series('v', [1, 2, 3, 4, 5], pl.Float64),
    ]);
    const p = await rejected(t, 'two-times', arrowStream([df]), stream, 422, 'ambiguous_time_column');
    expect(p.detail).toMatch(/"t_start" \(Timestamp<MICROSECOND, UTC>\), "t_end" \(Timestamp<NANOSECOND, UTC>\).*time_column=/);
    const chosen = await t.request('/v1/streams/two-times/ingest?time_column=t_end', { method: 'POST', headers: stream, body: arrowStream([df]) });
    expect(chosen.status).toBe(201);
  });

  it('answers 422 listing the columns when there is no timestamp column', async () => {
    await rejected(t, 'no-time', fixture('arrow/no_time.arrows'), stream, 422, 'no_time_column', /"label".*"value".*"epoch_s"/);
  });

  it('answers 422 for a time_column that is not a timestamp column', async () => {
    const res = await t.request('/v1/streams/bad-tc/ingest?time_column=counter', { method: 'POST', headers: stream, body: logger });
    expect(res.status).toBe(422);
    const p = await res.json() as Problem;
    expect(p.code).toBe('no_time_column');
    expect(p.detail).toMatch(/"counter" is not a timestamp column.*"time"/);
  });

  it('refuses a null in the time column, naming the row', async () => {
    const df = pl.DataFrame([
      pl.Series('time', [1_709_251_200_000_000n, null, 1_709_251_202_000_000n].map((v) => (v === null ? null : Number(v) / 1000)), pl.Float64)
        .cast(pl.Int64).cast(pl.Datetime('ms', 'UTC')),
      pl.Series('v', [1, 2, 3], pl.Float64),
    ]);
    await rejected(t, 'null-time', arrowStream([df]), stream, 422, 'invalid_timestamp', /null at row 1/);
  });

  it('answers 404 for create=false on a missing stream', async () => {
    const res = await t.request('/v1/streams/absent/ingest?create=false', { method: 'POST', headers: stream, body: logger });
    expect(res.status).toBe(404);
    const p = await res.json() as Problem;
    expect(p.code).toBe('stream_not_found');
    const rec = await (await t.request(`/v1/ingests/${p.ingest_id}`)).json() as { status: string };
    expect(rec.status).toBe('rejected');
    expect((await t.request('/v1/streams/absent')).status).toBe(404);
  });
});

describe('uploads that store nothing without being errors', () => {
  it('accepts a zero-row stream: 201 with rows 0, nothing stored', async () => {
    const res = await t.request('/v1/streams/zero/ingest', { method: 'POST', headers: stream, body: fixture('arrow/zero_rows.arrows') });
    expect(res.status).toBe(201);
    const { ingest } = await res.json() as { ingest: { rows: number; status: string } };
    expect(ingest).toMatchObject({ rows: 0, status: 'committed' });
    expect(await storedRowCount(t.db, 'zero')).toBe(0);
  });
});

it('leaves no rows of any rejected upload in any stream', async () => {
  const { rows } = await t.db.pool.query(`SELECT count(*)::int AS n FROM strata.ingests WHERE status = 'rejected'`);
  expect(rows[0].n).toBeGreaterThan(15);
  const committed = await t.db.pool.query(`SELECT coalesce(sum(rows), 0)::int AS n FROM strata.ingests WHERE status = 'committed'`);
  expect(await totalStoredRows(t.db)).toBe(committed.rows[0].n);
});

it('stores a gzip Arrow file (spooled, then read through a file handle)', async () => {
  const body = gzipSync(arrowFile([loggerFrame({ time: times(T0, 100, 1_000_000n) }), loggerFrame({ time: times(T0 + 200_000_000n, 100, 1_000_000n) })], 'lz4'));
  const res = await t.request('/v1/streams/gz-file/ingest', { method: 'POST', headers: { 'content-type': ARROW_FILE, 'content-encoding': 'gzip' }, body });
  expect(res.status, await res.clone().text()).toBe(201);
  expect(await storedRowCount(t.db, 'gz-file')).toBe(200);
});

describe('types apache-arrow cannot read', () => {
  it.each(['RunEndEncoded', 'ListView'] as const)('refuses a %s column, naming it', async (kind) => {
    const { schemaOnlyStream } = await import('../helpers/ipc-schema.ts');
    const name = kind === 'RunEndEncoded' ? 'level' : 'spectrum';
    await rejected(t, `odd-${kind.toLowerCase()}`, schemaOnlyStream(kind), stream, 422, 'unsupported_type', new RegExp(`"${name}" has type ${kind}`));
  });
});
