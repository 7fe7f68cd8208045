// The edges of a drop, with the rollups module: rows that reach a chunk after its coverage was
// confirmed keep it (it is attached again and checked on the next run, which recomputes the
// level's buckets with those rows first) — whether the upload commits in the middle of the run
// (the run is paused in the database, by a trigger waiting on an advisory lock the test holds) or
// was already running before the run began (paused before its commit by an ingest observer); so
// does a retraction of its rows in the middle of the run;
// uploads into a dropped range are refused; a chunk a crashed run left detached is attached again
// before anything is decided; a drop that fails puts the chunk back.
import { describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { FakeClock, onClock, waitFor } from '../helpers/clock.ts';
import { type LabRows, type QueryBody, createLabStream, expectSame, ingestLab, labBody, reference, refresh } from '../helpers/rollups.ts';
import { registerIngestObserver } from '../../src/ingest/observers.ts';
import { ARROW_STREAM } from '../helpers/fixtures.ts';
import { json } from '../helpers/uploads.ts';
import {
  HOUR_US, PER_DAY, type Run, aggregated, auditOf, day, expectRegistryMatchesCatalog, iso, loadDays, quarterHourly, rawRows,
  registry, reportOf, runRetention,
} from './helpers.ts';

const clock = new FakeClock(Number(day(11) / 1000n)); // the end of day 10

let t: TestApp;
onClock(clock, async () => { t = await createTestApp(); }, () => t.close());

// An upload into a gated stream stops just before its commit — after every other observer has
// run, so its rows and invalidations are written, uncommitted — until the test opens the gate.
let gate: { stream: string; entered: () => void; open: Promise<void> } | null = null;
registerIngestObserver((stream) => ({
  async beforeCommit() {
    const g = gate;
    if (g === null || g.stream !== stream.name) return;
    gate = null;
    g.entered();
    await g.open;
  },
}));

const CHANGED = 'rows were added or removed while retention checked the chunk';

async function chunk(stream: string, d: number): Promise<{ table: string; state: string; row_count: string | null; attached: boolean; parent: string }> {
  const { rows } = await t.db.pool.query(
    `SELECT c.table_name AS table, c.state, c.row_count, s.table_name AS parent,
            EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = to_regclass(format('strata_data.%I', c.table_name))) AS attached
       FROM strata.chunks c JOIN strata.streams s ON s.id = c.stream_id
      WHERE s.name = $1 AND c.level = 'raw' AND c.range_start = $2::timestamptz ORDER BY c.id DESC LIMIT 1`, [stream, iso(day(d))]);
  return rows[0];
}

async function invalidations(stream: string): Promise<{ level: string; range_start: Date; range_end: Date }[]> {
  const { rows } = await t.db.pool.query(
    `SELECT i.level, i.range_start, i.range_end FROM strata.rollup_invalidations i JOIN strata.streams s ON s.id = i.stream_id
      WHERE s.name = $1 ORDER BY i.level, i.range_start`, [stream]);
  return rows;
}

/** A late instrument's readings of day 2: sample L, 20 of them, 07:00–08:00. */
const LATE: LabRows = (() => {
  const n = 20;
  const values = quarterHourly(77, 2, 1, ['L']);
  return {
    time: Array.from({ length: n }, (_, i) => day(2) + 7n * HOUR_US + BigInt(i) * 180_000_000n),
    sample: Array<string>(n).fill('L'), temp: values.temp.slice(0, n), cnt: values.cnt.slice(0, n), ok: values.ok.slice(0, n), note: values.note.slice(0, n),
  };
})();

async function lateUpload(stream: string): Promise<Response> {
  return t.request(`/v1/streams/${stream}/ingest`, { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: labBody(LATE) });
}

/** Days 1–5 of a stream with one rollup level (1h, kept forever) and raw kept 2 days; refreshed. */
async function fiveDays(stream: string): Promise<QueryBody> {
  await createLabStream(t, stream, { rollups: ['1h'], retention: { raw: '2 days' } });
  await loadDays(t, stream, 1, 5);
  await refresh(t, stream);
  return aggregated(t, stream, '1h', day(1), day(6));
}

/** Rows of a grouped aggregated answer whose bucket lies outside day 2. */
function notDay2(body: QueryBody): unknown[][] {
  return body.rows.filter((r) => {
    const us = BigInt(Date.parse(r[0] as string)) * 1000n;
    return us < day(2) || us >= day(3);
  });
}

/**
 * After a run that kept day 2 because the late rows arrived: day 2 is still there with them, and
 * invalidated at 1h; the next run recomputes its buckets with the late rows and drops it.
 */
async function expectKeptThenDropped(stream: string, run: Run, lateId: string, before: QueryBody): Promise<void> {
  expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
  const { dropped, skipped } = reportOf(run, stream);
  expect(skipped.map((s) => s.from)).toEqual([iso(day(2))]);
  expect(skipped[0].reason).toContain(CHANGED);
  expect(dropped.map((d) => d.from)).toEqual([1, 3, 4, 5].map((d) => iso(day(d)))); // days 6–8 have no chunks
  expect(await chunk(stream, 2)).toMatchObject({ state: 'active', attached: true });
  expect(await rawRows(t, stream, day(2), day(3))).toBe(PER_DAY + LATE.time.length);
  await expectRegistryMatchesCatalog(t, stream);
  // The late rows came below the 1h watermark: their hour is invalidated, waiting for a refresh.
  expect((await invalidations(stream)).map((i) => [i.level, i.range_start.toISOString(), i.range_end.toISOString()]))
    .toEqual([['1h', new Date(Number((day(2) + 7n * HOUR_US) / 1000n)).toISOString(), new Date(Number((day(2) + 8n * HOUR_US) / 1000n)).toISOString()]]);
  const day2 = await reference(t, stream, { from: day(2), to: day(3), buckets: { kind: 'fixed', widthUs: HOUR_US }, groupBy: true });

  const next = await runRetention(t, stream);
  expect(next.outcome, JSON.stringify(next)).toBe('succeeded');
  expect(next.chunks).toBe(1);
  expect(await chunk(stream, 2)).toMatchObject({ state: 'dropped', row_count: String(PER_DAY + LATE.time.length), attached: false });
  expect(await invalidations(stream)).toEqual([]);
  const audit = (await auditOf(t, 'retention.drop', stream)).find((a) => a.details.range_start === iso(day(2)));
  expect(audit?.details).toMatchObject({ run_id: next.id, absorbed_by: ['1h'], ingest_rows: { [lateId]: LATE.time.length } });
  const rec = await (await t.request(`/v1/ingests/${lateId}`)).json() as { expiry: { all_expired: boolean } };
  expect(rec.expiry.all_expired).toBe(true);
  // The 1h series: day 2 with the late rows in, every other day exactly as before.
  expectSame(await aggregated(t, stream, '1h', day(2), day(3)), day2, { groupBy: true });
  const after = await aggregated(t, stream, '1h', day(1), day(6));
  expect(notDay2(after)).toEqual(notDay2(before));
  expect(after.rows.filter((r) => r[1] === 'L')).toHaveLength(1);
}

/**
 * Runs retention on `stream`, paused in the database while it drops day 1 — after it confirmed the
 * levels' coverage of every expired day, before it detaches day 2 — by a trigger waiting on an
 * advisory lock the test holds; `meanwhile` runs during the pause. Returns the run once it ends.
 */
async function retentionPausedAtDay1<T>(stream: string, meanwhile: () => Promise<T>): Promise<{ run: Run; got: T }> {
  const day1 = await chunk(stream, 1);
  const LOCK = 7_319_901;
  await t.db.pool.query(`CREATE FUNCTION public.pause_retention() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_advisory_xact_lock(${LOCK}); RETURN NEW; END $$`);
  await t.db.pool.query(`CREATE TRIGGER pause_retention AFTER UPDATE OF state ON strata.chunks FOR EACH ROW
    WHEN (NEW.table_name = '${day1.table}' AND NEW.state = 'dropped') EXECUTE FUNCTION public.pause_retention()`);
  const holder = await t.db.pool.connect();
  let running: Promise<Run> | undefined;
  let got: T;
  try {
    await holder.query('SELECT pg_advisory_lock($1)', [LOCK]);
    running = runRetention(t, stream);
    await waitFor('the retention run to pause at the drop of day 1', async () => {
      const { rows } = await holder.query(
        `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, [LOCK]);
      return rows.length > 0;
    });
    got = await meanwhile();
  } finally {
    await holder.query('SELECT pg_advisory_unlock_all()');
    holder.release();
    await running?.catch(() => undefined);
    await t.db.pool.query('DROP TRIGGER pause_retention ON strata.chunks; DROP FUNCTION public.pause_retention()');
  }
  return { run: await (running as Promise<Run>), got };
}

describe('a drop racing an upload', () => {
  it('keeps a chunk that received rows after its coverage was confirmed, and drops it on the next run', async () => {
    const before = await fiveDays('late');
    // The late upload commits while the run, which confirmed the 1h coverage of days 1–5, waits.
    const { run, got: lateId } = await retentionPausedAtDay1('late', async () => {
      const res = await lateUpload('late');
      expect(res.status, await res.clone().text()).toBe(201);
      return ((await res.json()) as { ingest: { id: string } }).ingest.id;
    });
    await expectKeptThenDropped('late', run, lateId, before);
  });

  it('keeps a chunk whose rows were retracted after its coverage was confirmed, and drops it on the next run', async () => {
    await createLabStream(t, 'retracted', { rollups: ['1h'], retention: { raw: '2 days' } });
    const ids = await loadDays(t, 'retracted', 1, 5, 1); // one upload per day
    await refresh(t, 'retracted');
    // Day 2's upload is retracted while the run, which confirmed the 1h coverage of day 2, waits.
    const { run } = await retentionPausedAtDay1('retracted', async () => {
      const res = await t.request(`/v1/ingests/${ids[1]}/retract`, json({ method: 'POST', body: { reason: 'probe was unplugged' } }));
      expect(res.status, await res.clone().text()).toBe(200);
    });
    expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
    const { skipped } = reportOf(run, 'retracted');
    expect(skipped.map((x) => x.from)).toEqual([iso(day(2))]);
    expect(skipped[0].reason).toContain(CHANGED);
    expect(await chunk('retracted', 2)).toMatchObject({ state: 'active', attached: true });
    await expectRegistryMatchesCatalog(t, 'retracted');

    // The next run has the 1h level recompute day 2 without the retracted rows, then drops it.
    const next = await runRetention(t, 'retracted');
    expect(next.outcome, JSON.stringify(next)).toBe('succeeded');
    expect(await chunk('retracted', 2)).toMatchObject({ state: 'dropped', row_count: '0', attached: false });
    expect(await invalidations('retracted')).toEqual([]);
    expect((await aggregated(t, 'retracted', '1h', day(2), day(3))).rows).toEqual([]);
  });

  it('keeps a chunk whose upload was running before the run began and commits while the run detaches', async () => {
    const before = await fiveDays('inflight');
    let entered!: () => void;
    let open!: () => void;
    const inside = new Promise<void>((resolve) => { entered = resolve; });
    gate = { stream: 'inflight', entered, open: new Promise<void>((resolve) => { open = resolve; }) };
    const uploading = lateUpload('inflight');
    let running: Promise<Run> | undefined;
    try {
      await inside;
      // The upload's rows are written but not committed: the run's coverage check cannot see them.
      // DETACH … CONCURRENTLY waits for the upload's transaction; then the upload commits.
      running = runRetention(t, 'inflight');
      await waitFor('the retention run to wait in DETACH PARTITION', async () => {
        const { rows } = await t.db.pool.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
              AND query ILIKE '%DETACH PARTITION%' AND wait_event_type = 'Lock'`);
        return rows.length > 0;
      });
    } finally {
      open();
    }
    const res = await uploading;
    expect(res.status, await res.clone().text()).toBe(201);
    const lateId = ((await res.json()) as { ingest: { id: string } }).ingest.id;
    const run = await (running as Promise<Run>);
    await expectKeptThenDropped('inflight', run, lateId, before);
  });
});

describe('an upload into a range retention dropped', () => {
  it('is refused, naming the range, stores nothing and invalidates nothing', async () => {
    // Stream "late" has had days 1–5 dropped above.
    const hourBefore = await aggregated(t, 'late', '1h', day(1), day(6));
    const res = await t.request('/v1/streams/late/ingest', {
      method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: labBody(quarterHourly(9, 3, 1, ['X'])),
    });
    expect(res.status).toBe(422);
    const p = await res.json() as { code: string; detail: string; ingest_id: string };
    expect(p.code).toBe('range_expired');
    expect(p.detail).toContain(`${iso(day(3))} – ${iso(day(4))}`);
    expect(p.detail).toContain('that retention dropped');
    const rec = await (await t.request(`/v1/ingests/${p.ingest_id}`)).json() as { status: string; rows: number };
    expect(rec).toMatchObject({ status: 'rejected', rows: 0 });
    expect(await rawRows(t, 'late', day(1), day(9))).toBe(0);
    expect(await invalidations('late')).toEqual([]);
    const hourAfter = await aggregated(t, 'late', '1h', day(1), day(6));
    expect(hourAfter.rows).toEqual(hourBefore.rows);
    // Later ranges are not affected.
    await ingestLab(t, 'late', quarterHourly(10, 9, 1));
    expect(await rawRows(t, 'late', day(9), day(10))).toBe(PER_DAY);
  });
});

describe('a chunk a crashed run left detached', () => {
  it('is attached again first, then dropped with its rows counted — or kept, when a hold covers it', async () => {
    await createLabStream(t, 'crash'); // levels 1m, 1h, 1d
    await loadDays(t, 'crash', 1, 5);
    const d1 = await chunk('crash', 1);
    const d2 = await chunk('crash', 2);
    const day1 = await reference(t, 'crash', { from: day(1), to: day(2), buckets: { kind: 'fixed', widthUs: HOUR_US }, groupBy: true });
    // What a run that died between DETACH and DROP leaves behind.
    await t.db.pool.query(`ALTER TABLE strata_data."${d1.parent}" DETACH PARTITION strata_data."${d1.table}"`);
    await t.db.pool.query(`ALTER TABLE strata_data."${d2.parent}" DETACH PARTITION strata_data."${d2.table}" CONCURRENTLY`);
    expect(await rawRows(t, 'crash', day(1), day(3))).toBe(0);
    const hold = await t.request('/v1/holds', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ stream: 'crash', from: iso(day(2) + HOUR_US), to: iso(day(2) + 2n * HOUR_US), reason: 'instrument inquiry' }),
    });
    expect(hold.status).toBe(201);
    await t.request('/v1/streams/crash', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ retention: { raw: '7 days' } }) });
    const run = await runRetention(t, 'crash');
    expect(run.outcome, JSON.stringify(run)).toBe('succeeded');
    expect(reportOf(run, 'crash').reattached?.sort()).toEqual([d1.table, d2.table].sort());
    expect(run.chunks).toBe(2); // days 1 and 3; day 2 is held
    expect(await chunk('crash', 1)).toMatchObject({ state: 'dropped', row_count: String(PER_DAY) });
    expect(await chunk('crash', 2)).toMatchObject({ state: 'active', attached: true });
    expect(await rawRows(t, 'crash', day(2), day(3))).toBe(PER_DAY);
    await expectRegistryMatchesCatalog(t, 'crash');
    const { rows } = await t.db.pool.query(`SELECT details FROM strata.audit_log WHERE action = 'retention.drop' AND subject = $1`, [`chunk:${d1.table}`]);
    expect(rows[0].details).toMatchObject({ row_count: PER_DAY, level: 'raw', absorbed_by: ['1m', '1h', '1d'] });
    // The levels absorbed day 1 from the re-attached chunk before it went.
    const hours = await aggregated(t, 'crash', '1h', day(1), day(2));
    expect(hours.served.map((s) => s.source)).toEqual(['1h']);
    expectSame(hours, day1, { groupBy: true });
  });
});

describe('a drop that fails', () => {
  it('puts the chunk back, drops the others, and records the run as failed with what it did', async () => {
    await createLabStream(t, 'stuck');
    await loadDays(t, 'stuck', 1, 3);
    const d2 = await chunk('stuck', 2);
    // Something outside Strata depends on the chunk table, so DROP TABLE fails.
    await t.db.pool.query(`CREATE VIEW public.stuck_day2 AS SELECT * FROM strata_data."${d2.table}"`);
    await t.request('/v1/streams/stuck', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ retention: { raw: '1 day' } }) });
    const res = await t.request('/v1/jobs/retention/run?stream=stuck', { method: 'POST' });
    const run = await res.json() as Run & { error: string; details: { errors: string[] } };
    expect(run.outcome).toBe('failed');
    expect(run.error).toContain(`chunk ${d2.table}`);
    expect(run.details.errors).toHaveLength(1);
    expect(run.chunks).toBe(2);
    expect(run.rows).toBe(2 * PER_DAY);
    expect(await chunk('stuck', 2)).toMatchObject({ state: 'active', attached: true });
    expect(await rawRows(t, 'stuck', day(1), day(4))).toBe(PER_DAY);
    await expectRegistryMatchesCatalog(t, 'stuck');
    const jobs = await (await t.request('/v1/jobs')).json() as { jobs: { name: string; last_run: { outcome: string } }[] };
    expect(jobs.jobs.find((j) => j.name === 'retention')?.last_run.outcome).toBe('failed');
    const { rows: audited } = await t.db.pool.query(`SELECT actor_role, details FROM strata.audit_log WHERE action = 'job.failed' ORDER BY seq DESC LIMIT 1`);
    expect(audited[0]).toMatchObject({ actor_role: 'admin', details: { job: 'retention', stream: 'stuck', outcome: 'failed' } });
    await t.db.pool.query('DROP VIEW public.stuck_day2');
    expect((await runRetention(t, 'stuck')).chunks).toBe(1);
    expect((await registry(t, 'stuck')).map((c) => c.state)).toEqual(['dropped', 'dropped', 'dropped']);
  });
});
