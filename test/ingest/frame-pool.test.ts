// Record batch messages assembled from the body's pieces live in pooled buffers that the ingest
// hands back once a batch is written; the next batches reuse them. Reuse must never reach a batch
// still in use: the decoder reads ahead while the COPY of the previous batch runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArrowDecoder } from '../../src/ingest/decoders/arrow.ts';
import type { StreamColumn } from '../../src/domain/types.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_STREAM } from '../helpers/fixtures.ts';
import { T0, arrowStream, loggerFrame, times } from '../helpers/polars.ts';

const BATCHES = 8;
const ROWS = 40_000; // about 1.4 MB per batch message: pooled

/** Batches whose values are integers (exact sums) and differ from batch to batch; their expected sums. */
function body(): { bytes: Buffer; valueSum: number; timeSum: bigint } {
  const frames = [];
  let valueSum = 0;
  let timeSum = 0n;
  for (let b = 0; b < BATCHES; b++) {
    const time = times(T0 + BigInt(b * ROWS) * 1000n, ROWS, 1000n);
    const value = Float64Array.from({ length: ROWS }, (_, i) => (b + 1) * 100_000 + i);
    for (const v of value) valueSum += v;
    for (const t of time) timeSum += t;
    frames.push(loggerFrame({ time, value, sample: Array.from({ length: ROWS }, (_, i) => `S-${b}-${i % 5}`) }));
  }
  return { bytes: arrowStream(frames), valueSum, timeSum };
}

/** The body in 64 KiB pieces, as a socket delivers it. */
async function* pieces(bytes: Buffer): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += 65_536) yield bytes.subarray(at, at + 65_536);
}

describe('pooled record batch buffers', () => {
  it('are reused for later batches once released, each batch decoding intact', async () => {
    const { bytes, valueSum } = body();
    const d = await ArrowDecoder.openStream(pieces(bytes), { maxBatchBytes: 1 << 30 });
    const value: StreamColumn = { name: 'value', columnName: 'value', role: 'field', type: 'float8', unit: null, description: null };
    const buffers = new Set<ArrayBufferLike>();
    let sum = 0;
    let batches = 0;
    for await (const batch of d.batches('time', new Map([['value', value]]))) {
      const v = batch.columns[0].values;
      if (v.kind !== 'number') throw new Error(`unexpected ${v.kind}`);
      buffers.add((v.values as Float64Array).buffer);
      for (let i = 0; i < batch.length; i++) sum += v.values[i];
      expect(batch.release).toBeTypeOf('function');
      batch.release?.();
      batches++;
    }
    await d.close();
    expect(batches).toBe(BATCHES);
    expect(sum).toBe(valueSum);
    // Released after each batch, while the next was already read: two buffers take turns.
    expect(buffers.size).toBeLessThan(BATCHES / 2);
  });

  describe('through an upload', () => {
    let t: TestApp;
    beforeAll(async () => { t = await createTestApp(); });
    afterAll(async () => { await t.close(); });

    it('store every batch intact while the decoder reads ahead into reused buffers', async () => {
      const { bytes, valueSum, timeSum } = body();
      const stream = new ReadableStream<Uint8Array>({
        async start(controller) {
          for await (const p of pieces(bytes)) controller.enqueue(p);
          controller.close();
        },
      });
      const res = await t.request('/v1/streams/pooled/ingest', {
        method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: stream, duplex: 'half',
      } as RequestInit);
      expect(res.status, await res.clone().text()).toBe(201);
      const { rows } = await t.db.pool.query<{ n: number; vs: number; ts: string; samples: number }>(
        `SELECT count(*)::int AS n, sum(value) AS vs, sum((extract(epoch FROM "time") * 1000000)::bigint)::text AS ts,
                count(DISTINCT sample)::int AS samples
           FROM strata_data.${(await t.db.pool.query("SELECT table_name FROM strata.streams WHERE name = 'pooled'")).rows[0].table_name}`);
      expect(rows[0]).toEqual({ n: BATCHES * ROWS, vs: valueSum, ts: timeSum.toString(), samples: BATCHES * 5 });
    });
  });
});
