// /openapi.json is valid OpenAPI 3.1 (checked by @apidevtools/swagger-parser against the 3.1
// schema, references resolved), documents exactly the routes the app serves, and every
// operation refuses query parameters it does not declare.
import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { routeCases } from '../access/routes.ts';
import { loggerBody } from '../helpers/uploads.ts';
import { operations } from '../../src/http/operations.ts';
import { asComponent } from '../../src/http/openapi.ts';

let t: TestApp;
type Doc = { openapi: string; paths: Record<string, Record<string, Record<string, unknown>>>; components: { schemas: Record<string, unknown> } };
let doc: Doc;
beforeAll(async () => {
  t = await createTestApp();
  const res = await t.request('/openapi.json', { key: null });
  expect(res.status).toBe(200);
  doc = await res.json() as Doc;
});
afterAll(async () => { await t.close(); });

describe('the document', () => {
  it('is valid OpenAPI 3.1 with every reference resolving', async () => {
    expect(doc.openapi).toBe('3.1.0');
    // validate() checks the document against the OpenAPI 3.1 JSON Schema and dereferences every $ref.
    const api = await SwaggerParser.validate(structuredClone(doc) as never);
    expect(api).toBeTruthy();
    expect(JSON.stringify(doc)).not.toContain('#/definitions/');
  });

  it('keeps a request-body schema\'s own references inside its component', () => {
    const mapping = doc.components.schemas['hdf5-mapping'] as { $defs: Record<string, unknown>; properties: { time: { $ref: string } } };
    expect(mapping.$defs.time).toBeDefined();
    expect(mapping.properties.time.$ref).toBe('#/components/schemas/hdf5-mapping/$defs/time');
    expect(asComponent('x', { definitions: { a: {} }, items: { $ref: '#/definitions/a' } })).toEqual({ $defs: { a: {} }, items: { $ref: '#/components/schemas/x/$defs/a' } });
  });

  it('documents exactly the routes the app serves', () => {
    const served = new Set(t.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`));
    const documented = new Set(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)));
    expect([...served].sort()).toEqual([...documented].sort());
  });

  it('gives every success response a content type, a schema and the request id header', () => {
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(ops)) {
        const responses = op.responses as Record<string, { content?: Record<string, { schema?: unknown }>; headers?: Record<string, unknown> }>;
        const ok = Object.entries(responses).filter(([s]) => /^2\d\d$/.test(s));
        expect(ok.length, `${m} ${p}`).toBe(1);
        const [, r] = ok[0];
        expect(Object.keys(r.content ?? {}).length, `${m} ${p}`).toBeGreaterThan(0);
        for (const c of Object.values(r.content ?? {})) expect(c.schema, `${m} ${p}`).toBeDefined();
        expect(r.headers?.['X-Request-Id'], `${m} ${p}`).toBeDefined();
      }
    }
  });

  it('describes headers, tag parameters and the upload body', () => {
    const ingest = doc.paths['/v1/streams/{stream}/ingest'].post as { parameters: { name: string; in: string; style?: string; explode?: boolean }[]; requestBody: { content: Record<string, unknown> } };
    const headers = ingest.parameters.filter((p) => p.in === 'header').map((p) => p.name);
    expect(headers).toEqual(expect.arrayContaining(['Idempotency-Key', 'Strata-Provenance', 'Content-Encoding']));
    expect(Object.keys(ingest.requestBody.content)).toContain('application/vnd.apache.arrow.stream');
    const query = doc.paths['/v1/streams/{stream}/query'].get as { parameters: { name: string; style?: string; explode?: boolean }[]; responses: Record<string, { headers: Record<string, unknown>; content: Record<string, unknown> }> };
    expect(query.parameters.map((p) => p.name)).not.toContain('tag.<name>');
    expect(query.parameters.find((p) => p.name === 'tag')).toMatchObject({ style: 'form', explode: true });
    expect(query.responses['200'].headers['Strata-Served-By']).toBeDefined();
    expect(Object.keys(query.responses['200'].content)).toEqual(expect.arrayContaining(['application/json', 'text/csv; charset=utf-8', 'application/vnd.apache.arrow.stream']));
    expect((doc.paths['/v1/streams'].post.responses as Record<string, { headers: Record<string, unknown> }>)['201'].headers.Location).toBeDefined();
  });

  it('lists every /v1 route with its roles, and the request-body schemas the server validates with', () => {
    for (const rc of routeCases) {
      const p = rc.path.replace(/:(\w+)/g, '{$1}');
      const op = doc.paths[p]?.[rc.method.toLowerCase()] as { description: string } | undefined;
      expect(op, `${rc.method} ${p}`).toBeDefined();
      if (p.startsWith('/v1/') && op) for (const role of rc.allowed) expect(op.description, `${rc.method} ${p}`).toContain(role);
    }
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['stream', 'stream-patch', 'key', 'provenance', 'hold', 'Problem']));
  });
});

describe('undeclared query parameters', () => {
  it('are refused on every route, naming them and what the route takes', async () => {
    for (const op of operations) {
      const url = `${op.path.replace(/\{\w+\}/g, 'x')}?bogus_param=1`;
      const res = await t.request(url, { method: op.method.toUpperCase() });
      expect(res.status, `${op.method} ${op.path}`).toBe(400);
      const body = await res.json() as { code: string; detail: string; parameters: string[] };
      expect(body.code, `${op.method} ${op.path}`).toBe('unknown_parameter');
      expect(body.parameters).toEqual(['bogus_param']);
      expect(body.detail).toContain('"bogus_param"');
    }
  });

  it('catch a typo that would otherwise widen the answer', async () => {
    const up = await t.request('/v1/streams/typo/ingest', {
      method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream' }, body: loggerBody(),
    });
    expect(up.status).toBe(201);
    const res = await t.request('/v1/streams/typo/query?form=2024-03-01T00:00:00Z&format=csv');
    expect(res.status).toBe(400);
    const body = await res.json() as { code: string; detail: string };
    expect(body.code).toBe('unknown_parameter');
    expect(body.detail).toContain('"form"');
    expect(body.detail).toContain('from');
    // Declared parameters and tag filters pass.
    const ok = await t.request('/v1/streams/typo/query?from=2024-03-01T00:00:00Z&tag.sample=S-1&limit=1');
    await ok.arrayBuffer();
    expect(ok.status).toBe(200);
  });

  it('on an upload are recorded as a rejected ingest, with nothing stored', async () => {
    const res = await t.request('/v1/streams/typo2/ingest?time_colum=time', {
      method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream' }, body: loggerBody(),
    });
    expect(res.status).toBe(400);
    const body = await res.json() as { code: string; ingest_id: string };
    expect(body.code).toBe('unknown_parameter');
    const rec = await (await t.request(`/v1/ingests/${body.ingest_id}`)).json() as { status: string; error: { code: string }; rows: number };
    expect(rec).toMatchObject({ status: 'rejected', error: { code: 'unknown_parameter' }, rows: 0 });
    expect((await t.request('/v1/streams/typo2')).status).toBe(404);
  });

  it('a date without a time and zone is refused, naming the fix', async () => {
    const res = await t.request('/v1/streams/typo/query?from=2024-03-01');
    expect(res.status).toBe(400);
    expect((await res.json() as { detail: string }).detail).toContain('2024-03-01T00:00:00Z');
  });
});
