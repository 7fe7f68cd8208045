// Tiered retention with the rollups module, on 90 days of data (a reading every quarter of an
// hour) and a moved clock: raw kept 30 days and 1h forever drops exactly the expired raw chunks
// (audited, registered, matching pg_inherits) while the 1h series through the API stays exactly
// what it was; a legal hold keeps what it covers; buckets invalidated by late rows are recomputed
// before the raw rows under them go; each rollup level's chunks go under that level's own policy.
// Retention with the refresh behind is in rollups-behind.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { FakeClock, onClock } from '../helpers/clock.ts';
import { type QueryBody, createLabStream, expectSame, ingestLab, reference, refresh } from '../helpers/rollups.ts';
import { json } from '../helpers/uploads.ts';
import { verifyAudit } from '../../src/audit/log.ts';
import {
  DAY_US, HOUR_US, PER_DAY, type Run, aggregated, auditOf, day, expectRegistryMatchesCatalog, iso, levelTables, loadDays,
  quarterHourly, rawRows, registry, reportOf, runRetention, servedBy,
} from './helpers.ts';

const NOW_US = day(91); // the end of day 90
const clock = new FakeClock(Number(NOW_US / 1000n));

let t: TestApp;
onClock(clock, async () => { t = await createTestApp(); }, () => t.close());

interface Ingest { id: string; status: string; rows: number; sha256: string; expiry: { rows_expired: number; all_expired: boolean; expired_at: string | null; chunks_dropped: string[] } | null }

async function ingest(id: string): Promise<Ingest> {
  return (await t.request(`/v1/ingests/${id}`)).json() as Promise<Ingest>;
}

const hourly = { kind: 'fixed', widthUs: HOUR_US } as const;

/** Rows of a grouped aggregated answer whose bucket lies in [from, to). */
function within(body: QueryBody, from: bigint, to: bigint): unknown[][] {
  return body.rows.filter((r) => {
    const us = BigInt(Date.parse(r[0] as string)) * 1000n;
    return us >= from && us < to;
  });
}

describe('retention: raw 30 days, 1h forever, legal hold on days 10–12', () => {
  let ids: string[];
  let hourBefore: QueryBody;
  let dayBefore: QueryBody;
  /** The raw aggregation per hour, while all the raw rows were there. */
  let hourRef: (string | null)[][];
  let run: Run;
  let holdId: number;

  beforeAll(async () => {
    // Default levels 1m, 1h and 1d; 1m and 1d are not named in the policy, so kept forever too.
    await createLabStream(t, 'lab90', { retention: { raw: '30 days', '1h': null } });
    ids = await loadDays(t, 'lab90', 1, 90);
    expect(ids).toHaveLength(9);
    // The rollups keep up: their job has run.
    await refresh(t, 'lab90');
    hourBefore = await aggregated(t, 'lab90', '1h', day(1), day(91));
    dayBefore = await aggregated(t, 'lab90', '1d', day(1), day(91));
    hourRef = await reference(t, 'lab90', { from: day(1), to: day(91), buckets: hourly, groupBy: true });
    const hold = await t.request('/v1/holds', json({ method: 'POST', body: { stream: 'lab90', from: iso(day(10)), to: iso(day(13)), reason: 'litigation 2024-17' } }));
    expect(hold.status).toBe(201);
    holdId = ((await hold.json()) as { id: number }).id;
    run = await runRetention(t, 'lab90');
  });

  it('answered the 1h query from the 1h level before the drop, equal to the raw aggregation', async () => {
    expectSame(hourBefore, hourRef, { groupBy: true });
    expect(servedBy(hourBefore)[0]).toEqual(['1h', iso(day(1)), iso(NOW_US - HOUR_US)]);
    expect(hourBefore.rows.length).toBeGreaterThan(90 * 24 * 2);
  });

  it('drops every raw chunk older than 30 days except those the hold covers, and no rollup chunk', async () => {
    expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
    expect(run.chunks).toBe(57);
    expect(run.rows).toBe(57 * PER_DAY);
    const { dropped, skipped } = reportOf(run, 'lab90');
    expect(dropped.map((d) => d.from)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1).filter((d) => d < 10 || d > 12).map((d) => iso(day(d))));
    expect(dropped.every((d) => d.level === 'raw' && d.rows === PER_DAY)).toBe(true);
    expect(skipped.map((s) => s.from)).toEqual([day(10), day(11), day(12)].map(iso));
    for (const s of skipped) expect(s.reason).toContain(`legal hold ${holdId} ("litigation 2024-17")`);
    expect(await rawRows(t, 'lab90', day(1), day(2))).toBe(0);
    expect(await rawRows(t, 'lab90', day(9), day(10))).toBe(0);
    expect(await rawRows(t, 'lab90', day(10), day(13))).toBe(3 * PER_DAY);
    expect(await rawRows(t, 'lab90', day(61), day(91))).toBe(30 * PER_DAY);
    for (const level of ['1m', '1h', '1d']) {
      const reg = await registry(t, 'lab90', level);
      expect(reg.length, level).toBeGreaterThan(0);
      expect(reg.every((c) => c.state === 'active'), level).toBe(true);
    }
  });

  it('answers the 1h query over all 90 days exactly as before the drop, from the 1h level', async () => {
    const after = await aggregated(t, 'lab90', '1h', day(1), day(91));
    expect(after.columns).toEqual(hourBefore.columns);
    expect(after.rows).toEqual(hourBefore.rows);
    expect(after.served).toEqual(hourBefore.served);
    // The dropped days are answered by the level alone.
    expect(servedBy(await aggregated(t, 'lab90', '1h', day(1), day(61)))).toEqual([['1h', iso(day(1)), iso(day(61))]]);
    const daily = await aggregated(t, 'lab90', '1d', day(1), day(91));
    expect(daily.rows).toEqual(dayBefore.rows);
    expect(daily.served).toEqual(dayBefore.served);
  });

  it('keeps the chunk registry in agreement with pg_inherits at every level, with each drop recorded', async () => {
    await expectRegistryMatchesCatalog(t, 'lab90');
    const reg = await registry(t, 'lab90');
    expect(reg).toHaveLength(90);
    const dropped = reg.filter((c) => c.state === 'dropped');
    expect(dropped).toHaveLength(57);
    for (const c of dropped) {
      expect(c.end_us <= NOW_US - 30n * DAY_US).toBe(true);
      expect(c.row_count).toBe(String(PER_DAY));
      expect(Number(c.dropped_by_run)).toBe(run.id);
      expect(c.dropped_at?.getTime()).toBe(Number(NOW_US / 1000n));
    }
    expect(dropped.map((c) => c.start_us)).not.toContain(day(10));
  });

  it('writes an audit entry per drop naming the chunk, its range, its rows, the levels that absorbed it and the ingests', async () => {
    const drops = await auditOf(t, 'retention.drop', 'lab90');
    expect(drops).toHaveLength(57);
    const dropped = (await registry(t, 'lab90')).filter((c) => c.state === 'dropped');
    expect(drops.map((d) => d.details.chunk)).toEqual(dropped.map((c) => c.table_name));
    for (const d of drops) {
      expect(d.subject).toBe(`chunk:${d.details.chunk}`);
      expect(d.details).toMatchObject({ level: 'raw', row_count: PER_DAY, run_id: run.id, policy: '30 days', cutoff: iso(NOW_US - 30n * DAY_US), absorbed_by: ['1m', '1h', '1d'] });
    }
    expect(drops[0].details).toMatchObject({ range_start: iso(day(1)), range_end: iso(day(2)), ingests: [ids[0]], ingest_rows: { [ids[0]]: PER_DAY } });
    expect(await verifyAudit(t.db.pool)).toMatchObject({ ok: true });
  });

  it('marks ingests whose rows have all expired, and keeps their records', async () => {
    const whole = await ingest(ids[2]); // days 21–30: all dropped
    expect(whole.status).toBe('committed');
    expect(whole.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(whole.expiry).toMatchObject({ rows_expired: 10 * PER_DAY, all_expired: true, expired_at: clock.now().toISOString() });
    expect(whole.expiry?.chunks_dropped).toHaveLength(10);
    const partial = await ingest(ids[0]); // days 1–10: day 10 is held
    expect(partial.expiry).toMatchObject({ rows_expired: 9 * PER_DAY, all_expired: false, expired_at: null });
    expect((await ingest(ids[6])).expiry).toBeNull(); // days 61–70: untouched
  });

  it('drops the held chunks once the hold is released, the 1h series still unchanged', async () => {
    const again = await runRetention(t, 'lab90');
    expect(again.chunks).toBe(0);
    expect(reportOf(again, 'lab90').skipped).toHaveLength(3);
    const rel = await t.request(`/v1/holds/${holdId}`, json({ method: 'DELETE', body: { reason: 'case closed' } }));
    expect(rel.status).toBe(200);
    const after = await runRetention(t, 'lab90');
    expect(after.chunks).toBe(3);
    expect(await rawRows(t, 'lab90', day(1), day(61))).toBe(0);
    expect((await ingest(ids[0])).expiry).toMatchObject({ rows_expired: 10 * PER_DAY, all_expired: true });
    const hour = await aggregated(t, 'lab90', '1h', day(1), day(91));
    expect(hour.rows).toEqual(hourBefore.rows);
    expect(hour.served).toEqual(hourBefore.served);
    await expectRegistryMatchesCatalog(t, 'lab90');
  });

});

describe('retention over buckets that late rows invalidated', () => {
  let ref: (string | null)[][];
  let run: Run;

  beforeAll(async () => {
    await createLabStream(t, 'late40', { rollups: ['1m', '1h'], retention: { raw: '30 days' } });
    await loadDays(t, 'late40', 51, 40); // days 51–90
    await refresh(t, 'late40');
    // A late instrument, sample D, sends day 55 after the rollups had materialised it: below the
    // watermarks, so its buckets are invalidated, not yet recomputed.
    await ingestLab(t, 'late40', quarterHourly(5, 55, 1, ['D']));
    const { rows } = await t.db.pool.query<{ level: string }>(
      `SELECT DISTINCT i.level FROM strata.rollup_invalidations i JOIN strata.streams s ON s.id = i.stream_id WHERE s.name = 'late40' ORDER BY 1`);
    expect(rows.map((r) => r.level)).toEqual(['1h', '1m']);
    ref = await reference(t, 'late40', { from: day(51), to: day(91), buckets: hourly, groupBy: true });
    run = await runRetention(t, 'late40');
  });

  it('recomputes the invalidated buckets before dropping the raw rows under them', async () => {
    expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
    expect(run.chunks).toBe(10); // days 51–60
    expect(await rawRows(t, 'late40', day(51), day(61))).toBe(0);
    const { rows: left } = await t.db.pool.query(
      `SELECT 1 FROM strata.rollup_invalidations i JOIN strata.streams s ON s.id = i.stream_id WHERE s.name = 'late40'`);
    expect(left).toHaveLength(0);
    // By the retention run, for sample D within day 55 only.
    const { rows: recomputed } = await t.db.pool.query<{ level: string; tag_values: string[]; range_start: Date; range_end: Date }>(
      `SELECT level, tag_values, range_start, range_end FROM strata.rollup_refreshes WHERE run_id = $1 AND kind = 'invalidation' ORDER BY level`, [run.id]);
    expect(new Set(recomputed.map((r) => JSON.stringify([r.level, r.tag_values])))).toEqual(new Set(['["1h",["D"]]', '["1m",["D"]]']));
    for (const r of recomputed) {
      expect(BigInt(r.range_start.getTime()) * 1000n >= day(55)).toBe(true);
      expect(BigInt(r.range_end.getTime()) * 1000n <= day(56)).toBe(true);
    }
    const day55 = (await auditOf(t, 'retention.drop', 'late40')).find((a) => a.details.range_start === iso(day(55)));
    expect(day55?.details).toMatchObject({ row_count: 2 * PER_DAY, absorbed_by: ['1m', '1h'] });
  });

  it('answers the 1h query with the late rows in, equal to the raw aggregation before the drop', async () => {
    const after = await aggregated(t, 'late40', '1h', day(51), day(91));
    expectSame(after, ref, { groupBy: true });
    expect(servedBy(after)[0]).toEqual(['1h', iso(day(51)), iso(NOW_US - HOUR_US)]);
    expect(after.rows.some((r) => r[1] === 'D')).toBe(true);
  });
});

describe('retention per level', () => {
  // Levels 1m (1-day chunks), 1h (60-day chunks) and 1d (kept forever); a hold over day 20.
  const POLICY = { raw: '30 days', '1m': '45 days', '1h': '60 days' };
  let run: Run;
  let before: Record<string, QueryBody>;
  let hourChunksBefore: Awaited<ReturnType<typeof registry>>;

  beforeAll(async () => {
    await createLabStream(t, 'tier90', { retention: POLICY });
    await loadDays(t, 'tier90', 1, 90);
    await refresh(t, 'tier90');
    before = {
      '1m': await aggregated(t, 'tier90', '1m', day(46), day(91)),
      '1h': await aggregated(t, 'tier90', '1h', day(18), day(91)),
      '1d': await aggregated(t, 'tier90', '1d', day(1), day(91)),
    };
    hourChunksBefore = await registry(t, 'tier90', '1h');
    const hold = await t.request('/v1/holds', json({ method: 'POST', body: { stream: 'tier90', from: iso(day(20) + HOUR_US), to: iso(day(20) + 2n * HOUR_US), reason: 'audit of batch 20' } }));
    expect(hold.status).toBe(201);
    run = await runRetention(t, 'tier90');
    expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
  });

  it('drops each level\'s chunks under that level\'s own policy, never one the hold covers', async () => {
    const cutoff = (keepDays: number): bigint => NOW_US - BigInt(keepDays) * DAY_US;
    const held = (c: { start_us: bigint; end_us: bigint }): boolean => c.start_us < day(20) + 2n * HOUR_US && c.end_us > day(20) + HOUR_US;
    for (const [level, keep] of [['raw', 30], ['1m', 45], ['1h', 60]] as const) {
      const reg = await registry(t, 'tier90', level);
      for (const c of reg) {
        const expired = c.end_us <= cutoff(keep);
        expect(c.state, `${level} ${c.table_name}`).toBe(expired && !held(c) ? 'dropped' : 'active');
      }
    }
    expect((await registry(t, 'tier90', '1d')).every((c) => c.state === 'active')).toBe(true);
    const dropped = (level: string): number => reportOf(run, 'tier90').dropped.filter((d) => d.level === level).length;
    expect(dropped('raw')).toBe(59); // days 1–60 but 20
    expect(dropped('1m')).toBe(44); // days 1–45 but 20
    // 1h: its chunks are 60 days long; only the first one (up to day 18) ended before now − 60 days.
    expect(hourChunksBefore.filter((c) => c.end_us <= cutoff(60))).toHaveLength(1);
    expect(hourChunksBefore[0].end_us).toBe(day(18));
    expect(dropped('1h')).toBe(1);
    expect(reportOf(run, 'tier90').skipped.map((s) => `${s.level} ${s.from}`).sort()).toEqual([`1m ${iso(day(20))}`, `raw ${iso(day(20))}`]);
    await expectRegistryMatchesCatalog(t, 'tier90');
  });

  it('asks only the levels that outlive a chunk to have absorbed it', async () => {
    const drops = await auditOf(t, 'retention.drop', 'tier90');
    const absorbedBy = (level: string, d: number): unknown => drops.find((a) => a.details.level === level && a.details.range_start === iso(day(d)))?.details.absorbed_by;
    expect(absorbedBy('raw', 1)).toEqual(['1d']); // 1m and 1h are cut off there too
    expect(absorbedBy('raw', 30)).toEqual(['1d']);
    expect(absorbedBy('raw', 31)).toEqual(['1h', '1d']); // 1h keeps day 31 longer than raw does
    expect(absorbedBy('raw', 45)).toEqual(['1h', '1d']);
    expect(absorbedBy('raw', 46)).toEqual(['1m', '1h', '1d']);
    expect(absorbedBy('raw', 60)).toEqual(['1m', '1h', '1d']);
    expect(absorbedBy('1m', 1)).toEqual(['1d']);
    expect(absorbedBy('1m', 31)).toEqual(['1h', '1d']);
    const hour = drops.filter((a) => a.details.level === '1h');
    expect(hour).toHaveLength(1);
    expect(hour[0].details).toMatchObject({ policy: '60 days', range_end: iso(day(18)), absorbed_by: ['1d'], ingests: [] });
  });

  it('leaves what each level still keeps answering exactly as before', async () => {
    const now = {
      '1m': await aggregated(t, 'tier90', '1m', day(46), day(91)),
      '1h': await aggregated(t, 'tier90', '1h', day(18), day(91)),
      '1d': await aggregated(t, 'tier90', '1d', day(1), day(91)),
    };
    for (const level of ['1m', '1h', '1d'] as const) {
      expect(now[level].rows, level).toEqual(before[level].rows);
      expect(now[level].served, level).toEqual(before[level].served);
    }
    expect(servedBy(now['1d'])[0]).toEqual(['1d', iso(day(1)), iso(day(90))]);
    expect(Object.keys(await levelTables(t, 'tier90')).sort()).toEqual(['1d', '1h', '1m', 'raw']);
  });

  it('keeps the hourly buckets of days 18–45 though their 1m chunks went', async () => {
    const hours = await aggregated(t, 'tier90', '1h', day(18), day(46));
    expect(hours.rows).toEqual(within(before['1h'], day(18), day(46)));
    expect(servedBy(hours)).toEqual([['1h', iso(day(18)), iso(day(46))]]);
  });
});
