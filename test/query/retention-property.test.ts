// Property: for random streams (levels, chunk intervals, readings), random retention policies and
// random queries (levels, intervals, auto, local days and months, lttb, raw; group_by and tag
// filters; edges anywhere), the answer after a retention run equals the answer before it, except
// in buckets that touch what the answer declares: a gap or a coarsened range. And what it
// declares is justified: only where retention dropped raw rows. Deterministic (seeded).
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { FakeClock, onClock } from '../helpers/clock.ts';
import { type LabRows, type QueryBody, createLabStream, ingestLab, labRows, query, refresh, rng } from '../helpers/rollups.ts';
import { iso, registry, runRetention } from '../retention/helpers.ts';
import { type Range, intersect, normalise } from '../../src/domain/ranges.ts';

const DAY = 86_400_000_000n;
const MIN = 60_000_000n;
const us = (text: string): bigint => BigInt(Date.parse(text)) * 1000n;
/** The data: 26 February to 28 March 2024 (the 60-day chunks of 1h levels turn on 18 March). */
const DATA_FROM = us('2024-02-26T00:00:00Z');
const DATA_TO = us('2024-03-28T00:00:00Z');
// Another seed: STRATA_PROPERTY_SEED=<n> (the tallies' floors hold for the default one).
const SEED = Number(process.env.STRATA_PROPERTY_SEED ?? 19_2024);
const r = rng(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const between = (a: bigint, b: bigint): bigint => a + BigInt(Math.floor(r() * Number(b - a)));

const NOW = DATA_TO + BigInt(Math.floor(r() * 10)) * DAY;
const clock = new FakeClock(Number(NOW / 1000n));
let t: TestApp;
onClock(clock, async () => { t = await createTestApp(); }, () => t.close());

const LEVEL_SETS = [['1m', '1h', '1d'], ['15m', '1h'], ['5m', '1h', '1d'], ['1h'], ['10m', '1h', '1w']];
const CHUNKS = ['1 day', '12 hours', '2 days'];
const INTERVALS: [string, bigint][] = [['10m', 10n * MIN], ['30m', 30n * MIN], ['90min', 90n * MIN], ['2h', 120n * MIN], ['6h', 360n * MIN], ['1d', DAY]];
const ZONES = ['Europe/Berlin', 'America/New_York', 'Asia/Kolkata'];
const STREAMS = 5;
const QUERIES = 30;

interface Stream { name: string; levels: string[] }
interface Case { stream: string; params: Record<string, string>; kind: 'buckets' | 'lttb' | 'raw'; from: bigint; to: bigint }
type Body = QueryBody & { gaps?: { from: string; to: string }[] };

function slice(rows: LabRows, a: number, b: number): LabRows {
  return { time: rows.time.slice(a, b), sample: rows.sample.slice(a, b), temp: rows.temp.slice(a, b), cnt: rows.cnt.slice(a, b), ok: rows.ok.slice(a, b), note: rows.note.slice(a, b) };
}

const daysText = (d: bigint): string => `${d} days`;

/** A policy whose cutoffs fall inside the data: raw, and each level forever or cut somewhere. */
function policy(levels: string[]): Record<string, string | null> {
  const keep = (): string => daysText((NOW - between(DATA_FROM + 2n * DAY, NOW - DAY)) / DAY);
  const out: Record<string, string | null> = { raw: keep() };
  for (const l of levels) out[l] = r() < 0.45 ? null : keep();
  return out;
}

function randomCase(s: Stream): Case {
  const u = r();
  // Edges anywhere: on the hour, on a minute, or at any microsecond.
  const anywhere = between(DATA_FROM - 2n * DAY, NOW - 2n * DAY) + BigInt(Math.floor(r() * 3_600_000_000));
  const align = pick([60n * MIN, MIN, 1n]);
  const from = (anywhere / align) * align;
  const span = (maxUs: bigint): bigint => 1n + BigInt(Math.floor(r() * Number(maxUs)));
  const params: Record<string, string> = { fields: 'temp_c,cnt', agg: 'count,sum,avg,min,max,first,last', fill: 'null' };
  if (r() < 0.3) params.group_by = 'sample';
  else if (r() < 0.25) params['tag.sample'] = 'A';
  let kind: Case['kind'] = 'buckets';
  let to: bigint;
  if (u < 0.22) {
    const level = pick(s.levels);
    params.resolution = level;
    to = from + span(level === '1m' ? 2n * DAY : 30n * DAY);
  } else if (u < 0.45) {
    const [name, w] = pick(INTERVALS);
    params.resolution = name;
    to = from + span(w * 2000n);
  } else if (u < 0.62) {
    params.resolution = 'auto';
    params.max_points = String(pick([50, 300, 1000, 2500]));
    to = from + span(30n * DAY);
  } else if (u < 0.72) {
    params.resolution = pick(['1d', '1mo']);
    params.tz = pick(ZONES);
    to = from + span(45n * DAY);
  } else if (u < 0.86) {
    kind = 'lttb';
    params.resolution = 'lttb';
    params.fields = 'temp_c';
    params.max_points = String(pick([20, 100, 400]));
    delete params.agg; delete params.fill;
    to = from + span(30n * DAY);
  } else {
    kind = 'raw';
    params.fields = 'temp_c,cnt';
    delete params.agg; delete params.fill; delete params.group_by;
    to = from + span(5n * DAY);
  }
  return { stream: s.name, params: { ...params, from: iso(from), to: iso(to) }, kind, from, to };
}

const declaredOf = (body: Body): Range[] => normalise([
  ...(body.gaps ?? []).map((g) => ({ start: us(g.from), end: us(g.to) })),
  ...(body.served ?? []).filter((p) => p.coarsened).flatMap((p) => p.ranges.map((x) => ({ start: us(x.from), end: us(x.to) }))),
]);

/** Rows keyed by (bucket, group), leaving out the empty buckets fill added. */
function keyed(body: Body, groups: boolean): Map<string, unknown[]> {
  const countCols = body.columns.map((c, i) => (c.name.endsWith('_count') ? i : -1)).filter((i) => i >= 0);
  return new Map(body.rows.filter((row) => countCols.some((i) => row[i] !== 0)).map((row) => [`${String(row[0])}|${groups ? String(row[1]) : ''}`, row]));
}

function sameRow(a: unknown[], b: unknown[], columns: { name: string }[]): boolean {
  return a.every((x, i) => {
    const y = b[i];
    if (typeof x === 'number' && typeof y === 'number' && /_(sum|avg)$/.test(columns[i].name)) return Math.abs(x - y) <= Math.max(1e-9 * Math.abs(x), 1e-12);
    return x === y;
  });
}

interface Tally { cases: number; touched: number; touchedExact: number; coarsened: number; gaps: number; exemptBuckets: number; comparedBuckets: number; comparedWhereDropped: number }

/** Checks one case's answers before and after retention; returns whether it declared anything. */
function compare(c: Case, before: Body, after: Body, droppedRaw: Range[], tally: Tally): void {
  const label = `${c.stream} ${new URLSearchParams(c.params)}`;
  const declared = declaredOf(after);
  expect(declaredOf(before), label).toEqual([]);
  for (const g of after.gaps ?? []) {
    const gap = { start: us(g.from), end: us(g.to) };
    expect(intersect([gap], droppedRaw), `${label}: gap ${g.from} – ${g.to} lies where raw rows were dropped`).toEqual([gap]);
  }
  for (const d of declared) expect(intersect([d], droppedRaw).length, `${label}: declared ${iso(d.start)} – ${iso(d.end)} touches dropped raw rows`).toBeGreaterThan(0);
  const touched = intersect([{ start: c.from, end: c.to }], droppedRaw).length > 0;
  tally.cases++;
  if (touched) tally.touched++;
  if (touched && declared.length === 0) tally.touchedExact++;
  if ((after.served ?? []).some((p) => p.coarsened)) tally.coarsened++;
  if ((after.gaps ?? []).length > 0) tally.gaps++;
  const hits = (start: bigint, end: bigint): boolean => declared.some((d) => d.start < end && d.end > start);
  if (c.kind === 'lttb') {
    if (declared.length === 0) expect(after.rows, label).toEqual(before.rows);
    return;
  }
  if (c.kind === 'raw') {
    const kept = before.rows.filter((row) => !hits(us(row[0] as string), us(row[0] as string) + 1n));
    expect(after.rows, label).toEqual(kept);
    return;
  }
  const groups = c.params.group_by !== undefined;
  const starts = [...new Set([...before.rows, ...after.rows].map((row) => us(row[0] as string)))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const endOf = new Map(starts.map((s, i) => [s, i + 1 < starts.length ? starts[i + 1] : c.to]));
  const b = keyed(before, groups);
  const a = keyed(after, groups);
  for (const key of new Set([...b.keys(), ...a.keys()])) {
    const start = us(key.split('|')[0]);
    if (hits(start, endOf.get(start) as bigint)) { tally.exemptBuckets++; continue; }
    tally.comparedBuckets++;
    if (intersect([{ start, end: endOf.get(start) as bigint }], droppedRaw).length > 0) tally.comparedWhereDropped++;
    const x = b.get(key);
    const y = a.get(key);
    expect(x !== undefined && y !== undefined, `${label}: bucket ${key} in ${x ? 'before only' : 'after only'}`).toBe(true);
    expect(sameRow(x as unknown[], y as unknown[], after.columns), `${label}: bucket ${key}: ${JSON.stringify(x)} vs ${JSON.stringify(y)}`).toBe(true);
  }
}

describe(`property (seed ${SEED}): answers after retention equal those before, except where declared`, () => {
  const streams: Stream[] = [];
  const cases: Case[] = [];
  const before: Body[] = [];

  beforeAll(async () => {
    for (let i = 0; i < STREAMS; i++) {
      const levels = LEVEL_SETS[i % LEVEL_SETS.length];
      const s = { name: `prop${i}`, levels };
      streams.push(s);
      await createLabStream(t, s.name, { rollups: levels, chunk_interval: pick(CHUNKS), retention: policy(levels) });
      const mean = BigInt(pick([15, 30, 60])) * MIN;
      const all = labRows(SEED + i, DATA_FROM, Number((DATA_TO - DATA_FROM) / mean), mean, ['A', 'B', 'C']);
      const past = all.time.findIndex((x) => x >= DATA_TO);
      const n = past < 0 ? all.time.length : past;
      // In three uploads, as an instrument would send them.
      for (const [a, b] of [[0, Math.floor(n / 3)], [Math.floor(n / 3), Math.floor(n / 2)], [Math.floor(n / 2), n]]) {
        if (b > a) await ingestLab(t, s.name, slice(all, a, b));
      }
      await refresh(t, s.name);
      for (let q = 0; q < QUERIES; q++) cases.push(randomCase(s));
    }
    for (const c of cases) before.push(await query(t, c.stream, c.params) as Body);
    for (const s of streams) {
      const run = await runRetention(t, s.name);
      expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
    }
  }, 180_000);

  it('holds for every case, and the cases cover exact, coarsened and lost answers', async () => {
    const tally: Tally = { cases: 0, touched: 0, touchedExact: 0, coarsened: 0, gaps: 0, exemptBuckets: 0, comparedBuckets: 0, comparedWhereDropped: 0 };
    const dropped = new Map<string, Range[]>();
    for (const s of streams) {
      dropped.set(s.name, normalise((await registry(t, s.name)).filter((c) => c.state === 'dropped').map((c) => ({ start: c.start_us, end: c.end_us }))));
    }
    for (let i = 0; i < cases.length; i++) {
      const after = await query(t, cases[i].stream, cases[i].params) as Body;
      compare(cases[i], before[i], after, dropped.get(cases[i].stream) as Range[], tally);
    }
    console.log(`retention property (seed ${SEED}): ${JSON.stringify(tally)}`);
    // Every query gave its connection back.
    expect(t.db.pool.idleCount).toBe(t.db.pool.totalCount);
    expect([...dropped.values()].every((d) => d.length > 0)).toBe(true);
    // Retention touched many answers; the levels answered most of what it dropped exactly.
    expect(tally.touchedExact).toBeGreaterThan(5);
    expect(tally.comparedWhereDropped).toBeGreaterThan(1000);
    expect(tally.coarsened).toBeGreaterThan(3);
    expect(tally.gaps).toBeGreaterThan(1);
    expect(tally.comparedBuckets).toBeGreaterThan(tally.exemptBuckets);
  }, 120_000);
});
