// Deleting and renaming a stream: admin-only (the role matrix covers who may), audited with the
// state before and after, refused under a legal hold; what goes (table, chunks, rollup levels,
// the stream's other tables) and what stays (ingest records, originals, the catalog row).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { committed, json, upload } from '../helpers/uploads.ts';
import { T0 } from '../helpers/polars.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

const DAY = 86_400_000_000n;
const get = async <T>(url: string, key?: string): Promise<{ status: number; body: T }> => {
  const res = await t.request(url, key === undefined ? {} : { key });
  return { status: res.status, body: await res.json() as T };
};
const lastAudit = async (action: string): Promise<{ subject: string; details: Record<string, unknown> }> =>
  (await get<{ entries: { subject: string; details: Record<string, unknown> }[] }>(`/v1/audit?action=${action}&limit=1000`)).body.entries.at(-1) as never;
const relations = async (prefix: string): Promise<string[]> => (await t.db.pool.query<{ relname: string }>(
  `SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'strata_data' AND left(relname, length($1)) = $1`, [prefix])).rows.map((r) => r.relname);

describe('DELETE /v1/streams/{stream}', () => {
  it('is refused while a legal hold covers the stream, and changes nothing', async () => {
    await committed(t, 'del-held');
    const placed = await t.request('/v1/holds', json({ method: 'POST', body: { stream: 'del-held', reason: 'case 9' } }));
    const { id } = await placed.json() as { id: number };
    const res = await t.request('/v1/streams/del-held', { method: 'DELETE' });
    expect(res.status).toBe(409);
    const problem = await res.json() as { code: string; detail: string; holds: number[] };
    expect(problem).toMatchObject({ code: 'legal_hold', holds: [id] });
    expect(problem.detail).toContain('case 9');
    expect((await get('/v1/streams/del-held')).status).toBe(200);
    const q = await t.request('/v1/streams/del-held/query?format=csv');
    expect((await q.text()).trim().split('\n')).toHaveLength(11);
    await t.request(`/v1/holds/${id}`, { method: 'DELETE' });
    expect((await t.request('/v1/streams/del-held', { method: 'DELETE' })).status).toBe(200);
  });

  it('removes the data, rollup levels and chunks; keeps ingest records, originals and the audit trail', async () => {
    const first = await committed(t, 'del-me', { n: 30 });
    await committed(t, 'del-me', { n: 20, start: T0 + 3n * DAY });
    expect((await t.request('/v1/jobs/rollups/run?stream=del-me', { method: 'POST' })).status).toBe(200);
    const stream = (await t.db.pool.query<{ id: string; table_name: string }>(`SELECT id, table_name FROM strata.streams WHERE name = 'del-me'`)).rows[0];
    expect((await relations(`s${stream.id}_`)).length).toBeGreaterThan(3);
    const levels = (await t.db.pool.query(`SELECT 1 FROM strata.rollup_levels WHERE stream_id = $1`, [stream.id])).rowCount;
    expect(levels).toBeGreaterThan(0);

    const res = await t.request('/v1/streams/del-me', { method: 'DELETE' });
    expect(res.status).toBe(200);
    const out = await res.json() as Record<string, unknown>;
    expect(out).toMatchObject({ stream: 'del-me', stream_id: Number(stream.id), ingests: 2, rows: 50 });
    expect(out.chunks_dropped as number).toBeGreaterThanOrEqual(2);

    expect((await get('/v1/streams/del-me')).status).toBe(404);
    expect((await get('/v1/streams/del-me/query')).status).toBe(404);
    expect((await get<{ streams: { name: string }[] }>('/v1/streams')).body.streams.map((s) => s.name)).not.toContain('del-me');
    expect(await relations(`s${stream.id}_`)).toEqual([]);
    const active = await t.db.pool.query(`SELECT 1 FROM strata.chunks WHERE stream_id = $1 AND state = 'active'`, [stream.id]);
    expect(active.rowCount).toBe(0);
    expect((await t.db.pool.query(`SELECT 1 FROM strata.rollup_levels WHERE stream_id = $1`, [stream.id])).rowCount).toBe(0);

    // The evidence stays.
    const rec = await get<Record<string, unknown>>(`/v1/ingests/${first.id}`);
    expect(rec.body).toMatchObject({ status: 'committed', stream: 'del-me', stream_id: Number(stream.id), stream_current: null, rows: 30 });
    const original = await t.request(`/v1/ingests/${first.id}/original`);
    expect(original.status).toBe(200);
    expect(Buffer.from(await original.arrayBuffer())).toEqual(first.bytes);
    const listed = await get<{ ingests: { id: string }[] }>(`/v1/ingests?stream_id=${stream.id}`);
    expect(listed.body.ingests).toHaveLength(2);
    const entry = await lastAudit('stream.delete');
    expect(entry.subject).toBe('stream:del-me');
    expect(entry.details).toMatchObject({ stream_id: Number(stream.id), after: null, before: { name: 'del-me' }, ingests: 2, rows: 50 });
    // Its rows are gone, so a retraction has nothing to act on.
    const retract = await t.request(`/v1/ingests/${first.id}/retract`, json({ method: 'POST', body: { reason: 'late' } }));
    expect(retract.status).toBe(409);

    // The name is free for a new stream, which does not inherit the old one's ingests.
    const again = await committed(t, 'del-me', { n: 5 });
    const now = await get<{ ingests: { id: string }[] }>('/v1/ingests?stream=del-me');
    expect(now.body.ingests.map((i) => i.id)).toEqual([again.id]);
    const q = await t.request('/v1/streams/del-me/query?format=csv');
    expect((await q.text()).trim().split('\n')).toHaveLength(6);
  });

  it('answers 404 for a stream that does not exist, and removes the stream\'s metric series', async () => {
    expect((await t.request('/v1/streams/never-was', { method: 'DELETE' })).status).toBe(404);
    await committed(t, 'del-metrics');
    expect(await (await t.app.request('/metrics')).text()).toContain('strata_stream_rows_total{stream="del-metrics"}');
    await t.request('/v1/streams/del-metrics', { method: 'DELETE' });
    expect(await (await t.app.request('/metrics')).text()).not.toContain('stream="del-metrics"');
  });
});

describe('POST /v1/streams/{stream}/rename', () => {
  it('keeps the table, the data, the ingests, holds and the keys scoped to the stream', async () => {
    const instrument = await t.key('instrument', ['rn-a']);
    const first = await committed(t, 'rn-a', { key: instrument, n: 8 });
    const { id: holdId } = await (await t.request('/v1/holds', json({ method: 'POST', body: { stream: 'rn-a', reason: 'audit 3' } }))).json() as { id: number };
    const before = await get<{ table: string }>('/v1/streams/rn-a');

    const res = await t.request('/v1/streams/rn-a/rename', json({ method: 'POST', body: { name: 'rn-b' } }));
    expect(res.status).toBe(200);
    expect(res.headers.get('location')).toBe('/v1/streams/rn-b');
    const after = await res.json() as { name: string; table: string };
    expect(after).toMatchObject({ name: 'rn-b', table: before.body.table });
    expect((await get('/v1/streams/rn-a')).status).toBe(404);

    // The instrument key follows its stream.
    expect((await upload(t, 'rn-b', { key: instrument, n: 4, start: T0 + DAY })).status).toBe(201);
    expect((await upload(t, 'rn-a', { key: instrument, n: 4, start: T0 + 2n * DAY })).status).toBe(403);
    const keys = await get<{ keys: { streams: string[] | null; prefix: string }[] }>('/v1/keys');
    expect(keys.body.keys.filter((k) => instrument.startsWith(k.prefix)).map((k) => k.streams)).toEqual([['rn-b']]);

    const q = await t.request('/v1/streams/rn-b/query?format=csv');
    expect((await q.text()).trim().split('\n')).toHaveLength(13);
    const rec = await get<Record<string, unknown>>(`/v1/ingests/${first.id}`, instrument);
    expect(rec.body).toMatchObject({ stream: 'rn-a', stream_current: 'rn-b' });
    const listed = await get<{ ingests: { id: string }[] }>('/v1/ingests?stream=rn-b');
    expect(listed.body.ingests.map((i) => i.id)).toContain(first.id);
    const holds = await get<{ holds: { id: number }[] }>('/v1/holds?stream=rn-b');
    expect(holds.body.holds.map((h) => h.id)).toEqual([holdId]);
    expect((await t.request('/v1/streams/rn-b', { method: 'DELETE' })).status).toBe(409);

    const entry = await lastAudit('stream.rename');
    expect(entry).toMatchObject({ subject: 'stream:rn-a', details: { before: { name: 'rn-a' }, after: { name: 'rn-b' }, holds: [holdId] } });
    expect((entry.details.keys as number[]).length).toBe(1);
  });

  it('refuses a name that is taken or not a stream name', async () => {
    await committed(t, 'rn-x');
    await committed(t, 'rn-y');
    const taken = await t.request('/v1/streams/rn-x/rename', json({ method: 'POST', body: { name: 'rn-y' } }));
    expect(taken.status).toBe(409);
    expect((await taken.json() as { code: string }).code).toBe('conflict');
    const bad = await t.request('/v1/streams/rn-x/rename', json({ method: 'POST', body: { name: '../etc' } }));
    expect(bad.status).toBe(400);
    expect((await t.request('/v1/streams/rn-x/rename', json({ method: 'POST', body: { name: 'rn-x' } }))).status).toBe(400);
    expect((await t.request('/v1/streams/no-such/rename', json({ method: 'POST', body: { name: 'rn-z' } }))).status).toBe(404);
  });
});
