// The endpoints the console needs beside the rest of the API: GET /v1/whoami, GET
// /v1/streams/{stream}/activity (rows, last ingests, silent instruments, rollup freshness),
// GET /v1/streams/{stream}/provenance?to= (a bucket not aligned to the epoch, as resolution=auto
// makes them) and GET /v1/ingests?before= (paging back, newest first).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { upload } from '../helpers/uploads.ts';
import { T0 } from '../helpers/polars.ts';
import { streamActivity } from '../../src/streams/activity.ts';
import { requireStream } from '../../src/streams/catalog.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

const iso = (us: bigint): string => new Date(Number(us / 1000n)).toISOString();

describe('GET /v1/whoami', () => {
  it('names the calling key, its role and what that role may do, never the secret', async () => {
    const reader = await t.key('reader', ['a', 'b']);
    const me = await (await t.request('/v1/whoami', { key: reader })).json() as Record<string, unknown>;
    expect(me).toMatchObject({ role: 'reader', streams: ['a', 'b'], name: 'test reader' });
    expect(me.permissions).toEqual(['streams:read', 'query']);
    expect(JSON.stringify(me)).not.toContain(reader);
    const admin = await (await t.request('/v1/whoami')).json() as { permissions: string[] };
    expect(admin.permissions).toContain('keys:admin');
    expect((await t.request('/v1/whoami', { key: null })).status).toBe(401);
  });
});

describe('GET /v1/streams/{stream}/activity', () => {
  it('counts rows and ingests, gives the time range and rollup watermarks, and flags an instrument gone silent', async () => {
    const prov = (instrument: string): Record<string, string> => ({ 'strata-provenance': JSON.stringify({ instrument }) });
    for (let i = 0; i < 4; i++) {
      const u = await upload(t, 'act', { start: T0 + BigInt(i) * 60_000_000n, n: 30, headers: prov('rig-1') });
      expect(u.status).toBe(201);
    }
    const other = await upload(t, 'act', { start: T0 + 600_000_000n, n: 5, headers: prov('rig-2') });
    const retracted = await upload(t, 'act', { start: T0 + 900_000_000n, n: 7 });
    await t.request(`/v1/ingests/${retracted.body.ingest.id}/retract`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"reason":"test"}' });
    const res = await t.request('/v1/streams/act/activity');
    expect(res.status).toBe(200);
    const a = await res.json() as { rows: number; ingests: number; time_min: string; time_max: string; last_ingest_at: string;
      instruments: { instrument: string; ingests: number; silent: boolean; usual_gap_seconds: number | null }[]; rollups: { level: string; watermark: string | null; invalidations: number }[] };
    expect(a.rows).toBe(4 * 30 + 5);
    expect(a.ingests).toBe(5);
    expect(a.time_min).toBe(iso(T0));
    expect(a.time_max).toBe(iso(T0 + 604_000_000n));
    expect(a.instruments.map((x) => [x.instrument, x.ingests])).toEqual([['rig-1', 4], ['rig-2', 1]]);
    expect(a.instruments[0].usual_gap_seconds).toBeGreaterThan(0);
    expect(a.instruments[1].usual_gap_seconds).toBeNull(); // one upload: no rhythm yet
    expect(a.rollups.map((r) => r.level)).toEqual(expect.arrayContaining(['1m', '1h', '1d']));
    expect(other.status).toBe(201);

    // Silent: its last upload more than three usual gaps ago (the clock moved on by a day).
    const stream = await requireStream(t.db.pool, 'act');
    const later = await streamActivity(t.db.pool, stream, new Date(Date.parse(a.last_ingest_at) + 86_400_000));
    expect(later.instruments.find((x) => x.instrument === 'rig-1')?.silent).toBe(true);
    const justAfter = await streamActivity(t.db.pool, stream, new Date(Date.parse(a.last_ingest_at)));
    expect(justAfter.instruments.find((x) => x.instrument === 'rig-1')?.silent).toBe(false);

    // Invalidations below a watermark are listed per level.
    const run = await t.request('/v1/jobs/rollups/run?stream=act', { method: 'POST' });
    expect(run.status).toBe(200);
    await upload(t, 'act', { start: T0 + 1_200_000_000n, n: 3 });
    const b = await (await t.request('/v1/streams/act/activity')).json() as typeof a;
    expect(b.rollups.every((r) => r.watermark !== null)).toBe(true);
    expect(b.rollups.some((r) => r.invalidations > 0)).toBe(true);
    expect((await t.request('/v1/streams/nope/activity')).status).toBe(404);
  });
});

describe('GET /v1/streams/{stream}/provenance?to=', () => {
  it('traces a bucket that starts anywhere, and refuses to with resolution or a backwards range', async () => {
    const a = await upload(t, 'tr', { start: T0, n: 10 });
    const b = await upload(t, 'tr', { start: T0 + 10_000_000n, n: 10 });
    // [T0 + 7 s, T0 + 13 s): three rows of each upload; an epoch-aligned 6 s bucket would start at T0 + 6 s.
    const res = await t.request(`/v1/streams/tr/provenance?time=${iso(T0 + 7_000_000n)}&to=${iso(T0 + 13_000_000n)}`);
    expect(res.status).toBe(200);
    const trace = await res.json() as { range: { from: string; to: string }; resolution: string; ingests: { id: string; rows_matched: number }[] };
    expect(trace.resolution).toBe('range');
    expect(trace.range.from.startsWith(iso(T0 + 7_000_000n).slice(0, 19))).toBe(true);
    expect(trace.ingests.map((i) => [i.id, i.rows_matched])).toEqual([[a.body.ingest.id, 3], [b.body.ingest.id, 3]]);
    expect((await t.request(`/v1/streams/tr/provenance?time=${iso(T0)}&to=${iso(T0)}`)).status).toBe(400);
    expect((await t.request(`/v1/streams/tr/provenance?time=${iso(T0)}&to=${iso(T0 + 1_000_000n)}&resolution=1m`)).status).toBe(400);
  });
});

describe('GET /v1/ingests?before=', () => {
  it('pages back newest first', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await upload(t, 'pg', { start: T0 + BigInt(i) * 100_000_000n, n: 2 })).body.ingest.id);
    const first = await (await t.request('/v1/ingests?stream=pg&limit=2')).json() as { ingests: { id: string }[] };
    expect(first.ingests.map((i) => i.id)).toEqual([ids[4], ids[3]]);
    const next = await (await t.request(`/v1/ingests?stream=pg&limit=2&before=${ids[3]}`)).json() as { ingests: { id: string }[] };
    expect(next.ingests.map((i) => i.id)).toEqual([ids[2], ids[1]]);
    expect((await t.request(`/v1/ingests?before=${ids[3]}&after=1`)).status).toBe(400);
  });
});
