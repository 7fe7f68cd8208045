// Retracting an ingest whose raw rows retention already dropped: the rollup buckets over the
// dropped range cannot be rebuilt without the rest of their rows, so they keep what they hold;
// the part of the ingest still in raw chunks is taken out of the rollups as usual. No other
// sample's history is lost.
import { expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { FakeClock, onClock } from '../helpers/clock.ts';
import { createLabStream, expectSame, reference, refresh } from '../helpers/rollups.ts';
import { json } from '../helpers/uploads.ts';
import { DAY_US, aggregated, day, loadDays, reportOf, runRetention } from './helpers.ts';

const clock = new FakeClock(Number(day(36) / 1000n) + 3600_000); // day 36, 01:00
let t: TestApp;
onClock(clock, async () => { t = await createTestApp(); }, () => t.close());

it('keeps the buckets over dropped raw rows, and takes the rest of the ingest out', async () => {
  await createLabStream(t, 'rx', { rollups: ['1h'], retention: { raw: '30 days', '1h': null } });
  // Days 1–10 in two ingests: days 1–5 and 6–10; the first one's days 1–5 expire, 6–10 stay.
  const [early] = await loadDays(t, 'rx', 1, 10, 5);
  const mixed = (await loadDays(t, 'rx', 4, 4, 4))[0]; // days 4–7: partly expired
  await refresh(t, 'rx');
  const before = await aggregated(t, 'rx', '1h', day(1), day(11));
  const run = await runRetention(t, 'rx');
  expect(reportOf(run, 'rx').dropped.length).toBe(5); // days 1–5
  expect(await aggregated(t, 'rx', '1h', day(1), day(11))).toEqual(before);

  const res = await t.request(`/v1/ingests/${mixed}/retract`, json({ method: 'POST', body: { reason: 'calibration was off' } }));
  expect(res.status, await res.clone().text()).toBe(200);
  await refresh(t, 'rx');
  const after = await aggregated(t, 'rx', '1h', day(1), day(11));
  // Days 1–5 (dropped raw rows): unchanged, the retracted rows of days 4–5 included.
  const early5 = (b: typeof before): unknown[][] => b.rows.filter((r) => Date.parse(r[0] as string) * 1000 < Number(day(6)));
  expect(early5(after)).toEqual(early5(before));
  // Days 6–10 (raw rows kept): exactly the raw aggregation without the retracted rows.
  const ref = await reference(t, 'rx', { from: day(6), to: day(11), buckets: { kind: 'fixed', widthUs: DAY_US / 24n }, groupBy: true });
  const late = await aggregated(t, 'rx', '1h', day(6), day(11));
  expectSame(late, ref, { groupBy: true });
  expect(late.rows.length).toBeGreaterThan(0);
  void early;
});
