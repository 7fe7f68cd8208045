// GET /openapi.json: the API as OpenAPI 3.1. Request bodies point at the same JSON Schemas the
// server validates with (schemas/*.schema.json); the roles of each operation come from the
// permission table in auth.ts, so the description cannot drift from what is enforced.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { schemasDir } from '../db/migrate.ts';
import { errorCodes } from '../errors/index.ts';
import { type Permission, rolesWith } from './auth.ts';
import { supportedContentTypes } from '../ingest/formats.ts';

interface Op {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  summary: string;
  permission?: Permission;
  body?: string;
  query?: [string, string][];
  ok: number;
  raw?: 'ingest' | 'download' | 'query';
}

const ops: Op[] = [
  { method: 'get', path: '/healthz', summary: 'Liveness', ok: 200 },
  { method: 'get', path: '/readyz', summary: 'Readiness: database reachable, migrations applied, job health', ok: 200 },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics', ok: 200 },
  { method: 'get', path: '/openapi.json', summary: 'This API description (OpenAPI 3.1)', ok: 200 },
  { method: 'post', path: '/v1/streams', summary: 'Create a stream', permission: 'streams:write', body: 'stream', ok: 201 },
  { method: 'get', path: '/v1/streams', summary: 'List streams', permission: 'streams:read', ok: 200 },
  { method: 'get', path: '/v1/streams/{stream}', summary: 'Show a stream', permission: 'streams:read', ok: 200 },
  { method: 'patch', path: '/v1/streams/{stream}', summary: 'Change description, labels, rollup levels, retention, HDF5 mapping', permission: 'streams:write', body: 'stream-patch', ok: 200 },
  { method: 'post', path: '/v1/streams/{stream}/ingest', summary: 'Upload a file (Arrow IPC stream or file, HDF5, netCDF4)', permission: 'ingest', ok: 201, raw: 'ingest',
    query: [['time_column', 'which timestamp column is time'], ['create', 'false: do not create the stream'], ['mapping', 'HDF5 mapping JSON (schemas/hdf5-mapping.schema.json)']] },
  { method: 'get', path: '/v1/streams/{stream}/query', summary: 'Raw rows or aggregates as JSON, CSV or Arrow', permission: 'query', ok: 200, raw: 'query',
    query: [['from', 'RFC 3339, inclusive'], ['to', 'RFC 3339, exclusive'], ['fields', 'comma-separated columns'], ['tag.<name>', 'tag filter, repeatable'],
      ['resolution', 'raw | <level> | <interval> | auto | lttb'], ['max_points', 'for auto and lttb'], ['agg', 'avg,min,max,count,sum,first,last | m4'],
      ['fill', 'none | null | previous | linear'], ['tz', 'IANA zone for day and week buckets'], ['group_by', 'a tag'], ['format', 'json | csv | arrow'], ['limit', 'raw rows at most']] },
  { method: 'get', path: '/v1/streams/{stream}/provenance', summary: 'The ingests whose rows hold a reading or a bucket', permission: 'provenance:read', ok: 200,
    query: [['time', 'RFC 3339 instant'], ['tag.<name>', 'tag value'], ['resolution', 'a bucket width instead of one reading']] },
  { method: 'get', path: '/v1/ingests', summary: 'List ingests', permission: 'ingests:read', ok: 200,
    query: [['stream', ''], ['from', ''], ['to', ''], ['status', 'committed | rejected | retracted'], ['instrument', ''], ['after', 'ingest id'], ['limit', '1–1000']] },
  { method: 'get', path: '/v1/ingests/{id}', summary: 'An ingest record with its audit entries', permission: 'ingests:read', ok: 200 },
  { method: 'get', path: '/v1/ingests/{id}/prov', summary: 'W3C PROV-JSON lineage of an ingest', permission: 'provenance:read', ok: 200 },
  { method: 'get', path: '/v1/ingests/{id}/original', summary: 'The uploaded body, re-hashed before it is served', permission: 'originals:read', ok: 200, raw: 'download' },
  { method: 'post', path: '/v1/ingests/{id}/retract', summary: 'Retract an ingest: remove its rows, keep its record', permission: 'retract', body: 'retract', ok: 200 },
  { method: 'get', path: '/v1/audit', summary: 'Page through the audit log', permission: 'audit:read', ok: 200,
    query: [['after', 'sequence'], ['limit', ''], ['action', ''], ['subject', '']] },
  { method: 'get', path: '/v1/audit/verify', summary: 'Recompute the audit hash chain', permission: 'audit:read', ok: 200, query: [['expect', '<seq>:<hash> from an outside copy']] },
  { method: 'post', path: '/v1/keys', summary: 'Create an API key (the secret is shown once)', permission: 'keys:admin', body: 'key', ok: 201 },
  { method: 'get', path: '/v1/keys', summary: 'List API keys', permission: 'keys:admin', ok: 200 },
  { method: 'delete', path: '/v1/keys/{id}', summary: 'Revoke an API key', permission: 'keys:admin', ok: 200 },
  { method: 'get', path: '/v1/jobs', summary: 'Jobs: schedule, last run, next run, health', permission: 'jobs:read', ok: 200 },
  { method: 'get', path: '/v1/jobs/runs', summary: 'Job run records', permission: 'jobs:read', ok: 200, query: [['job', ''], ['stream', ''], ['limit', '']] },
  { method: 'get', path: '/v1/jobs/runs/{id}', summary: 'One job run record', permission: 'jobs:read', ok: 200 },
  { method: 'post', path: '/v1/jobs/{name}/run', summary: 'Run a job now and wait for its run record', permission: 'jobs:run', ok: 200, query: [['stream', 'limit the run to one stream']] },
  { method: 'post', path: '/v1/holds', summary: 'Place a legal hold', permission: 'holds:write', body: 'hold', ok: 201 },
  { method: 'get', path: '/v1/holds', summary: 'List legal holds', permission: 'holds:read', ok: 200 },
  { method: 'get', path: '/v1/holds/{id}', summary: 'One legal hold', permission: 'holds:read', ok: 200 },
  { method: 'delete', path: '/v1/holds/{id}', summary: 'Release a legal hold', permission: 'holds:write', body: 'hold-release', ok: 200 },
];

function loadSchemas(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of readdirSync(schemasDir).filter((x) => x.endsWith('.schema.json'))) {
    const { $schema: _s, $id: _i, ...schema } = JSON.parse(readFileSync(path.join(schemasDir, f), 'utf8')) as Record<string, unknown>;
    out[f.replace('.schema.json', '')] = schema;
  }
  return out;
}

function operation(op: Op): Record<string, unknown> {
  const params: unknown[] = [];
  for (const m of op.path.matchAll(/\{(\w+)\}/g)) params.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
  for (const [name, description] of op.query ?? []) params.push({ name, in: 'query', required: false, description, schema: { type: 'string' } });
  const roles = op.permission ? rolesWith(op.permission) : [];
  const out: Record<string, unknown> = {
    summary: op.summary,
    description: op.permission ? `Roles: ${roles.join(', ')} (a key limited to some streams may only act on those).` : 'No key needed.',
    parameters: params,
    responses: {
      [op.ok]: { description: 'success' },
      default: { description: 'an error', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } },
    },
  };
  if (op.permission) out.security = [{ bearer: [] }];
  if (op.body) out.requestBody = { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${op.body}` } } } };
  if (op.raw === 'ingest') {
    out.requestBody = { required: true, content: Object.fromEntries(supportedContentTypes.map((t) => [t, { schema: { type: 'string', format: 'binary' } }])) };
  }
  return out;
}

let cached: unknown = null;

export function openApiDocument(version: string): unknown {
  if (cached) return cached;
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of ops) (paths[op.path] ??= {})[op.method] = operation(op);
  cached = {
    openapi: '3.1.0',
    info: { title: 'Strata', version, description: 'Time-series ingestion for scientific labs: Arrow and HDF5 in, provenance for every reading.' },
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key: Authorization: Bearer strata_…' } },
      schemas: {
        ...loadSchemas(),
        Problem: {
          type: 'object', required: ['type', 'title', 'status', 'code', 'detail'],
          properties: {
            type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' },
            code: { enum: Object.keys(errorCodes) }, detail: { type: 'string' }, instance: { type: 'string' }, request_id: { type: 'string' },
          },
        },
      },
    },
  };
  return cached;
}
