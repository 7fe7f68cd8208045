// The role matrix: every route (test/access/routes.ts) × every role, each unscoped, scoped to the
// stream the request acts on, and scoped to another stream — plus no key, a revoked key and an
// unknown key — gives exactly the expected 2xx, 401 or 403. A refused request changes nothing:
// the audit log's head is the same before and after it. Every route the server registers must be
// in the table.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { committed } from '../helpers/uploads.ts';
import { type MatrixContext, type RouteCase, routeCases } from './routes.ts';
import type { Role } from '../../src/keys/api-keys.ts';
import { auditHead } from '../../src/audit/log.ts';
import { createKey } from '../../src/keys/api-keys.ts';

type Scope = 'none' | 'same' | 'other';
interface Principal {
  label: string;
  secret: string | null;
  role?: Role;
  scope?: Scope;
  /** The key that uploaded ctx.ingestId. */
  owner?: boolean;
  invalid?: boolean;
}

const STREAM = 'matrix-a';
const OTHER = 'matrix-b';
const SCRATCH = ['matrix-a-scratch', 'matrix-a-renamed'] as const;
let t: TestApp;
let ctx: MatrixContext;
const principals: Principal[] = [];

beforeAll(async () => {
  t = await createTestApp();
  let n = 0;
  const unique = (prefix: string): string => `${prefix}-${++n}-${Math.random().toString(36).slice(2, 8)}`;
  for (const role of ['admin', 'instrument', 'reader', 'auditor'] as const) {
    for (const scope of ['none', 'same', 'other'] as const) {
      const streams = scope === 'none' ? undefined : scope === 'same' ? [STREAM, ...SCRATCH] : [OTHER];
      principals.push({ label: `${role}/${scope}`, secret: await t.key(role, streams), role, scope });
    }
  }
  const owner = principals.find((p) => p.label === 'instrument/none') as Principal;
  owner.owner = true;
  const revoked = await createKey(t.db, { name: 'revoked admin', role: 'admin' }, { keyId: null, role: 'system' });
  const res = await t.request(`/v1/keys/${revoked.key.id}`, { method: 'DELETE' });
  expect(res.status).toBe(200);
  principals.push({ label: 'no key', secret: null, invalid: true });
  principals.push({ label: 'revoked admin key', secret: revoked.secret, invalid: true });
  principals.push({ label: 'unknown key', secret: `strata_${'x'.repeat(43)}`, invalid: true });

  const first = await committed(t, STREAM, { key: owner.secret, sample: 'S-1' });
  ctx = {
    t, stream: STREAM, ingestId: first.id, readingTime: String(first.body.ingest.time_min), unique, scratch: SCRATCH,
    freshIngest: async () => (await committed(t, STREAM, { key: owner.secret })).id,
    freshKeyId: async () => (await createKey(t.db, { name: unique('doomed'), role: 'reader' }, { keyId: null, role: 'system' })).key.id,
  };
});
afterAll(async () => { await t.close(); });

function expected(route: RouteCase, p: Principal): number {
  if (route.target === 'public') return route.ok;
  if (p.invalid) return 401;
  const role = p.role as Role;
  if (!route.allowed.includes(role)) return 403;
  if (route.target === 'global' && p.scope !== 'none') return 403;
  if (route.target === 'stream' && p.scope === 'other') return 403;
  if (route.ownIngestOnly && role === 'instrument' && !p.owner) return 403;
  return route.ok;
}

describe('role matrix', () => {
  it('covers every route the server registers', () => {
    const registered = new Set(t.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path}`));
    const listed = new Set(routeCases.map((r) => `${r.method} ${r.path}`));
    expect([...registered].filter((r) => !listed.has(r)), 'routes missing from test/access/routes.ts').toEqual([]);
    expect([...listed].filter((r) => !registered.has(r)), 'rows for routes the server does not have').toEqual([]);
  });

  it('answers every route × principal with the expected status, and a refusal changes nothing', async () => {
    const wrong: string[] = [];
    for (const route of routeCases) {
      for (const p of principals) {
        const { url, init } = await route.request(ctx);
        const before = await auditHead(t.db.pool);
        const res = await t.request(url, { ...(init ?? {}), key: p.secret });
        const want = expected(route, p);
        const text = await res.text();
        if (res.status !== want) {
          wrong.push(`${route.method} ${route.path} as ${p.label}: ${res.status}, expected ${want} — ${text.slice(0, 200)}`);
          continue;
        }
        if (want === 401 || want === 403) {
          const problem = JSON.parse(text) as { code: string };
          const code = want === 401 ? 'unauthorized' : 'forbidden';
          if (problem.code !== code) wrong.push(`${route.method} ${route.path} as ${p.label}: code ${problem.code}, expected ${code}`);
          const after = await auditHead(t.db.pool);
          if (after?.seq !== before?.seq) wrong.push(`${route.method} ${route.path} as ${p.label}: refused, yet the audit log grew`);
        }
      }
    }
    expect(wrong).toEqual([]);
  }, 300_000); // hundreds of requests; generous for a loaded machine

  it('filters lists by scope and ownership', async () => {
    const of = (label: string): Principal => principals.find((p) => p.label === label) as Principal;
    const streams = async (p: Principal): Promise<string[]> =>
      ((await (await t.request('/v1/streams', { key: p.secret })).json()) as { streams: { name: string }[] }).streams.map((s) => s.name);
    expect(await streams(of('reader/none'))).toContain(STREAM);
    expect(await streams(of('reader/same'))).toContain(STREAM);
    expect((await streams(of('reader/same'))).filter((s) => s !== STREAM && !SCRATCH.includes(s as never))).toEqual([]);
    expect(await streams(of('reader/other'))).toEqual([]);
    const ingests = async (p: Principal): Promise<string[]> =>
      ((await (await t.request(`/v1/ingests?stream=${STREAM}`, { key: p.secret })).json()) as { ingests: { id: string }[] }).ingests.map((i) => i.id);
    expect(await ingests(of('auditor/none'))).toContain(ctx.ingestId);
    expect(await ingests(of('auditor/other'))).toEqual([]);
    expect(await ingests(of('instrument/none'))).toContain(ctx.ingestId);
    // Instrument keys see only what they uploaded, even within their scope.
    expect(await ingests(of('instrument/same'))).not.toContain(ctx.ingestId);
  });
});
