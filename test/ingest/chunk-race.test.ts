// Regression: an upload whose COPY is already running needs a chunk that another upload created
// (and committed) in the meantime. Its own ensureChunks creates nothing, yet its transaction was
// routed before the chunk existed; it must still see the chunk (once: "a row fell outside every
// chunk" — two concurrent first uploads into a new stream hit it).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { defaultLimits } from '../../src/config/index.ts';
import type { ColumnBatch } from '../../src/domain/types.ts';
import { RowWriter } from '../../src/ingest/write-rows.ts';
import { ensureChunks } from '../../src/partitions/chunks.ts';
import { getStream } from '../../src/streams/catalog.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_STREAM } from '../helpers/fixtures.ts';
import { DAY_US, T0, arrowStream, loggerFrame, times } from '../helpers/polars.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

function timesOnly(start: bigint, n: number): ColumnBatch {
  const time = times(start, n, 1_000_000n);
  return { length: n, time, minTime: time[0], maxTime: time[n - 1], columns: [] };
}

it('a running upload sees a chunk that a concurrent upload created after its COPY began', async () => {
  const seed = await t.request('/v1/streams/race/ingest', {
    method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: arrowStream([loggerFrame({ time: times(T0, 10, 1_000_000n) })]),
  });
  expect(seed.status).toBe(201);
  const ingestId = BigInt(((await seed.json()) as { ingest: { id: string } }).ingest.id);
  const stream = await getStream(t.db.pool, 'race');
  if (!stream) throw new Error('no stream');
  const tx = await t.db.pool.connect();
  try {
    await tx.query('BEGIN');
    const writer = new RowWriter(t.db, tx, stream, ingestId, defaultLimits);
    await writer.write(timesOnly(T0 + DAY_US, 100)); // creates day 1, COPY running
    // Another upload makes day 2 and commits, while this COPY is open.
    const made = await ensureChunks(t.db, { streamId: stream.id, tableName: stream.tableName, chunkIntervalUs: stream.chunkIntervalUs },
      T0 + 2n * DAY_US, T0 + 2n * DAY_US, 10);
    expect(made).toHaveLength(1);
    await writer.write(timesOnly(T0 + 2n * DAY_US, 100));
    expect(await writer.finish()).toBe(200);
    await tx.query('ROLLBACK');
  } finally {
    tx.release();
  }
});
