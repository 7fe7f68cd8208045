// Every HTTP operation Strata serves, declared once: path, permission, query parameters, request
// body, success response and headers. GET /openapi.json is generated from this table, and the
// server refuses query parameters an operation does not declare (params-guard.ts), so a new
// parameter is one entry here. The app test compares this table with the routes Hono serves.
import type { Permission } from './auth.ts';

/** JSON Schema of a parameter's value (OpenAPI 3.1 schema object). */
export type ValueSchema = Record<string, unknown>;

export interface ParamSpec {
  name: string;
  description: string;
  schema?: ValueSchema;
  required?: boolean;
  /** May be given several times (`?expect=…&expect=…`). */
  repeatable?: boolean;
}

/** A success response: its status, content types (each with a schema name or a raw schema) and headers. */
export interface ResponseSpec {
  status: number;
  description: string;
  content: Record<string, string | ValueSchema>;
  headers?: string[];
}

export interface Operation {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  summary: string;
  permission?: Permission;
  query?: readonly ParamSpec[];
  /**
   * `tag.<name>=<value>` parameters are accepted (repeatable): tag filters on reads, constant
   * tags on ingest. The text says what they do here.
   */
  tagParams?: string;
  /** Request headers (names from `headers` in openapi.ts) beside Authorization. */
  requestHeaders?: string[];
  /** Name of the JSON Schema (schemas/<name>.schema.json) the JSON body is validated with. */
  body?: string;
  /** The body is optional (DELETE /v1/holds/{id}). */
  bodyOptional?: boolean;
  /** The body is a file, of one of the content types ingest/formats.ts lists. */
  fileBody?: boolean;
  ok: ResponseSpec;
  /** A refused parameter is recorded like any refused upload (a rejected ingest record). */
  recordsRefusals?: boolean;
}

const str = (extra: ValueSchema = {}): ValueSchema => ({ type: 'string', ...extra });
const int = (minimum: number, maximum: number): ValueSchema => ({ type: 'integer', minimum, maximum });
const instant = (what: string): ParamSpec['schema'] => str({ format: 'date-time', description: `${what}: RFC 3339 with a zone or offset; a date alone is refused` });
const json = (schema: string): Record<string, string> => ({ 'application/json': schema });

/** Read-your-writes with a read standby (STRATA_READ_DATABASE_URL): wait until it has this ingest. */
const afterIngest: ParamSpec = { name: 'after_ingest', description: 'an ingest id the answer must include: with a read standby, waits (STRATA_READ_AFTER_INGEST_WAIT) until the standby has replayed it, then reads from the primary', schema: str({ pattern: '^\\d{1,18}$' }) };

/** Query parameters of GET /v1/streams/{stream}/query, every resolution. */
const queryParams: ParamSpec[] = [
  { name: 'from', description: 'start, inclusive (required for resolutions other than raw)', schema: instant('start') },
  { name: 'to', description: 'end, exclusive (aggregates: default now)', schema: instant('end') },
  { name: 'fields', description: 'comma-separated column names (default all)', schema: str() },
  { name: 'resolution', description: 'raw (default), a rollup level or interval (15s, 5m or 5min, 1h, 1d, 1w), calendar months, quarters or years (1mo, 3mo, 1y), auto or lttb; a bare M is refused', schema: str() },
  { name: 'max_points', description: 'buckets or points for auto and lttb, 2–100000 (default 1000)', schema: int(2, 100_000) },
  { name: 'agg', description: 'comma-separated aggregates of avg, min, max, count, sum, first, last, nan_count (default avg), or m4', schema: str() },
  { name: 'fill', description: 'empty buckets: none (default), null, previous, linear', schema: str({ enum: ['none', 'null', 'previous', 'linear'] }) },
  { name: 'nan', description: 'NaN in aggregates: skip (default, as numpy\'s nan-functions) or propagate (IEEE semantics)', schema: str({ enum: ['skip', 'propagate'] }) },
  { name: 'tz', description: 'IANA time zone: day, week and calendar buckets start at local midnight', schema: str() },
  { name: 'group_by', description: 'a tag: one series per tag value', schema: str() },
  { name: 'format', description: 'json (default), csv, arrow or parquet; also chosen by Accept', schema: str({ enum: ['json', 'csv', 'arrow', 'parquet'] }) },
  { name: 'limit', description: 'raw rows at most', schema: { type: 'integer', minimum: 1 } },
  afterIngest,
];

/** Query parameters of POST /v1/streams/{stream}/ingest. */
const ingestParams: ParamSpec[] = [
  { name: 'time_column', description: 'which column of the file is time', schema: str() },
  { name: 'create', description: 'false: refuse the upload when the stream does not exist (default true)', schema: str({ enum: ['true', 'false', '1', '0', 'yes', 'no'] }) },
  { name: 'mapping', description: 'HDF5/netCDF4 mapping, URL-encoded JSON (components/schemas/hdf5-mapping)', schema: str() },
  { name: 'skip_rows', description: 'CSV: lines before the header row to skip', schema: { type: 'integer', minimum: 0 } },
  { name: 'tz', description: 'CSV: IANA zone of timestamps written without one', schema: str() },
  { name: 'time_unit', description: 'unit of epoch numbers whose file does not declare one (HDF5, netCDF4, CSV): s, ms, us, ns (also min, h, d)', schema: str({ maxLength: 16 }) },
];

const stream: ValueSchema = str({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' });

export const operations: readonly Operation[] = [
  { method: 'get', path: '/healthz', summary: 'Liveness: the process answers', ok: { status: 200, description: 'alive', content: json('Health') } },
  { method: 'get', path: '/readyz', summary: 'Readiness: database reachable, migrations applied, job health',
    ok: { status: 200, description: 'ready (503 with the same body when not)', content: json('Readiness') } },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics',
    ok: { status: 200, description: 'Prometheus text exposition format', content: { 'text/plain; version=0.0.4; charset=utf-8': str() } } },
  { method: 'get', path: '/', summary: 'The web console (an HTML page; sign in with an API key)',
    ok: { status: 200, description: 'the console page', content: { 'text/html; charset=utf-8': str() } } },
  { method: 'get', path: '/ui/{file}', summary: 'The console\'s scripts and style sheets',
    ok: { status: 200, description: 'a file of the console', content: { 'text/javascript; charset=utf-8': str(), 'text/css; charset=utf-8': str() } } },
  { method: 'get', path: '/client/strata.py', summary: 'The Python client (one file, standard library only)',
    ok: { status: 200, description: 'Python source', content: { 'text/x-python; charset=utf-8': str() } } },
  { method: 'get', path: '/openapi.json', summary: 'This API description (OpenAPI 3.1)',
    ok: { status: 200, description: 'the OpenAPI document', content: { 'application/json': { type: 'object' } } } },

  { method: 'post', path: '/v1/streams', summary: 'Create a stream', permission: 'streams:write', body: 'stream',
    ok: { status: 201, description: 'the stream', content: json('Stream'), headers: ['Location'] } },
  { method: 'get', path: '/v1/streams', summary: 'List streams', permission: 'streams:read', query: [afterIngest],
    ok: { status: 200, description: 'the streams the key may see', content: json('StreamList'), headers: ['Strata-Read-From'] } },
  { method: 'get', path: '/v1/streams/{stream}', summary: 'Show a stream', permission: 'streams:read',
    ok: { status: 200, description: 'the stream', content: json('Stream') } },
  { method: 'get', path: '/v1/streams/{stream}/activity', summary: 'Rows, time range, last ingests, silent instruments, rollup watermarks and invalidations', permission: 'streams:read',
    ok: { status: 200, description: 'the stream\'s activity', content: json('StreamActivity') } },
  { method: 'patch', path: '/v1/streams/{stream}', summary: 'Change description, labels, rollup levels, retention, HDF5 mapping', permission: 'streams:write',
    body: 'stream-patch', ok: { status: 200, description: 'the stream as changed', content: json('Stream') } },
  { method: 'delete', path: '/v1/streams/{stream}', summary: 'Delete a stream: its table, chunks and rollup levels; ingest records and originals stay',
    permission: 'streams:write', ok: { status: 200, description: 'what was deleted', content: json('StreamDeleted') } },
  { method: 'post', path: '/v1/streams/{stream}/rename', summary: 'Rename a stream; keys scoped to it follow the new name', permission: 'streams:write',
    body: 'stream-rename', ok: { status: 200, description: 'the stream under its new name', content: json('Stream'), headers: ['Location'] } },
  { method: 'post', path: '/v1/streams/{stream}/ingest', summary: 'Upload a file (Arrow IPC stream or file, HDF5, netCDF4, Parquet, CSV, TSV)', permission: 'ingest',
    query: ingestParams, tagParams: 'a constant tag added to every row of the upload', recordsRefusals: true,
    requestHeaders: ['Content-Encoding', 'Idempotency-Key', 'Strata-Provenance', 'Content-Disposition'], fileBody: true,
    ok: { status: 201, description: 'stored (200 with "duplicate": true when the upload was stored before)', content: json('IngestResult'), headers: ['Location'] } },
  { method: 'get', path: '/v1/streams/{stream}/query', summary: 'Raw rows or aggregates as JSON, CSV, Arrow or Parquet', permission: 'query',
    query: queryParams, tagParams: 'only rows with this tag value (values of one tag are OR-ed)', requestHeaders: ['Accept'],
    ok: { status: 200, description: 'the rows, streamed', headers: ['Strata-Served-By', 'Strata-Gaps', 'Strata-Coarsened', 'Strata-Read-From'],
      content: { 'application/json': 'QueryResult', 'text/csv; charset=utf-8': str(), 'application/vnd.apache.arrow.stream': str({ contentMediaType: 'application/vnd.apache.arrow.stream' }),
        'application/vnd.apache.parquet': str({ contentMediaType: 'application/vnd.apache.parquet' }) } } },
  { method: 'get', path: '/v1/streams/{stream}/provenance', summary: 'The ingests whose rows hold a reading or a bucket', permission: 'provenance:read',
    query: [
      { name: 'time', description: 'the instant of the reading', required: true, schema: instant('instant') },
      { name: 'resolution', description: 'raw (default), or a bucket width such as 1m, 1h, 1d', schema: str() },
      { name: 'to', description: 'end of the bucket (exclusive) that starts at time, for a bucket not aligned to the epoch (resolution=auto); not with resolution', schema: instant('end') },
    ], tagParams: 'the tag values of the reading\'s series',
    ok: { status: 200, description: 'the ingests', content: json('Trace') } },

  { method: 'get', path: '/v1/ingests', summary: 'List ingests, newest first (or after an id, oldest first)', permission: 'ingests:read',
    query: [
      { name: 'stream', description: 'ingests of this stream (by its current name)', schema: stream },
      { name: 'stream_id', description: 'ingests of this stream id (also of a deleted stream)', schema: { type: 'integer', minimum: 1 } },
      { name: 'from', description: 'ingests with data at or after this instant', schema: instant('start') },
      { name: 'to', description: 'ingests with data before this instant', schema: instant('end') },
      { name: 'status', description: 'committed, rejected or retracted', schema: str({ enum: ['committed', 'rejected', 'retracted'] }) },
      { name: 'instrument', description: 'the instrument name recorded', schema: str() },
      { name: 'after', description: 'ingest id to page from (oldest first)', schema: str({ pattern: '^\\d{1,18}$' }) },
      { name: 'before', description: 'ingest id to page back from (newest first); not with after', schema: str({ pattern: '^\\d{1,18}$' }) },
      { name: 'limit', description: '1–1000 (default 100)', schema: int(1, 1000) },
      afterIngest,
    ], ok: { status: 200, description: 'ingest records', content: json('IngestList'), headers: ['Strata-Read-From'] } },
  { method: 'get', path: '/v1/ingests/{id}', summary: 'An ingest record with its audit entries', permission: 'ingests:read',
    ok: { status: 200, description: 'the record', content: json('Ingest') } },
  { method: 'get', path: '/v1/ingests/{id}/prov', summary: 'W3C PROV-JSON lineage of an ingest', permission: 'provenance:read',
    ok: { status: 200, description: 'a PROV-JSON document', content: json('ProvDocument') } },
  { method: 'get', path: '/v1/ingests/{id}/original', summary: 'The uploaded body, re-hashed before it is served', permission: 'originals:read',
    ok: { status: 200, description: 'the body as received, with its content type', content: { 'application/octet-stream': str({ contentMediaType: 'application/octet-stream' }) },
      headers: ['Content-Disposition', 'Repr-Digest', 'X-Strata-Sha256'] } },
  { method: 'post', path: '/v1/ingests/{id}/retract', summary: 'Retract an ingest: remove its rows, keep its record', permission: 'retract', body: 'retract',
    ok: { status: 200, description: 'the retracted record', content: json('Ingest') } },

  { method: 'get', path: '/v1/audit', summary: 'Page through the audit log', permission: 'audit:read',
    query: [
      { name: 'after', description: 'sequence number to page from', schema: { type: 'integer', minimum: 0 } },
      { name: 'limit', description: '1–1000 (default 100)', schema: int(1, 1000) },
      { name: 'action', description: 'only entries of this action (e.g. ingest.commit)', schema: str({ maxLength: 1024 }) },
      { name: 'subject', description: 'only entries about this subject (e.g. stream:lab1)', schema: str({ maxLength: 1024 }) },
    ], ok: { status: 200, description: 'entries in sequence order', content: json('AuditPage') } },
  { method: 'get', path: '/v1/audit/verify', summary: 'Recompute the audit hash chain', permission: 'audit:read',
    query: [{ name: 'expect', description: '<seq>:<sha256 hex> an outside copy recorded', repeatable: true, schema: str({ pattern: '^\\d{1,15}:[0-9a-fA-F]{64}$' }) }],
    ok: { status: 200, description: 'the result', content: json('AuditVerification') } },

  { method: 'post', path: '/v1/keys', summary: 'Create an API key (the secret is shown once)', permission: 'keys:admin', body: 'key',
    ok: { status: 201, description: 'the key with its secret', content: json('KeyCreated') } },
  { method: 'get', path: '/v1/whoami', summary: 'The calling key: name, role, stream scope and permissions', permission: 'streams:read',
    ok: { status: 200, description: 'the key (never its secret)', content: json('WhoAmI') } },
  { method: 'get', path: '/v1/keys', summary: 'List API keys', permission: 'keys:admin',
    ok: { status: 200, description: 'the keys (never their secrets)', content: json('KeyList') } },
  { method: 'delete', path: '/v1/keys/{id}', summary: 'Revoke an API key', permission: 'keys:admin',
    ok: { status: 200, description: 'the revoked key', content: json('Key') } },

  { method: 'get', path: '/v1/jobs', summary: 'Jobs: schedule, last run, next run, health', permission: 'jobs:read',
    ok: { status: 200, description: 'every job', content: json('JobList') } },
  { method: 'get', path: '/v1/jobs/runs', summary: 'Job run records, newest first', permission: 'jobs:read',
    query: [
      { name: 'job', description: 'runs of this job', schema: str() },
      { name: 'stream', description: 'runs concerning this stream', schema: stream },
      { name: 'outcome', description: 'running, succeeded, failed, timed_out, interrupted or abandoned',
        schema: str({ enum: ['running', 'succeeded', 'failed', 'timed_out', 'interrupted', 'abandoned'] }) },
      { name: 'limit', description: '1–1000 (default 50)', schema: int(1, 1000) },
      { name: 'before', description: 'run id to page from', schema: { type: 'integer', minimum: 1 } },
    ], ok: { status: 200, description: 'run records', content: json('JobRunList') } },
  { method: 'get', path: '/v1/jobs/runs/{id}', summary: 'One job run record', permission: 'jobs:read',
    ok: { status: 200, description: 'the run', content: json('JobRun') } },
  { method: 'post', path: '/v1/jobs/{name}/run', summary: 'Run a job now and wait for its run record', permission: 'jobs:run',
    query: [{ name: 'stream', description: 'limit the run to one stream', schema: stream }],
    ok: { status: 200, description: 'the run record', content: json('JobRun') } },

  { method: 'post', path: '/v1/holds', summary: 'Place a legal hold', permission: 'holds:write', body: 'hold',
    ok: { status: 201, description: 'the hold', content: json('Hold'), headers: ['Location'] } },
  { method: 'get', path: '/v1/holds', summary: 'List legal holds', permission: 'holds:read',
    query: [
      { name: 'stream', description: 'holds on this stream', schema: stream },
      { name: 'active', description: 'true: only holds not released; false: only released ones', schema: str({ enum: ['true', 'false'] }) },
    ], ok: { status: 200, description: 'the holds', content: json('HoldList') } },
  { method: 'get', path: '/v1/holds/{id}', summary: 'One legal hold', permission: 'holds:read',
    ok: { status: 200, description: 'the hold', content: json('Hold') } },
  { method: 'delete', path: '/v1/holds/{id}', summary: 'Release a legal hold', permission: 'holds:write', body: 'hold-release', bodyOptional: true,
    ok: { status: 200, description: 'the released hold', content: json('Hold') } },
];

const compiled = operations.map((op) => {
  const segments = op.path.split('/').slice(1);
  const source = segments.map((s) => (/^\{\w+\}$/.test(s) ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/');
  return { op, pattern: new RegExp(`^/${source}/?$`), literals: segments.filter((s) => !s.startsWith('{')).length };
});

/** The operation a request is for, by method and path (null: no such route). */
export function operationFor(method: string, path: string): Operation | null {
  const m = method.toLowerCase();
  let best: { op: Operation; literals: number } | null = null;
  for (const c of compiled) {
    if (c.op.method !== m || !c.pattern.test(path)) continue;
    if (!best || c.literals > best.literals) best = { op: c.op, literals: c.literals };
  }
  return best?.op ?? null;
}


/** Query parameter names the operation does not declare, in the order given. */
export function unknownParams(op: Operation, names: Iterable<string>): string[] {
  const known = new Set((op.query ?? []).map((p) => p.name));
  const out: string[] = [];
  for (const name of names) {
    if (known.has(name)) continue;
    if (op.tagParams && /^tag\..+/.test(name)) continue;
    out.push(name);
  }
  return out;
}
