// Retention while the rollup refresh is behind: the levels may materialise only up to
// now − STRATA_ROLLUP_LAG (50 days here), so no raw chunk whose range a level that outlives it
// has not absorbed is dropped — it is kept, the run record saying which level and why — and once
// the refresh can reach it (time moves on), the next run drops it. The answers through the API
// equal the raw aggregation throughout. Also a coarse level whose bucket is not complete yet
// (1w) keeps the raw days of that week though the finer level has absorbed them.
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { FakeClock, onClock } from '../helpers/clock.ts';
import { createLabStream, expectSame, reference } from '../helpers/rollups.ts';
import { verifyAudit } from '../../src/audit/log.ts';
import {
  DAY_US, HOUR_US, PER_DAY, type Run, aggregated, auditOf, day, expectRegistryMatchesCatalog, iso, loadDays, rawRows,
  registry, reportOf, runRetention, servedBy,
} from './helpers.ts';

const LAG_US = 50n * DAY_US;
const clock = new FakeClock(Number(day(91) / 1000n)); // the end of day 90

let t: TestApp;
onClock(clock, async () => { t = await createTestApp({ rollupLagUs: LAG_US }); }, () => t.close());

const days = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => iso(day(from + i)));

async function watermarks(stream: string): Promise<Record<string, string | null>> {
  const { rows } = await t.db.pool.query<{ level: string; w: Date | null }>(
    'SELECT l.level, l.watermark AS w FROM strata.rollup_levels l JOIN strata.streams s ON s.id = l.stream_id WHERE s.name = $1', [stream]);
  return Object.fromEntries(rows.map((r) => [r.level, r.w === null ? null : iso(BigInt(r.w.getTime()) * 1000n)]));
}

/** Every dropped raw chunk lies wholly below the watermark of every level, with no invalidation left over it. */
async function expectDroppedOnlyAbsorbed(stream: string): Promise<void> {
  const w = await watermarks(stream);
  for (const c of (await registry(t, stream)).filter((x) => x.state === 'dropped')) {
    for (const [level, mark] of Object.entries(w)) {
      expect(mark !== null && Date.parse(mark) * 1000 >= Number(c.end_us), `${c.table_name} vs ${level} at ${mark}`).toBe(true);
    }
  }
  const { rows } = await t.db.pool.query(
    `SELECT 1 FROM strata.rollup_invalidations i JOIN strata.streams s ON s.id = i.stream_id WHERE s.name = $1`, [stream]);
  expect(rows).toHaveLength(0);
}

describe('a level whose bucket is not complete yet', () => {
  let run: Run;

  beforeAll(async () => {
    // Weeks are aligned to the epoch: they start on Thursdays (day 7 = 2024-03-07, …, day 35, day 42).
    await createLabStream(t, 'weekly', { rollups: ['1d', '1w'], retention: { raw: '30 days' } });
    await loadDays(t, 'weekly', 1, 60);
    run = await runRetention(t, 'weekly');
  });

  it('keeps the raw days of the week 1w has not materialised, though 1d has absorbed them', async () => {
    expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
    // now − lag = day 41 (a Wednesday): 1d reaches day 41, 1w only the week starting day 35.
    expect(await watermarks('weekly')).toEqual({ '1d': iso(day(41)), '1w': iso(day(35)) });
    const { dropped, skipped } = reportOf(run, 'weekly');
    expect(dropped.map((d) => d.from)).toEqual(days(1, 34));
    expect(skipped.map((s) => s.from)).toEqual(days(35, 60));
    for (const s of skipped.slice(0, 6)) { // days 35–40: only 1w is missing
      expect(s.reason).toContain(`rollup level 1w has not absorbed ${s.from} – ${s.to}`);
      expect(s.reason).toContain(`materialised only up to ${iso(day(35))}`);
      expect(s.reason).not.toContain('rollup level 1d');
    }
    for (const s of skipped.slice(6)) { // days 41–60: neither
      expect(s.reason).toContain('rollup level 1d has not absorbed');
      expect(s.reason).toContain(`materialised only up to ${iso(day(41))}`);
      expect(s.reason).toContain('rollup level 1w has not absorbed');
    }
    expect(await rawRows(t, 'weekly', day(35), day(61))).toBe(26 * PER_DAY);
    await expectDroppedOnlyAbsorbed('weekly');
    await expectRegistryMatchesCatalog(t, 'weekly');
  });
});

describe('raw 30 days, levels forever, the refresh 50 days behind', () => {
  let hourRef: (string | null)[][];
  let dayRef: (string | null)[][];
  let first: Run;

  beforeAll(async () => {
    await createLabStream(t, 'lag90', { retention: { raw: '30 days' } }); // levels 1m, 1h, 1d, all kept forever
    await loadDays(t, 'lag90', 1, 90);
    hourRef = await reference(t, 'lag90', { from: day(1), to: day(91), buckets: { kind: 'fixed', widthUs: HOUR_US }, groupBy: true });
    dayRef = await reference(t, 'lag90', { from: day(1), to: day(91), buckets: { kind: 'fixed', widthUs: DAY_US }, groupBy: true });
    // The rollup job has not run: retention itself asks the levels to absorb what it would drop.
    expect(await watermarks('lag90')).toEqual({ '1m': null, '1h': null, '1d': null });
    first = await runRetention(t, 'lag90');
  });

  it('drops only the raw chunks the levels could absorb, and says why it keeps the others', async () => {
    expect(first.outcome, JSON.stringify(first)).toBe('succeeded');
    expect(await watermarks('lag90')).toEqual({ '1m': iso(day(41)), '1h': iso(day(41)), '1d': iso(day(41)) });
    const { dropped, skipped } = reportOf(first, 'lag90');
    expect(first.chunks).toBe(40);
    expect(dropped.map((d) => d.from)).toEqual(days(1, 40));
    expect(skipped.map((s) => s.from)).toEqual(days(41, 60));
    for (const s of skipped) {
      for (const level of ['1m', '1h', '1d']) expect(s.reason).toContain(`rollup level ${level} has not absorbed ${s.from} – ${s.to}`);
      expect(s.reason).toContain(`materialised only up to ${iso(day(41))}`);
    }
    expect(await rawRows(t, 'lag90', day(1), day(41))).toBe(0);
    expect(await rawRows(t, 'lag90', day(41), day(61))).toBe(20 * PER_DAY);
    await expectDroppedOnlyAbsorbed('lag90');
    await expectRegistryMatchesCatalog(t, 'lag90');
  });

  it('answers 1h and 1d over all 90 days as the raw aggregation did, the levels serving the dropped days', async () => {
    const hour = await aggregated(t, 'lag90', '1h', day(1), day(91));
    expectSame(hour, hourRef, { groupBy: true });
    expect(servedBy(hour)[0]).toEqual(['1h', iso(day(1)), iso(day(41))]);
    expect(servedBy(hour).at(-1)).toEqual(['raw', iso(day(41)), iso(day(91))]);
    expectSame(await aggregated(t, 'lag90', '1d', day(1), day(91)), dayRef, { groupBy: true });
  });

  it('keeps them until the refresh can reach them, then drops them', async () => {
    expect((await runRetention(t, 'lag90')).chunks).toBe(0); // nothing has changed
    clock.advance(20 * 24 * 3_600_000); // now − lag = day 61; the raw cutoff moves to day 81
    const later = await runRetention(t, 'lag90');
    expect(later.outcome, JSON.stringify(later)).toBe('succeeded');
    expect(await watermarks('lag90')).toEqual({ '1m': iso(day(61)), '1h': iso(day(61)), '1d': iso(day(61)) });
    const { dropped, skipped } = reportOf(later, 'lag90');
    expect(dropped.map((d) => d.from)).toEqual(days(41, 60));
    expect(skipped.map((s) => s.from)).toEqual(days(61, 80));
    for (const s of skipped) expect(s.reason).toContain(`materialised only up to ${iso(day(61))}`);
    expect(await rawRows(t, 'lag90', day(1), day(61))).toBe(0);
    expect(await rawRows(t, 'lag90', day(61), day(91))).toBe(30 * PER_DAY);
    await expectDroppedOnlyAbsorbed('lag90');
    await expectRegistryMatchesCatalog(t, 'lag90');
    const hour = await aggregated(t, 'lag90', '1h', day(1), day(91));
    expectSame(hour, hourRef, { groupBy: true });
    expect(servedBy(hour)[0]).toEqual(['1h', iso(day(1)), iso(day(61))]);
    const drops = await auditOf(t, 'retention.drop', 'lag90');
    expect(drops).toHaveLength(60);
    for (const d of drops) expect(d.details).toMatchObject({ level: 'raw', row_count: PER_DAY, absorbed_by: ['1m', '1h', '1d'] });
    expect(await verifyAudit(t.db.pool)).toMatchObject({ ok: true });
  });
});
