// Schemas of the JSON responses, for GET /openapi.json. Objects stay open
// (additionalProperties allowed) where modules add their own keys: stream settings, ingest
// details, run details.
type Schema = Record<string, unknown>;

const nullable = (type: string, extra: Schema = {}): Schema => ({ type: [type, 'null'], ...extra });
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const list = (key: string, item: string, extra: Schema = {}): Schema => ({
  type: 'object', required: [key], properties: { [key]: { type: 'array', items: ref(item) }, ...extra },
});
const time = { type: 'string', format: 'date-time' };

const column = {
  type: 'object', required: ['name', 'column', 'type'],
  properties: { name: { type: 'string' }, column: { type: 'string' }, type: { type: 'string' }, unit: nullable('string'), description: nullable('string') },
};

export const responseSchemas: Record<string, Schema> = {
  Health: { type: 'object', required: ['ok'], properties: { ok: { type: 'boolean' } } },
  Readiness: {
    type: 'object', required: ['ready', 'ok', 'checks'],
    properties: {
      ready: { type: 'boolean' }, ok: { type: 'boolean' },
      checks: { type: 'array', items: { type: 'object', required: ['name', 'ok'], properties: { name: { type: 'string' }, ok: { type: 'boolean' }, detail: {} } } },
    },
  },
  Stream: {
    type: 'object', required: ['name', 'labels', 'tags', 'fields', 'chunk_interval', 'table', 'created_at', 'updated_at'],
    description: 'A stream definition; feature settings (rollups, retention, hdf5_mapping …) appear under their keys.',
    properties: {
      name: { type: 'string' }, description: nullable('string'), labels: { type: 'object' }, time_column: nullable('string'),
      chunk_interval: { type: 'string' }, tags: { type: 'array', items: column }, fields: { type: 'array', items: column },
      table: { type: 'string' }, created_at: time, updated_at: time,
    },
  },
  StreamList: list('streams', 'Stream'),
  StreamDeleted: {
    type: 'object', required: ['stream', 'stream_id', 'deleted_at', 'chunks_dropped', 'ingests'],
    properties: {
      stream: { type: 'string' }, stream_id: { type: 'integer' }, deleted_at: time, table: { type: 'string' },
      chunks_dropped: { type: 'integer' }, levels: { type: 'array', items: { type: 'string' } },
      ingests: { type: 'integer', description: 'committed ingests whose rows were deleted; their records and originals stay' },
      rows: { type: 'integer', description: 'rows those ingests had committed' },
      audit_seq: { type: 'integer' },
    },
  },
  Ingest: {
    type: 'object', required: ['id', 'stream', 'status', 'received_at', 'format', 'bytes', 'rows'],
    properties: {
      id: { type: 'string', pattern: '^\\d+$' }, stream: { type: 'string', description: 'the stream\'s name at upload' },
      stream_id: nullable('integer'), status: { enum: ['committed', 'rejected', 'retracted'] }, key_id: nullable('integer'),
      instrument: nullable('string'), received_at: time, committed_at: nullable('string', { format: 'date-time' }), format: { type: 'string' },
      content_type: nullable('string'), content_encoding: nullable('string'), bytes: { type: 'integer' }, inflated_bytes: nullable('integer'),
      sha256: nullable('string'), content_sha256: nullable('string'), rows: { type: 'integer' },
      time_min: nullable('string'), time_max: nullable('string'), sub_microsecond_count: { type: 'integer' }, filename: nullable('string'),
      idempotency_key: nullable('string'), provenance: {}, file_metadata: {}, mapping: {}, versions: {}, warnings: {},
      chunks: { type: 'array', items: { type: 'string' } }, archived: { type: 'boolean' },
      error: { oneOf: [{ type: 'null' }, { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } }] },
      retraction: {}, audit: { type: 'array', items: ref('AuditEntry') }, links: { type: 'object' },
    },
  },
  IngestList: list('ingests', 'Ingest'),
  IngestResult: {
    type: 'object', required: ['ingest', 'duplicate'],
    properties: {
      ingest: ref('Ingest'), duplicate: { type: 'boolean' },
      matched: { enum: ['idempotency_key', 'body_sha256', 'content_sha256'], description: 'duplicates only: what matched the earlier ingest' },
    },
  },
  QueryResult: {
    type: 'object', required: ['stream', 'resolution', 'columns', 'rows', 'row_count'],
    properties: {
      stream: { type: 'string' }, resolution: { type: 'string' },
      columns: { type: 'array', items: { type: 'object', required: ['name', 'type'], properties: { name: { type: 'string' }, type: { type: 'string' } } } },
      rows: { type: 'array', items: { type: 'array' } }, row_count: { type: 'integer' }, served: {}, gaps: { type: 'array', items: { type: 'object' } }, watermarks: {},
    },
  },
  Trace: {
    type: 'object', required: ['stream', 'time', 'resolution', 'ingests'],
    properties: { stream: { type: 'string' }, time: { type: 'string' }, resolution: { type: 'string' }, range: { type: 'object' },
      tags: { type: 'object' }, ingests: { type: 'array', items: { type: 'object' } }, readings: { type: 'array' },
      retracted: { type: 'array', items: { type: 'object' } }, truncated: { type: 'boolean' } },
  },
  ProvDocument: { type: 'object', description: 'W3C PROV-JSON', properties: { prefix: { type: 'object' }, entity: { type: 'object' }, activity: { type: 'object' }, agent: { type: 'object' } } },
  AuditEntry: {
    type: 'object', required: ['seq', 'at', 'action', 'subject', 'details', 'prev_hash', 'hash'],
    properties: { seq: { type: 'integer' }, at: time, actor_key_id: nullable('integer'), actor_role: nullable('string'), action: { type: 'string' },
      subject: { type: 'string' }, details: {}, prev_hash: { type: 'string' }, hash: { type: 'string' } },
  },
  AuditPage: list('entries', 'AuditEntry', { next_after: nullable('integer') }),
  AuditVerification: { type: 'object', required: ['ok'], properties: { ok: { type: 'boolean' }, entries: { type: 'integer' }, head: {} } },
  Key: {
    type: 'object', required: ['id', 'name', 'role', 'prefix'],
    properties: { id: { type: 'integer' }, name: { type: 'string' }, role: { enum: ['admin', 'instrument', 'reader', 'auditor'] },
      streams: nullable('array', { items: { type: 'string' } }), prefix: { type: 'string' }, created_at: {}, created_by: nullable('integer'),
      revoked_at: {}, revoked_by: nullable('integer'), last_used_at: {} },
  },
  KeyCreated: { allOf: [ref('Key'), { type: 'object', required: ['key'], properties: { key: { type: 'string', description: 'the secret, shown this once' } } }] },
  KeyList: list('keys', 'Key'),
  WhoAmI: { allOf: [ref('Key'), { type: 'object', required: ['permissions'], properties: { permissions: { type: 'array', items: { type: 'string' } } } }] },
  StreamActivity: {
    type: 'object', required: ['stream', 'rows', 'ingests', 'instruments', 'rollups'],
    properties: { stream: { type: 'string' }, rows: { type: 'integer' }, ingests: { type: 'integer' }, time_min: nullable('string'), time_max: nullable('string'),
      last_ingest_at: nullable('string'),
      instruments: { type: 'array', items: { type: 'object', properties: { instrument: nullable('string'), ingests: { type: 'integer' }, last_ingest_at: time,
        usual_gap_seconds: nullable('number'), silent_seconds: { type: 'number' }, silent: { type: 'boolean' } } } },
      rollups: { type: 'array', items: { type: 'object', properties: { level: { type: 'string' }, watermark: nullable('string'), pending_from: nullable('string'),
        invalidations: { type: 'integer' }, invalidated_from: nullable('string'), invalidated_to: nullable('string') } } } },
  },
  JobList: list('jobs', 'Job'),
  Job: { type: 'object', required: ['job'], properties: { job: { type: 'string' } } },
  JobRun: {
    type: 'object', required: ['id', 'job', 'outcome', 'started_at'],
    properties: { id: { type: 'integer' }, job: { type: 'string' }, stream: nullable('string'), trigger: { type: 'string' }, attempt: { type: 'integer' },
      triggered_by: nullable('integer'), replica: { type: 'string' }, started_at: time, finished_at: {}, duration_ms: nullable('number'),
      outcome: { type: 'string' }, rows: nullable('integer'), chunks: nullable('integer'), details: { type: 'object' }, error: nullable('string') },
  },
  JobRunList: list('runs', 'JobRun'),
  Hold: {
    type: 'object', required: ['id', 'stream', 'reason', 'active', 'created_at'],
    properties: { id: { type: 'integer' }, stream: { type: 'string' }, from: nullable('string'), to: nullable('string'), reason: { type: 'string' },
      active: { type: 'boolean' }, created_by: nullable('integer'), created_role: nullable('string'), created_at: time,
      released_at: {}, released_by: nullable('integer'), release_reason: nullable('string') },
  },
  HoldList: list('holds', 'Hold'),
};

/** Headers requests and responses carry, described once. */
export const headerSchemas: Record<string, { description: string; schema: Schema }> = {
  'Idempotency-Key': { description: 'retry-safe uploads: a repeated key with the same body returns the original ingest (200); with a different body it is a 422 idempotency_key_reused naming the original', schema: { type: 'string', minLength: 1, maxLength: 256 } },
  'Strata-Provenance': { description: 'JSON about the upload (instrument, operator, experiment, software, calibration …), components/schemas/provenance; ≤ 16 KiB', schema: { type: 'string' } },
  'Content-Encoding': { description: 'gzip, x-gzip, deflate, br or identity: the body is inflated as it arrives', schema: { type: 'string', enum: ['gzip', 'x-gzip', 'deflate', 'br', 'identity'] } },
  'Content-Disposition': { description: 'attachment; filename="…": the source filename, recorded', schema: { type: 'string' } },
  Accept: { description: 'text/csv or application/vnd.apache.arrow.stream choose the format when format= is not given', schema: { type: 'string' } },
  Location: { description: 'the resource created or named', schema: { type: 'string' } },
  'Strata-Read-From': { description: 'with a read standby (STRATA_READ_DATABASE_URL): standby or primary, where the answer was read', schema: { type: 'string', enum: ['standby', 'primary'] } },
  'Strata-Served-By': { description: 'which sources (rollup levels, raw) served the answer, comma-separated; "(coarsened)" after a level that served whole buckets where finer data is gone', schema: { type: 'string' } },
  'Strata-Gaps': { description: 'ranges no source holds any more (retention dropped them), as start/end ISO 8601 intervals separated by ", "; sent only when there are some', schema: { type: 'string' } },
  'Strata-Coarsened': { description: 'ranges served by a level\'s whole buckets because finer data is gone, each "<level> start/end", separated by ", "; sent only when there are some', schema: { type: 'string' } },
  'Repr-Digest': { description: 'sha-256 of the body (RFC 9530)', schema: { type: 'string' } },
  'X-Strata-Sha256': { description: 'SHA-256 (hex) of the body, as recorded at upload', schema: { type: 'string' } },
  'X-Request-Id': { description: 'the request id (given or generated); the server log names it', schema: { type: 'string' } },
  'Retry-After': { description: 'seconds to wait before retrying (503)', schema: { type: 'integer', minimum: 0 } },
};
