// Ingest records: one row per upload in strata.ingests, committed with the upload's rows or,
// for a rejected upload, written on its own with the reason.
import type { Db, PoolClient, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { type Actor, appendAudit } from '../audit/log.ts';
import { formatMicros, pgTimestamp } from '../domain/time.ts';
import { AppError } from '../errors/index.ts';
import { findUnstorable, storableText, toStorable, unstorableReason } from '../db/storable.ts';

export type IngestStatus = 'committed' | 'rejected' | 'retracted';

export interface IngestFacts {
  id: bigint;
  streamId: number | null;
  streamName: string;
  keyId: number | null;
  instrument: string | null;
  receivedAt: Date;
  format: string;
  contentType: string | null;
  contentEncoding: string | null;
  bytes: number;
  inflatedBytes: number | null;
  sha256: string | null;
  /** SHA-256 of the body after its Content-Encoding is undone. */
  contentSha256: string | null;
  rows: number;
  timeMin: bigint | null;
  timeMax: bigint | null;
  subMicrosecondCount: number;
  /** Per column, how many NULL (and, for float columns, NaN) the upload held; null when rejected. */
  fieldStats: Record<string, { nan?: number; null: number }> | null;
  filename: string | null;
  idempotencyKey: string | null;
  clientProvenance: unknown;
  fileMetadata: unknown;
  mapping: unknown;
  versions: Record<string, string>;
  warnings: string[];
  chunks: string[];
  archivePath: string | null;
}

/** The record as the API shows it. */
export interface IngestRecord {
  id: string;
  /** The stream's name when the upload came (as recorded; a later rename does not change it). */
  stream: string;
  stream_id: number | null;
  /** The stream's name now; null when the stream was deleted (or never existed). */
  stream_current: string | null;
  status: IngestStatus;
  key_id: number | null;
  instrument: string | null;
  received_at: string;
  committed_at: string | null;
  format: string;
  content_type: string | null;
  content_encoding: string | null;
  bytes: number;
  inflated_bytes: number | null;
  sha256: string | null;
  content_sha256: string | null;
  rows: number;
  time_min: string | null;
  time_max: string | null;
  sub_microsecond_count: number;
  field_stats: Record<string, { nan?: number; null: number }> | null;
  filename: string | null;
  idempotency_key: string | null;
  provenance: unknown;
  file_metadata: unknown;
  mapping: unknown;
  versions: unknown;
  warnings: unknown;
  chunks: string[];
  archived: boolean;
  error: { code: string; message: string } | null;
  /** Set once the ingest was retracted: its rows are gone, this record and its original stay. */
  retraction: { at: string; by: number | null; reason: string; rows: number } | null;
  [extra: string]: unknown;
}

interface IngestRow {
  id: string; stream_id: string | null; stream_name: string; key_id: string | null; instrument: string | null;
  received_at: Date; committed_at: Date | null; format: string; content_type: string | null; content_encoding: string | null;
  bytes: string; inflated_bytes: string | null; sha256: string | null; rows: string;
  time_min_us: string | null; time_max_us: string | null; sub_microsecond_count: string;
  field_stats: Record<string, { nan?: number; null: number }> | null; filename: string | null;
  idempotency_key: string | null; client_provenance: unknown; file_metadata: unknown; mapping: unknown;
  versions: unknown; warnings: unknown; chunks: string[]; archive_path: string | null; status: IngestStatus;
  error_code: string | null; error_message: string | null;
  retracted_at: Date | null; retracted_by: string | null; retraction_reason: string | null; rows_retracted: string | null;
  [extra: string]: unknown;
}

export const INGEST_COLUMNS = `i.*,
  (SELECT s.name FROM strata.streams s WHERE s.id = i.stream_id AND s.deleted_at IS NULL) AS stream_current,
  (extract(epoch FROM i.time_min) * 1000000)::bigint::text AS time_min_us,
  (extract(epoch FROM i.time_max) * 1000000)::bigint::text AS time_max_us`;

export function toIngestRecord(r: IngestRow): IngestRecord {
  const { time_min_us, time_max_us } = r;
  const known = new Set(['id', 'stream_id', 'stream_name', 'stream_current', 'key_id', 'instrument', 'received_at', 'committed_at', 'format',
    'content_type', 'content_encoding', 'bytes', 'inflated_bytes', 'sha256', 'content_sha256', 'rows', 'time_min', 'time_max', 'time_min_us',
    'time_max_us', 'sub_microsecond_count', 'field_stats', 'filename', 'idempotency_key', 'client_provenance', 'file_metadata', 'mapping',
    'versions', 'warnings', 'chunks', 'archive_path', 'status', 'error_code', 'error_message',
    'retracted_at', 'retracted_by', 'retraction_reason', 'rows_retracted']);
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) if (!known.has(k)) extra[k] = v instanceof Date ? v.toISOString() : v;
  return {
    id: r.id,
    stream: r.stream_name,
    stream_id: r.stream_id === null ? null : Number(r.stream_id),
    stream_current: (r.stream_current as string | null | undefined) ?? null,
    status: r.status,
    key_id: r.key_id === null ? null : Number(r.key_id),
    instrument: r.instrument,
    received_at: r.received_at.toISOString(),
    committed_at: r.committed_at?.toISOString() ?? null,
    format: r.format,
    content_type: r.content_type,
    content_encoding: r.content_encoding,
    bytes: Number(r.bytes),
    inflated_bytes: r.inflated_bytes === null ? null : Number(r.inflated_bytes),
    sha256: r.sha256,
    content_sha256: (r.content_sha256 as string | null | undefined) ?? null,
    rows: Number(r.rows),
    time_min: time_min_us === null ? null : formatMicros(BigInt(time_min_us)),
    time_max: time_max_us === null ? null : formatMicros(BigInt(time_max_us)),
    sub_microsecond_count: Number(r.sub_microsecond_count),
    field_stats: r.field_stats ?? null,
    filename: r.filename,
    idempotency_key: r.idempotency_key,
    provenance: r.client_provenance,
    file_metadata: r.file_metadata,
    mapping: r.mapping,
    versions: r.versions,
    warnings: r.warnings,
    chunks: r.chunks,
    archived: r.archive_path !== null,
    error: r.error_code ? { code: r.error_code, message: r.error_message ?? '' } : null,
    retraction: r.retracted_at === null ? null : {
      at: r.retracted_at.toISOString(),
      by: r.retracted_by === null ? null : Number(r.retracted_by),
      reason: r.retraction_reason ?? '',
      rows: Number(r.rows_retracted ?? 0),
    },
    ...extra,
  };
}

function params(f: IngestFacts, status: IngestStatus, error: { code: string; message: string } | null): unknown[] {
  return [
    f.id.toString(), f.streamId, f.streamName, f.keyId, f.instrument, f.receivedAt, f.format, f.contentType,
    f.contentEncoding, f.bytes, f.inflatedBytes, f.sha256, f.rows,
    f.timeMin === null ? null : pgTimestamp(f.timeMin), f.timeMax === null ? null : pgTimestamp(f.timeMax),
    f.subMicrosecondCount, f.filename, f.idempotencyKey,
    f.clientProvenance === undefined ? null : JSON.stringify(f.clientProvenance),
    f.fileMetadata === undefined ? null : JSON.stringify(f.fileMetadata),
    f.mapping === undefined ? null : JSON.stringify(f.mapping),
    JSON.stringify(f.versions), JSON.stringify(f.warnings), f.chunks, f.archivePath, status,
    error?.code ?? null, error?.message ?? null, f.contentSha256, f.fieldStats === null ? null : JSON.stringify(f.fieldStats),
  ];
}

const INSERT = `INSERT INTO strata.ingests (
    id, stream_id, stream_name, key_id, instrument, received_at, format, content_type, content_encoding,
    bytes, inflated_bytes, sha256, rows, time_min, time_max, sub_microsecond_count, filename, idempotency_key,
    client_provenance, file_metadata, mapping, versions, warnings, chunks, archive_path, status, error_code, error_message,
    committed_at, content_sha256, field_stats)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::timestamptz, $15::timestamptz, $16, $17, $18,
    $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, CASE WHEN $26 = 'committed' THEN clock_timestamp() END, $29, $30)`;

function auditDetails(f: IngestFacts): Record<string, unknown> {
  return {
    ingest_id: f.id.toString(), stream: f.streamName, format: f.format, bytes: f.bytes, sha256: f.sha256, rows: f.rows,
    time_min: f.timeMin === null ? null : formatMicros(f.timeMin), time_max: f.timeMax === null ? null : formatMicros(f.timeMax),
    filename: f.filename, instrument: f.instrument,
  };
}

export const MAX_FILENAME_CHARS = 1024;

/**
 * The source filename (from Content-Disposition) is data: kept verbatim, never used as a path.
 * It must be storable text of a sane length; control characters are refused because no real
 * file name has them and they would corrupt logs and headers that show it.
 */
export function assertFilename(name: string | undefined): void {
  if (name === undefined) return;
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
  if (name.length === 0 || name.length > MAX_FILENAME_CHARS) {
    throw new AppError(400, 'invalid_request', `the filename in Content-Disposition is ${name.length} characters long; 1–${MAX_FILENAME_CHARS} are allowed`);
  }
  if ([...name].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) {
    throw new AppError(400, 'invalid_request', `the filename ${shown} in Content-Disposition contains control characters`);
  }
  const bad = unstorableReason(name);
  if (bad) throw new AppError(400, 'invalid_request', `the filename ${shown} in Content-Disposition contains ${bad}`);
}

/** Refuses facts PostgreSQL could not store, naming the field and where in it. */
function assertStorable(f: IngestFacts): void {
  const fromFile: [string, unknown][] = [['the file\'s metadata', f.fileMetadata], ['the mapping', f.mapping], ['a warning', f.warnings]];
  const fromClient: [string, unknown][] = [['the Strata-Provenance header', f.clientProvenance], ['the instrument name', f.instrument],
    ['the filename', f.filename], ['the Idempotency-Key', f.idempotencyKey]];
  for (const [what, value] of fromClient) {
    const bad = findUnstorable(value);
    if (bad) throw new AppError(400, 'invalid_request', `cannot store the upload: ${what} at ${bad.path} contains ${bad.reason}`);
  }
  for (const [what, value] of fromFile) {
    const bad = findUnstorable(value);
    if (bad) throw new AppError(422, 'invalid_request', `cannot store the upload: ${what} at ${bad.path} contains ${bad.reason}`);
  }
}

/** A rejected upload's facts as they can be stored: hostile strings made harmless, names bounded. */
function storableFacts(f: IngestFacts): IngestFacts {
  const text = (v: string | null, max: number): string | null => (v === null ? null : storableText(v.slice(0, max)));
  return {
    ...f,
    streamName: text(f.streamName, 1024) as string, instrument: text(f.instrument, 1024), filename: text(f.filename, MAX_FILENAME_CHARS),
    idempotencyKey: text(f.idempotencyKey, 256), contentType: text(f.contentType, 256), contentEncoding: text(f.contentEncoding, 64),
    clientProvenance: toStorable(f.clientProvenance), fileMetadata: toStorable(f.fileMetadata), mapping: toStorable(f.mapping),
    warnings: toStorable(f.warnings),
  };
}

/** Writes the committed record and its audit entry inside the ingest's transaction. */
export async function insertCommittedIngest(tx: PoolClient, f: IngestFacts, actor: Actor): Promise<void> {
  assertStorable(f);
  await tx.query(INSERT, params(f, 'committed', null));
  await appendAudit(tx, actor, 'ingest.commit', `ingest:${f.id}`, auditDetails(f));
}

/** Records a rejected upload (nothing of its rows is stored) with its reason. */
export async function recordRejectedIngest(
  db: Db, f: IngestFacts, error: { code: string; message: string; status: number }, actor: Actor,
): Promise<void> {
  const stored = storableFacts({ ...f, archivePath: null });
  const reason = { code: error.code, message: storableText(error.message) };
  await withTransaction(db, async (tx) => {
    await tx.query(INSERT, params(stored, 'rejected', reason));
    await appendAudit(tx, actor, 'ingest.reject', `ingest:${f.id}`, { ...auditDetails(stored), status: error.status, code: error.code, reason: reason.message });
  });
}

export async function getIngest(q: Queryable, id: string | bigint): Promise<IngestRecord | null> {
  if (!/^\d{1,18}$/.test(String(id))) return null;
  const { rows } = await q.query<IngestRow>(`SELECT ${INGEST_COLUMNS} FROM strata.ingests i WHERE id = $1`, [String(id)]);
  return rows[0] ? toIngestRecord(rows[0]) : null;
}

/** What made an upload a duplicate of an earlier ingest. */
export type DuplicateMatch = 'idempotency_key' | 'body_sha256' | 'content_sha256';

/**
 * The committed ingest of this stream with this idempotency key, body hash or content hash, if
 * any: the one with the key first (a reused key must be checked against its own ingest), then by
 * body, then by content.
 */
export async function findDuplicate(
  q: Queryable, streamId: number, by: { idempotencyKey?: string | null; sha256?: string | null; contentSha256?: string | null },
): Promise<{ ingest: IngestRecord; matched: DuplicateMatch } | null> {
  const { rows } = await q.query<IngestRow & { matched: DuplicateMatch }>(
    `SELECT ${INGEST_COLUMNS},
            CASE WHEN i.idempotency_key = $2 THEN 'idempotency_key' WHEN i.sha256 = $3 THEN 'body_sha256' ELSE 'content_sha256' END AS matched
       FROM strata.ingests i
      WHERE stream_id = $1 AND status = 'committed'
        AND (idempotency_key = $2 OR sha256 = $3 OR content_sha256 = $4)
      ORDER BY (idempotency_key = $2) IS TRUE DESC, (sha256 = $3) IS TRUE DESC, id LIMIT 1`,
    [streamId, by.idempotencyKey ?? null, by.sha256 ?? null, by.contentSha256 ?? null]);
  if (!rows[0]) return null;
  const { matched, ...row } = rows[0];
  return { ingest: toIngestRecord(row as IngestRow), matched };
}

export async function nextIngestId(db: Db): Promise<bigint> {
  const { rows } = await db.pool.query<{ id: string }>(`SELECT nextval('strata.ingest_id_seq')::text AS id`);
  return BigInt(rows[0].id);
}

export interface IngestFilter {
  /** The stream's current name (its ingests from before a rename included). */
  stream?: string;
  streamId?: number;
  from?: bigint | null;
  to?: bigint | null;
  status?: IngestStatus;
  instrument?: string;
  keyId?: number;
  /** Only ingests into these streams (a key's scope). */
  streams?: string[] | null;
  after?: bigint;
  /** Only ingests with a smaller id (newest first), for paging back. */
  before?: bigint;
  limit?: number;
}

/**
 * Ingests newest first (or after an id, oldest first, for paging). `from`/`to` select ingests whose
 * data overlaps that time range.
 */
export async function listIngests(q: Queryable, f: IngestFilter): Promise<IngestRecord[]> {
  const params: unknown[] = [];
  const where: string[] = [];
  const add = (sql: string, v: unknown): void => { params.push(v); where.push(sql.replaceAll('?', `$${params.length}`)); };
  // A stream's ingests by its id (so from before a rename too); ingests refused before their stream
  // existed have no id, and are found by the name they asked for.
  const byName = (names: string): string =>
    `(i.stream_id IN (SELECT id FROM strata.streams WHERE name = ${names} AND deleted_at IS NULL) OR (i.stream_id IS NULL AND i.stream_name = ${names}))`;
  if (f.stream) add(byName('?'), f.stream);
  if (f.streamId !== undefined) add('i.stream_id = ?', f.streamId);
  if (f.status) add('status = ?', f.status);
  if (f.instrument) add('instrument = ?', f.instrument);
  if (f.keyId !== undefined) add('key_id = ?', f.keyId);
  if (f.streams) add(byName('ANY(?::text[])'), f.streams);
  if (f.from != null) add('time_max >= ?::timestamptz', pgTimestamp(f.from));
  if (f.to != null) add('time_min < ?::timestamptz', pgTimestamp(f.to));
  if (f.after !== undefined) add('id > ?', f.after.toString());
  if (f.before !== undefined) add('id < ?', f.before.toString());
  params.push(Math.min(Math.max(f.limit ?? 100, 1), 1000));
  const order = f.after !== undefined ? 'id ASC' : 'id DESC';
  const { rows } = await q.query<IngestRow>(
    `SELECT ${INGEST_COLUMNS} FROM strata.ingests i ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order} LIMIT $${params.length}`,
    params);
  return rows.map(toIngestRecord);
}

/** Every live stream with the commit time of its latest ingest (null: none yet), for the metrics. */
export async function latestCommitPerStream(q: Queryable): Promise<{ stream: string; at: Date | null }[]> {
  const { rows } = await q.query<{ stream: string; at: Date | null }>(
    `SELECT s.name AS stream,
            (SELECT i.committed_at FROM strata.ingests i
              WHERE i.stream_id = s.id AND i.committed_at IS NOT NULL ORDER BY i.received_at DESC LIMIT 1) AS at
       FROM strata.streams s WHERE s.deleted_at IS NULL`);
  return rows;
}
