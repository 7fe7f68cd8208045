// /openapi.json describes every route the role matrix knows, with the roles the server enforces.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { routeCases } from '../access/routes.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

it('lists every /v1 route with its roles, and the request-body schemas the server validates with', async () => {
  const res = await t.request('/openapi.json', { key: null });
  expect(res.status).toBe(200);
  const doc = await res.json() as { paths: Record<string, Record<string, { description: string; requestBody?: unknown }>>; components: { schemas: Record<string, unknown> } };
  for (const rc of routeCases) {
    const p = rc.path.replace(/:(\w+)/g, '{$1}');
    const op = doc.paths[p]?.[rc.method.toLowerCase()];
    expect(op, `${rc.method} ${p}`).toBeDefined();
    if (p.startsWith('/v1/')) for (const role of rc.allowed) expect(op.description, `${rc.method} ${p}`).toContain(role);
  }
  expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['stream', 'stream-patch', 'key', 'provenance', 'hold', 'Problem']));
});
