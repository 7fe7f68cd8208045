// Every HTTP route with the roles the issues allow to call it — the specification the role-matrix
// test holds the server to. It is written from the issues' role descriptions, not from
// src/http/auth.ts, so a wrong grant there fails the test. A route added to the server without a
// row here fails the matrix test's completeness check: add its row (method, Hono path pattern,
// allowed roles, target, success status, and how to build one request).
//
// Roles (issue 6): admin — everything; instrument — ingest into its scoped streams, read its own
// ingests; reader — streams and queries; auditor — ingests, provenance, originals, audit, retraction
// (and, to check what they audit, streams and queries).
import type { Role } from '../../src/keys/api-keys.ts';
import type { TestApp } from '../helpers/app.ts';
import { ARROW_STREAM } from '../helpers/fixtures.ts';
import { loggerBody } from '../helpers/uploads.ts';

/**
 * What a request acts on, which decides how a key's stream scope applies:
 * - public: no key needed;
 * - stream: stream A (keys scoped to another stream get 403);
 * - list: lists filtered by scope (every scope gets 2xx);
 * - global: the whole server (keys with any stream scope get 403).
 */
export type Target = 'public' | 'stream' | 'list' | 'global';

export interface MatrixContext {
  t: TestApp;
  /** The stream the stream-scoped requests act on (keys scoped "same" are limited to it). */
  stream: string;
  /** An ingest into `stream`, uploaded with the unscoped instrument key. */
  ingestId: string;
  /** The instant of one of its rows, RFC 3339. */
  readingTime: string;
  /** A fresh committed ingest into `stream` by the unscoped instrument key (for retraction). */
  freshIngest(): Promise<string>;
  /** A fresh key id (for revocation). */
  freshKeyId(): Promise<number>;
  /**
   * Two more names in the scope of keys scoped "same": routes that delete or rename a stream act
   * on `scratch[0]` (made anew when gone) and rename it to `scratch[1]`.
   */
  scratch: readonly [string, string];
  unique(prefix: string): string;
}

export interface RouteCase {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** The route pattern as the server registers it. */
  path: string;
  allowed: readonly Role[];
  target: Target;
  /** Instrument keys may call it only for an ingest they uploaded. */
  ownIngestOnly?: boolean;
  /** Status of a successful call. */
  ok: number;
  request(ctx: MatrixContext): Promise<{ url: string; init?: RequestInit }>;
}

const ALL: readonly Role[] = ['admin', 'instrument', 'reader', 'auditor'];
const jsonInit = (method: string, body: unknown): RequestInit => ({
  method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
});

async function freshHold(x: MatrixContext): Promise<number> {
  const res = await x.t.request('/v1/holds', jsonInit('POST', { stream: x.stream, reason: x.unique('matrix hold') }));
  return ((await res.json()) as { id: number }).id;
}

/** The scratch stream exists (again, or renamed back) and its rename target does not. */
async function scratchReady(x: MatrixContext): Promise<void> {
  const [name, renamed] = x.scratch;
  if ((await x.t.request(`/v1/streams/${renamed}`)).status === 200) {
    const res = await x.t.request(`/v1/streams/${renamed}/rename`, jsonInit('POST', { name }));
    if (res.status !== 200) throw new Error(`cannot rename ${renamed} back: ${res.status}`);
  } else if ((await x.t.request(`/v1/streams/${name}`)).status === 404) {
    const res = await x.t.request('/v1/streams', jsonInit('POST', { name, tags: ['sample'], fields: [{ name: 'value', type: 'float8' }] }));
    if (res.status !== 201) throw new Error(`cannot make ${name}: ${res.status}`);
  }
  // A rename moved the scratch names in the scoped keys' scopes: give them all three again.
  await x.t.db.pool.query('UPDATE strata.api_keys SET streams = $2 WHERE $1 = ANY(streams)', [x.stream, [x.stream, name, renamed]]);
}

export const routeCases: RouteCase[] = [
  { method: 'GET', path: '/healthz', allowed: ALL, target: 'public', ok: 200, request: async () => ({ url: '/healthz' }) },
  { method: 'GET', path: '/readyz', allowed: ALL, target: 'public', ok: 200, request: async () => ({ url: '/readyz' }) },
  { method: 'GET', path: '/metrics', allowed: ALL, target: 'public', ok: 200, request: async () => ({ url: '/metrics' }) },
  { method: 'GET', path: '/openapi.json', allowed: ALL, target: 'public', ok: 200, request: async () => ({ url: '/openapi.json' }) },
  { method: 'GET', path: '/', allowed: ALL, target: 'public', ok: 200, request: async () => ({ url: '/' }) },
  { method: 'GET', path: '/ui/:file', allowed: ALL, target: 'public', ok: 200, request: async () => ({ url: '/ui/app.js' }) },
  { method: 'GET', path: '/client/strata.py', allowed: ALL, target: 'public', ok: 200, request: async () => ({ url: '/client/strata.py' }) },

  // A scoped key may create only streams in its scope; the request creates a fresh name, in nobody's scope.
  { method: 'POST', path: '/v1/streams', allowed: ['admin'], target: 'global', ok: 201,
    request: async (x) => ({ url: '/v1/streams', init: jsonInit('POST', { name: x.unique('made'), tags: ['sample'], fields: [{ name: 'value', type: 'float8' }] }) }) },
  { method: 'GET', path: '/v1/streams', allowed: ALL, target: 'list', ok: 200, request: async () => ({ url: '/v1/streams' }) },
  { method: 'GET', path: '/v1/streams/:stream', allowed: ALL, target: 'stream', ok: 200, request: async (x) => ({ url: `/v1/streams/${x.stream}` }) },
  { method: 'GET', path: '/v1/streams/:stream/activity', allowed: ALL, target: 'stream', ok: 200, request: async (x) => ({ url: `/v1/streams/${x.stream}/activity` }) },
  { method: 'GET', path: '/v1/whoami', allowed: ALL, target: 'list', ok: 200, request: async () => ({ url: '/v1/whoami' }) },
  { method: 'PATCH', path: '/v1/streams/:stream', allowed: ['admin'], target: 'stream', ok: 200,
    request: async (x) => ({ url: `/v1/streams/${x.stream}`, init: jsonInit('PATCH', { description: x.unique('described') }) }) },
  { method: 'DELETE', path: '/v1/streams/:stream', allowed: ['admin'], target: 'stream', ok: 200,
    request: async (x) => { await scratchReady(x); return { url: `/v1/streams/${x.scratch[0]}`, init: { method: 'DELETE' } }; } },
  { method: 'POST', path: '/v1/streams/:stream/rename', allowed: ['admin'], target: 'stream', ok: 200,
    request: async (x) => { await scratchReady(x); return { url: `/v1/streams/${x.scratch[0]}/rename`, init: jsonInit('POST', { name: x.scratch[1] }) }; } },
  { method: 'POST', path: '/v1/streams/:stream/ingest', allowed: ['admin', 'instrument'], target: 'stream', ok: 201,
    request: async (x) => ({ url: `/v1/streams/${x.stream}/ingest`, init: { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: loggerBody() } }) },
  { method: 'GET', path: '/v1/streams/:stream/query', allowed: ['admin', 'reader', 'auditor'], target: 'stream', ok: 200,
    request: async (x) => ({ url: `/v1/streams/${x.stream}/query` }) },
  { method: 'GET', path: '/v1/streams/:stream/provenance', allowed: ['admin', 'auditor'], target: 'stream', ok: 200,
    request: async (x) => ({ url: `/v1/streams/${x.stream}/provenance?time=${encodeURIComponent(x.readingTime)}` }) },

  { method: 'GET', path: '/v1/ingests', allowed: ['admin', 'instrument', 'auditor'], target: 'list', ok: 200, request: async () => ({ url: '/v1/ingests' }) },
  { method: 'GET', path: '/v1/ingests/:id', allowed: ['admin', 'instrument', 'auditor'], target: 'stream', ownIngestOnly: true, ok: 200,
    request: async (x) => ({ url: `/v1/ingests/${x.ingestId}` }) },
  { method: 'GET', path: '/v1/ingests/:id/prov', allowed: ['admin', 'auditor'], target: 'stream', ok: 200,
    request: async (x) => ({ url: `/v1/ingests/${x.ingestId}/prov` }) },
  { method: 'GET', path: '/v1/ingests/:id/original', allowed: ['admin', 'auditor'], target: 'stream', ok: 200,
    request: async (x) => ({ url: `/v1/ingests/${x.ingestId}/original` }) },
  { method: 'POST', path: '/v1/ingests/:id/retract', allowed: ['admin', 'auditor'], target: 'stream', ok: 200,
    request: async (x) => ({ url: `/v1/ingests/${await x.freshIngest()}/retract`, init: jsonInit('POST', { reason: 'role matrix' }) }) },

  { method: 'GET', path: '/v1/audit', allowed: ['admin', 'auditor'], target: 'global', ok: 200, request: async () => ({ url: '/v1/audit' }) },
  { method: 'GET', path: '/v1/audit/verify', allowed: ['admin', 'auditor'], target: 'global', ok: 200, request: async () => ({ url: '/v1/audit/verify' }) },

  { method: 'POST', path: '/v1/keys', allowed: ['admin'], target: 'global', ok: 201,
    request: async (x) => ({ url: '/v1/keys', init: jsonInit('POST', { name: x.unique('key'), role: 'reader' }) }) },
  { method: 'GET', path: '/v1/keys', allowed: ['admin'], target: 'global', ok: 200, request: async () => ({ url: '/v1/keys' }) },
  { method: 'DELETE', path: '/v1/keys/:id', allowed: ['admin'], target: 'global', ok: 200,
    request: async (x) => ({ url: `/v1/keys/${await x.freshKeyId()}`, init: { method: 'DELETE' } }) },

  { method: 'GET', path: '/v1/jobs', allowed: ['admin', 'auditor'], target: 'global', ok: 200, request: async () => ({ url: '/v1/jobs' }) },
  { method: 'GET', path: '/v1/jobs/runs', allowed: ['admin', 'auditor'], target: 'stream', ok: 200, request: async (x) => ({ url: `/v1/jobs/runs?stream=${x.stream}` }) },
  { method: 'GET', path: '/v1/jobs/runs/:id', allowed: ['admin', 'auditor'], target: 'global', ok: 200,
    request: async (x) => ({ url: `/v1/jobs/runs/${((await (await x.t.request(`/v1/jobs/chunks/run?stream=${x.stream}`, { method: 'POST' })).json()) as { id: number }).id}` }) },
  { method: 'POST', path: '/v1/jobs/:name/run', allowed: ['admin'], target: 'stream', ok: 200, request: async (x) => ({ url: `/v1/jobs/chunks/run?stream=${x.stream}`, init: { method: 'POST' } }) },

  { method: 'POST', path: '/v1/holds', allowed: ['admin'], target: 'stream', ok: 201, request: async (x) => ({ url: '/v1/holds', init: jsonInit('POST', { stream: x.stream, reason: x.unique('hold') }) }) },
  { method: 'GET', path: '/v1/holds', allowed: ['admin', 'auditor'], target: 'list', ok: 200, request: async () => ({ url: '/v1/holds' }) },
  { method: 'GET', path: '/v1/holds/:id', allowed: ['admin', 'auditor'], target: 'stream', ok: 200, request: async (x) => ({ url: `/v1/holds/${await freshHold(x)}` }) },
  { method: 'DELETE', path: '/v1/holds/:id', allowed: ['admin'], target: 'stream', ok: 200, request: async (x) => ({ url: `/v1/holds/${await freshHold(x)}`, init: { method: 'DELETE' } }) },
];
