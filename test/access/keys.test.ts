// API keys: the secret is shown once and only its hash is kept; keys carry a role and an optional
// stream scope, record their last use, and are revocable (audited, effective at once); the last
// full admin key cannot be revoked.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { json, upload } from '../helpers/uploads.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

interface KeyJson { id: number; name: string; role: string; streams: string[] | null; key?: string; last_used_at: string | null; revoked_at: string | null; revoked_by: number | null; created_by: number | null; prefix: string }

async function create(body: unknown, key?: string): Promise<Response> {
  return t.request('/v1/keys', json({ method: 'POST', body, key }));
}

describe('API keys', () => {
  it('shows the secret once, stores only its hash, and records the creator', async () => {
    const res = await create({ name: 'rig-7 uploader', role: 'instrument', streams: ['rig-7'] });
    expect(res.status).toBe(201);
    const k = await res.json() as KeyJson;
    expect(k).toMatchObject({ name: 'rig-7 uploader', role: 'instrument', streams: ['rig-7'], created_by: 1, last_used_at: null });
    expect(k.key).toMatch(/^strata_[A-Za-z0-9_-]{43}$/);
    expect(k.key?.startsWith(k.prefix)).toBe(true);
    const listed = ((await (await t.request('/v1/keys')).json()) as { keys: KeyJson[] }).keys.find((x) => x.id === k.id);
    expect(listed).not.toHaveProperty('key');
    const { rows } = await t.db.pool.query('SELECT * FROM strata.api_keys WHERE id = $1', [k.id]);
    expect(JSON.stringify(rows[0])).not.toContain(k.key?.slice(12));
    expect((rows[0].secret_sha256 as Buffer).toString('hex')).toBe(createHash('sha256').update(k.key as string).digest('hex'));
    const audit = await (await t.request(`/v1/audit?subject=key:${k.id}`)).json() as { entries: { action: string; details: Record<string, unknown> }[] };
    expect(audit.entries.map((e) => e.action)).toEqual(['key.create']);
    expect(JSON.stringify(audit.entries)).not.toContain(k.key?.slice(12));
  });

  it('records the last use of a key', async () => {
    const k = await (await create({ name: 'reader', role: 'reader' })).json() as KeyJson;
    expect((await t.request('/v1/streams', { key: k.key })).status).toBe(200);
    const listed = ((await (await t.request('/v1/keys')).json()) as { keys: KeyJson[] }).keys.find((x) => x.id === k.id) as KeyJson;
    expect(listed.last_used_at).not.toBeNull();
    expect(Date.now() - Date.parse(listed.last_used_at as string)).toBeLessThan(60_000);
  });

  it('limits an instrument key to its streams: it may create and fill those, nothing else', async () => {
    const k = await (await create({ name: 'scoped', role: 'instrument', streams: ['rig-8'] })).json() as KeyJson;
    expect((await upload(t, 'rig-8', { key: k.key })).status).toBe(201);
    const other = await upload(t, 'rig-9', { key: k.key });
    expect(other.status).toBe(403);
    expect((await t.request('/v1/streams/rig-9')).status).toBe(404);
  });

  it('revokes a key at once, audits it once, and keeps it listed', async () => {
    const k = await (await create({ name: 'leaving', role: 'auditor' })).json() as KeyJson;
    expect((await t.request('/v1/audit', { key: k.key })).status).toBe(200);
    const res = await t.request(`/v1/keys/${k.id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: k.id, revoked_by: 1 });
    const denied = await t.request('/v1/audit', { key: k.key });
    expect(denied.status).toBe(401);
    expect(((await denied.json()) as { code: string }).code).toBe('unauthorized');
    expect((await t.request(`/v1/keys/${k.id}`, { method: 'DELETE' })).status).toBe(200);
    const audit = await (await t.request(`/v1/audit?subject=key:${k.id}`)).json() as { entries: { action: string; actor_key_id: number }[] };
    expect(audit.entries.map((e) => e.action)).toEqual(['key.create', 'key.revoke']);
    expect(audit.entries[1].actor_key_id).toBe(1);
  });

  it('refuses malformed key requests', async () => {
    for (const body of [{}, { name: 'x' }, { name: '', role: 'reader' }, { name: 'x', role: 'root' }, { name: 'x', role: 'reader', streams: ['../etc'] },
      { name: 'x', role: 'reader', streams: 'lab' }, { name: 'x', role: 'reader', extra: true }, { name: 'x'.repeat(300), role: 'reader' }]) {
      const res = await create(body);
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
    }
    expect((await t.request('/v1/keys/abc', { method: 'DELETE' })).status).toBe(400);
    expect((await t.request('/v1/keys/0', { method: 'DELETE' })).status).toBe(400);
    expect((await t.request('/v1/keys/999999', { method: 'DELETE' })).status).toBe(404);
  });

  it('refuses to revoke the last admin key without a stream scope', async () => {
    const scoped = await (await create({ name: 'stream admin', role: 'admin', streams: ['x'] })).json() as KeyJson;
    const res = await t.request('/v1/keys/1', { method: 'DELETE' });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { detail: string }).detail).toContain('last admin key');
    const second = await (await create({ name: 'second admin', role: 'admin' })).json() as KeyJson;
    expect((await t.request('/v1/keys/1', { method: 'DELETE', key: second.key })).status).toBe(200);
    expect((await t.request(`/v1/keys/${second.id}`, { method: 'DELETE', key: second.key })).status).toBe(409);
    expect(scoped.streams).toEqual(['x']);
  });
});
