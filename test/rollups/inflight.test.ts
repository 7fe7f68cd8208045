// An upload whose rows were above every watermark when it began is not followed per tag set (only
// its time span is kept). If a refresh moves a watermark past those rows while the upload is
// still open, the upload's commit must invalidate them, for every tag set, so that the answer
// stays equal to the raw rows before and after the next refresh.
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { FakeClock, onClock } from '../helpers/clock.ts';
import { T0 } from '../helpers/polars.ts';
import { ALL_AGGS, HOUR_US, createLabStream, expectSame, ingestLab, labRows, reference, refresh, type QueryBody } from '../helpers/rollups.ts';
import { registerIngestObserver } from '../../src/ingest/observers.ts';
import { formatMicros } from '../../src/domain/time.ts';
import { parseInterval } from '../../src/domain/interval.ts';

let t: TestApp;
const clock = new FakeClock(Number((T0 + 2n * HOUR_US) / 1000n)); // day 1, 02:00
onClock(clock, async () => { t = await createTestApp(); }, () => t.close());

// An upload into a gated stream waits once it has begun — after the rollups observer has read
// the watermarks — until the test opens the gate.
let gate: { stream: string; entered: () => void; open: Promise<void> } | null = null;
registerIngestObserver((stream) => ({
  async beforeRows() {
    const g = gate;
    if (!g || g.stream !== stream.name) return;
    gate = null;
    g.entered();
    await g.open;
  },
}));

async function api(stream: string, resolution: string, from: bigint, to: bigint): Promise<QueryBody> {
  const res = await t.request(`/v1/streams/${stream}/query?resolution=${resolution}&from=${formatMicros(from)}&to=${formatMicros(to)}&agg=${ALL_AGGS.join(',')}`);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as QueryBody;
}

async function expectEqualsRaw(stream: string, from: bigint, to: bigint): Promise<Record<string, string[]>> {
  const served: Record<string, string[]> = {};
  for (const resolution of ['1m', '1h', '5m']) {
    const body = await api(stream, resolution, from, to);
    expectSame(body, await reference(t, stream, { from, to, buckets: { kind: 'fixed', widthUs: parseInterval(resolution) as bigint } }));
    served[resolution] = body.served.map((s) => s.source);
  }
  return served;
}

describe('an upload open while the refresh moves the watermark past its rows', () => {
  const from = T0;
  const to = T0 + 6n * HOUR_US;

  beforeAll(async () => {
    await createLabStream(t, 'open', { rollups: ['1m', '1h'] });
    // 00:00–01:00 of two samples, refreshed up to 01:59 (now 02:00, lag 1 minute).
    await ingestLab(t, 'open', labRows(31, T0, 400, 9_000_000n, ['A', 'B']));
    await refresh(t, 'open');
  });

  it('invalidates what the refresh passed, for every tag set, and answers exactly before and after the next refresh', async () => {
    const { rows: wm } = await t.db.pool.query<{ w: Date }>(
      `SELECT max(l.watermark) AS w FROM strata.rollup_levels l JOIN strata.streams s ON s.id = l.stream_id WHERE s.name = 'open'`);
    expect(wm[0].w.getTime()).toBe(Number((T0 + 2n * HOUR_US - 60_000_000n) / 1000n));

    // Readings of sample B from 02:10 to 03:00: above every watermark when the upload begins.
    const late = labRows(32, T0 + 2n * HOUR_US + 600_000_000n, 200, 14_000_000n, ['B']);
    expect(late.time[late.time.length - 1] < T0 + 3n * HOUR_US).toBe(true);
    let entered!: () => void;
    let open!: () => void;
    const inside = new Promise<void>((resolve) => { entered = resolve; });
    gate = { stream: 'open', entered, open: new Promise<void>((resolve) => { open = resolve; }) };
    const uploading = ingestLab(t, 'open', late);
    try {
      await inside;
      // Meanwhile the clock reaches 05:00 and the refresh moves the watermarks to 04:59 and 04:00.
      clock.set(Number((T0 + 5n * HOUR_US) / 1000n));
      await refresh(t, 'open');
    } finally {
      open();
    }
    await uploading;

    const { rows: inv } = await t.db.pool.query<{ level: string; tag_values: unknown; s: Date; e: Date }>(
      `SELECT i.level, i.tag_values, i.range_start AS s, i.range_end AS e FROM strata.rollup_invalidations i
         JOIN strata.streams s ON s.id = i.stream_id WHERE s.name = 'open' ORDER BY i.level, i.range_start`);
    const minute = (us: bigint): string => new Date(Number(us / 1000n)).toISOString();
    const first = late.time[0];
    const last = late.time[late.time.length - 1];
    expect(inv.map((r) => [r.level, r.tag_values, r.s.toISOString(), r.e.toISOString()])).toEqual([
      ['1h', null, minute(T0 + 2n * HOUR_US), minute(T0 + 3n * HOUR_US)],
      ['1m', null, minute((first / 60_000_000n) * 60_000_000n), minute((last / 60_000_000n + 1n) * 60_000_000n)],
    ]);

    // Before the refresh the invalidated buckets come from finer data; after it, from the levels.
    await expectEqualsRaw('open', from, to);
    await refresh(t, 'open');
    const served = await expectEqualsRaw('open', from, to);
    expect(served['1h'][0]).toBe('1h');
    const { rows: left } = await t.db.pool.query('SELECT 1 FROM strata.rollup_invalidations i JOIN strata.streams s ON s.id = i.stream_id WHERE s.name = $1', ['open']);
    expect(left).toEqual([]);
  });
});
