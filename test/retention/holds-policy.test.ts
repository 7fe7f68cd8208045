// Legal holds through the API (placed, listed, released; audited; who may) and retention
// policies as a stream setting (checked against the stream's rollup levels, normalised, audited).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';

let t: TestApp;
const json = (body: unknown, method = 'POST'): RequestInit => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

beforeAll(async () => {
  t = await createTestApp();
  for (const name of ['held', 'other']) {
    const res = await t.request('/v1/streams', json({ name, tags: ['sample'], fields: [{ name: 'value', type: 'float8' }] }));
    expect(res.status).toBe(201);
  }
});
afterAll(async () => { await t.close(); });

async function auditOf(action: string): Promise<{ actor_role: string; subject: string; details: Record<string, unknown> }[]> {
  const { rows } = await t.db.pool.query('SELECT actor_role, subject, details FROM strata.audit_log WHERE action = $1 ORDER BY seq', [action]);
  return rows;
}

describe('legal holds', () => {
  it('are placed, shown, released once, and audited both ways', async () => {
    const res = await t.request('/v1/holds', json({ stream: 'held', from: '2024-03-10T00:00:00Z', to: '2024-03-13T00:00:00Z', reason: 'litigation 2024-17' }));
    expect(res.status).toBe(201);
    const hold = await res.json() as { id: number; active: boolean; from: string; to: string; created_by: number };
    expect(hold).toMatchObject({ stream: 'held', active: true, from: '2024-03-10T00:00:00.000000Z', to: '2024-03-13T00:00:00.000000Z', reason: 'litigation 2024-17' });
    expect(res.headers.get('location')).toBe(`/v1/holds/${hold.id}`);
    const open = await t.request('/v1/holds', json({ stream: 'other', reason: 'everything, until further notice' }));
    expect(await open.json()).toMatchObject({ from: null, to: null, active: true });

    const list = await (await t.request('/v1/holds?stream=held&active=true')).json() as { holds: { id: number }[] };
    expect(list.holds.map((h) => h.id)).toEqual([hold.id]);
    expect((await (await t.request(`/v1/holds/${hold.id}`)).json() as { reason: string }).reason).toBe('litigation 2024-17');

    const rel = await t.request(`/v1/holds/${hold.id}`, json({ reason: 'case closed' }, 'DELETE'));
    expect(rel.status).toBe(200);
    expect(await rel.json()).toMatchObject({ active: false, release_reason: 'case closed', released_by: hold.created_by });
    const twice = await t.request(`/v1/holds/${hold.id}`, { method: 'DELETE' });
    expect(twice.status).toBe(409);
    expect((await twice.json() as { code: string }).code).toBe('hold_released');
    expect((await (await t.request('/v1/holds?stream=held&active=false')).json() as { holds: unknown[] }).holds).toHaveLength(1);

    const created = await auditOf('hold.create');
    expect(created.map((a) => a.subject)).toContain(`hold:${hold.id}`);
    expect(created.find((a) => a.subject === `hold:${hold.id}`)?.details).toMatchObject({ stream: 'held', reason: 'litigation 2024-17', from: hold.from, to: hold.to });
    const released = await auditOf('hold.release');
    expect(released).toEqual([expect.objectContaining({ subject: `hold:${hold.id}`, actor_role: 'admin', details: expect.objectContaining({ release_reason: 'case closed' }) })]);
  });

  it('refuses what makes no sense, naming it', async () => {
    const cases: [unknown, number, string][] = [
      [{ stream: 'nope', reason: 'x' }, 404, 'stream "nope" does not exist'],
      [{ stream: 'held', reason: 'x', from: '2024-03-13T00:00:00Z', to: '2024-03-10T00:00:00Z' }, 400, 'must be after'],
      [{ stream: 'held', reason: 'x', from: 'last tuesday' }, 400, 'from='],
      [{ stream: 'held' }, 400, 'reason'],
      [{ stream: 'held', reason: 'x', until: '2025' }, 400, 'until'],
    ];
    for (const [body, status, text] of cases) {
      const res = await t.request('/v1/holds', json(body));
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect((await res.json() as { detail: string }).detail).toContain(text);
    }
    expect((await t.request('/v1/holds/999999', { method: 'DELETE' })).status).toBe(404);
    expect((await t.request('/v1/holds/abc')).status).toBe(400);
  });

  it('may be read by auditors and placed only by admins', async () => {
    const auditor = await t.key('auditor');
    const reader = await t.key('reader');
    expect((await t.request('/v1/holds', { key: auditor })).status).toBe(200);
    expect((await t.request('/v1/holds', { ...json({ stream: 'held', reason: 'x' }), key: auditor })).status).toBe(403);
    expect((await t.request('/v1/holds', { key: reader })).status).toBe(403);
    const scoped = await t.key('auditor', ['other']);
    const seen = await (await t.request('/v1/holds', { key: scoped })).json() as { holds: { stream: string }[] };
    expect(seen.holds.every((h) => h.stream === 'other')).toBe(true);
    const held = await (await t.request('/v1/holds?stream=held')).json() as { holds: { id: number }[] };
    expect((await t.request(`/v1/holds/${held.holds[0].id}`, { key: scoped })).status).toBe(403);
    const scopedAdmin = await t.key('admin', ['other']);
    expect((await t.request('/v1/holds', { ...json({ stream: 'held', reason: 'x' }), key: scopedAdmin })).status).toBe(403);
    expect((await t.request(`/v1/holds/${held.holds[0].id}`, { method: 'DELETE', key: scopedAdmin })).status).toBe(403);
  });
});

describe('retention policies', () => {
  it('are checked against the stream\'s levels, normalised, and audited with the stream', async () => {
    const levels = await t.request('/v1/streams/held', json({ rollups: ['1h'] }, 'PATCH'));
    expect(levels.status, await levels.clone().text()).toBe(200);
    const bad: [unknown, number, string][] = [
      [{ raw: '1 month' }, 400, 'months and years vary in length'],
      [{ raw: 'forever' }, 400, '"forever"'],
      [{ raw: '10 seconds' }, 400, 'at least 1 minute'],
      ['30 days', 400, 'must be an object'],
      [{ '1w': null }, 422, 'the stream\'s levels are "raw", "1h"'],
      [{ '1m': '1 day' }, 422, 'the stream\'s levels are "raw", "1h"'], // a default level the stream no longer has
    ];
    for (const [retention, status, text] of bad) {
      const res = await t.request('/v1/streams/held', json({ retention }, 'PATCH'));
      expect(res.status, JSON.stringify(retention)).toBe(status);
      expect((await res.json() as { detail: string }).detail).toContain(text);
    }
    const ok = await t.request('/v1/streams/held', json({ retention: { raw: '720 hours', '1h': null } }, 'PATCH'));
    expect(ok.status).toBe(200);
    expect((await ok.json() as { retention: unknown }).retention).toEqual({ raw: '30 days', '1h': null });
    const again = await t.request('/v1/streams/held', json({ retention: { raw: '7 days' } }, 'PATCH'));
    expect((await again.json() as { retention: unknown }).retention).toEqual({ raw: '1 week' });
    const updates = (await auditOf('stream.update')).filter((a) => a.subject === 'stream:held');
    expect(updates.at(-1)?.details).toEqual({ before: { retention: { raw: '30 days', '1h': null } }, after: { retention: { raw: '1 week' } } });
    // Removing the policy keeps everything forever.
    const off = await t.request('/v1/streams/held', json({ retention: null }, 'PATCH'));
    expect((await off.json() as { retention: unknown }).retention).toBeNull();
  });

  it('can be given when a stream is defined, or with its levels in one request', async () => {
    const res = await t.request('/v1/streams', json({ name: 'defined', fields: [{ name: 'v', type: 'float8' }], retention: { raw: '168 hours', '1d': null } }));
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await res.json()).toMatchObject({ rollups: ['1m', '1h', '1d'], retention: { raw: '1 week', '1d': null } }); // the default levels
    const refused = await t.request('/v1/streams', json({ name: 'defined2', rollups: [], retention: { '1m': '1 day' } }));
    expect(refused.status).toBe(422);
    expect((await refused.json() as { detail: string }).detail).toContain('the stream\'s levels are "raw"');
    expect((await t.request('/v1/streams/defined2')).status).toBe(404); // nothing half-made
    const both = await t.request('/v1/streams/defined', json({ rollups: ['15m', '1h'], retention: { raw: '2 days', '15m': '30 days' } }, 'PATCH'));
    expect(both.status, await both.clone().text()).toBe(200);
    expect(await both.json()).toMatchObject({ rollups: ['15m', '1h'], retention: { raw: '2 days', '15m': '30 days' } });
    // A level removed later takes its data with it; the policy's entry for it is then ignored,
    // and retention runs say so.
    const dropLevel = await t.request('/v1/streams/defined', json({ rollups: ['1h'] }, 'PATCH'));
    expect(dropLevel.status).toBe(200);
    const run = await t.request('/v1/jobs/retention/run?stream=defined', { method: 'POST' });
    expect(await run.json()).toMatchObject({ outcome: 'succeeded', details: { streams: { defined: { ignored_levels: ['15m'] } } } });
  });
});
