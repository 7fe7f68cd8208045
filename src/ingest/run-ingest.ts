// One upload end to end: checks, decoder, schema binding (creating or extending the stream),
// then rows, ingest record and audit entry in one transaction. Any failure rolls everything
// back and leaves a rejected ingest record naming the reason.
import type { Db, PoolClient } from '../db/pool.ts';
import type { Limits } from '../config/index.ts';
import type { Actor } from '../audit/log.ts';
import type { Logger } from '../logging/logger.ts';
import { AppError, fromPgError, isAppError, isConnectionError } from '../errors/index.ts';
import { type Stream, addColumns, createStream, getStream, getStreamById, setTimeColumn } from '../streams/catalog.ts';
import { assertStreamName } from '../streams/identifiers.ts';
import {
  type DuplicateMatch, type IngestFacts, type IngestRecord, assertFilename, findDuplicate, getIngest, insertCommittedIngest, nextIngestId,
  recordRejectedIngest,
} from '../provenance/ingest-records.ts';
import { archiveOriginal } from '../provenance/archive.ts';
import { IngestBody, parseContentEncoding } from './body.ts';
import { formatOf } from './formats.ts';
import { checkDeclaredFormat } from './sniff.ts';
import { constantTagsOf, withConstantTags } from './constant-tags.ts';
import { openDecoder, readsSpoolBack } from './decoders/index.ts';
import type { Decoder } from './decoders/decoder.ts';
import { type Binding, bindColumns, chooseTimeColumn } from './resolve-schema.ts';
import { RowWriter } from './write-rows.ts';
import { FieldStats } from './field-stats.ts';
import { readAhead } from './read-ahead.ts';
import { parseProvenance } from './provenance-header.ts';
import { observersFor } from './observers.ts';
import { UploadClaim } from './upload-claims.ts';
import { foreground } from '../jobs/foreground.ts';

export const DEFAULT_CHUNK_INTERVAL_US = 86_400_000_000n;

export interface IngestDeps {
  db: Db;
  limits: Limits;
  spoolDir: string;
  /** Where originals are kept; null to not keep them. */
  archiveDir: string | null;
  versions: Record<string, string>;
  /** Told of a refusal whose rejected record could not be written. */
  log?: Logger;
}

export interface IngestInput {
  streamName: string;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  body: AsyncIterable<Uint8Array>;
  actor: Actor & { name: string | null };
  timeColumn?: string;
  create: boolean;
  idempotencyKey?: string;
  filename?: string;
  provenanceHeader?: string;
  params?: Record<string, string | undefined>;
  /** A refusal found before the upload began (an undeclared parameter): recorded like any other. */
  refusal?: AppError;
  receivedAt?: Date;
}

export interface IngestOutcome {
  status: 200 | 201;
  duplicate: boolean;
  /** For a duplicate: what matched the earlier ingest. */
  matched?: DuplicateMatch;
  ingest: IngestRecord;
}

type Duplicate = NonNullable<Awaited<ReturnType<typeof findDuplicate>>>;

/**
 * An earlier ingest this upload repeats (200 with the original), or a refusal: an
 * Idempotency-Key reused with a body whose bytes and content both differ from its ingest's is a
 * 422, as Stripe's API answers — never a silent drop of the new data.
 */
function asDuplicate(dup: Duplicate, facts: IngestFacts): IngestOutcome {
  const original = dup.ingest;
  if (dup.matched === 'idempotency_key' && original.sha256 !== facts.sha256
      && (original.content_sha256 === null || original.content_sha256 !== facts.contentSha256)) {
    throw new AppError(422, 'idempotency_key_reused',
      `Idempotency-Key ${JSON.stringify(facts.idempotencyKey)} was used for ingest ${original.id} of a different body ` +
      `(its SHA-256 ${original.sha256}, this body's ${facts.sha256}); nothing of this upload was stored: send a new upload with a new key`,
      { detail: { original_ingest_id: original.id } });
  }
  return { status: 200, duplicate: true, matched: dup.matched, ingest: original };
}

function initialFacts(input: IngestInput, deps: IngestDeps): IngestFacts {
  return {
    id: 0n, streamId: null, streamName: input.streamName.slice(0, 1024), keyId: input.actor.keyId,
    instrument: input.actor.role === 'instrument' ? input.actor.name : null,
    receivedAt: input.receivedAt ?? new Date(), format: 'unknown', contentType: input.contentType?.slice(0, 256) ?? null,
    contentEncoding: input.contentEncoding?.slice(0, 64) ?? null, bytes: 0, inflatedBytes: null, sha256: null, contentSha256: null, rows: 0,
    timeMin: null, timeMax: null, subMicrosecondCount: 0, fieldStats: null, filename: input.filename ?? null,
    idempotencyKey: input.idempotencyKey ?? null, clientProvenance: null, fileMetadata: null, mapping: null,
    versions: deps.versions, warnings: [], chunks: [], archivePath: null,
  };
}

export async function runIngest(deps: IngestDeps, input: IngestInput): Promise<IngestOutcome> {
  const facts = initialFacts(input, deps);
  let body: IngestBody | null = null;
  let decoder: Decoder | null = null;
  let claim: UploadClaim | null = null;
  const actor = { keyId: input.actor.keyId, role: input.actor.role };
  // Background work (compression, a backup's copy) slows down while this runs.
  const uploadEnded = foreground.begin();
  try {
    if (input.refusal) throw input.refusal;
    assertStreamName(input.streamName);
    assertFilename(input.filename);
    const format = formatOf(input.contentType);
    facts.format = format;
    const encoding = parseContentEncoding(input.contentEncoding);
    if (input.idempotencyKey !== undefined && (input.idempotencyKey.length === 0 || input.idempotencyKey.length > 256)) {
      throw new AppError(400, 'invalid_request', 'Idempotency-Key must be 1–256 characters');
    }
    const provenance = parseProvenance(input.provenanceHeader);
    facts.clientProvenance = provenance;
    if (provenance && typeof provenance.instrument === 'string') facts.instrument = provenance.instrument;

    let stream = await getStream(deps.db.pool, input.streamName);
    if (stream) {
      facts.streamId = stream.id;
      const prior = input.idempotencyKey ? await findDuplicate(deps.db.pool, stream.id, { idempotencyKey: input.idempotencyKey }) : null;
      if (prior) {
        // A retry: the body is only read and hashed (nothing decoded or written) to check that it
        // is the one the key was first used with.
        body = new IngestBody(input.body, { maxBodyBytes: deps.limits.maxBodyBytes, maxInflatedBytes: deps.limits.maxInflatedBytes, encoding, spoolDir: null });
        for await (const _ of body.chunks()) { /* hash it */ }
        Object.assign(facts, { bytes: body.received, inflatedBytes: body.inflated, sha256: body.sha256, contentSha256: body.contentSha256 });
        return asDuplicate(prior, facts);
      }
    } else if (!input.create) {
      throw new AppError(404, 'stream_not_found',
        `stream ${JSON.stringify(input.streamName)} does not exist and the request says create=false; create it with POST /v1/streams`);
    }

    facts.id = await nextIngestId(deps.db);
    // Should this process die during the upload, the claim lets the next start record it (interrupted).
    claim = await UploadClaim.write(deps.spoolDir, facts, actor);
    body = new IngestBody(input.body, {
      maxBodyBytes: deps.limits.maxBodyBytes, maxInflatedBytes: deps.limits.maxInflatedBytes, encoding,
      spoolDir: deps.archiveDir ? deps.spoolDir : null,
      spoolReadBack: readsSpoolBack(format, encoding === 'identity'),
      checkHead: (head) => checkDeclaredFormat(format, head),
    });
    const constantTags = constantTagsOf(input.params ?? {});
    if (Object.keys(constantTags).length > 0) facts.mapping = { constant_tags: constantTags };
    decoder = await openDecoder(format, body, {
      maxBatchBytes: deps.limits.maxBatchBytes, maxHdf5Bytes: deps.limits.maxHdf5Bytes, spoolDir: deps.spoolDir,
      identityEncoding: encoding === 'identity', params: input.params ?? {},
      maxInflatedBytes: deps.limits.maxInflatedBytes, streamSettings: stream?.settings ?? {},
      timeWindow: deps.limits.timeWindow,
      streamColumns: stream?.columns ?? [], streamTimeColumn: stream?.timeColumn ?? null,
    });
    decoder = withConstantTags(decoder, constantTags);
    facts.fileMetadata = decoder.schema.metadata;
    facts.warnings.push(...decoder.schema.warnings);
    const mapping = (decoder as Decoder & { mappingUsed?: unknown }).mappingUsed;
    if (mapping !== undefined) facts.mapping = facts.mapping ? { ...(mapping as object), ...facts.mapping } : mapping;
    const decoderVersions = (decoder as Decoder & { versions?: Record<string, string> }).versions;
    if (decoderVersions) facts.versions = { ...facts.versions, ...decoderVersions };

    const timeColumn = chooseTimeColumn(decoder.schema, input.timeColumn, stream);
    let binding = bindColumns(decoder.schema, timeColumn, stream, input.streamName);
    ({ stream, binding } = await prepareStream(deps, input, stream, binding, decoder, timeColumn));
    facts.streamId = stream.id;

    return await writeAndCommit(deps, input, facts, stream, binding, decoder, body, timeColumn);
  } catch (err) {
    const appErr = isAppError(err) ? err : await deletedMeanwhile(deps, facts, err) ?? fromPgError(err, 'store the upload');
    if (body) {
      facts.bytes = body.received;
      facts.inflatedBytes = body.inflated;
      facts.sha256 = body.sha256;
      facts.contentSha256 = body.contentSha256;
    }
    if (decoder) facts.subMicrosecondCount = decoder.subMicrosecondCount;
    facts.rows = 0;
    facts.fieldStats = null;
    const reason = { code: appErr.code, message: appErr.message, status: appErr.status };
    if (facts.id === 0n) {
      facts.id = await nextIngestId(deps.db).catch((e: unknown) => {
        deps.log?.error({ err: e, stream: facts.streamName, code: reason.code }, 'refused upload not recorded: no ingest id could be drawn');
        return 0n;
      });
    }
    if (facts.id !== 0n) await recordRefusal(deps, facts, reason, actor, claim);
    throw new AppError(appErr.status, appErr.code, appErr.message, {
      cause: appErr.cause ?? err, retryAfter: appErr.retryAfter, detail: { ...(appErr.detail ?? {}), ingest_id: facts.id === 0n ? null : facts.id.toString() },
    });
  } finally {
    uploadEnded();
    await decoder?.close().catch(() => undefined);
    await body?.discard().catch(() => undefined);
    await claim?.remove().catch(() => undefined);
  }
}

const TRANSIENT_SQLSTATES = new Set(['40001', '40P01']);
const RECORD_ATTEMPTS = 3;

/**
 * Writes a refused upload's rejected record and audit entry. A transient conflict (deadlock,
 * serialization failure) is retried; with PostgreSQL unreachable the refusal is kept on disk and
 * written when it answers again (upload-claims.ts); any other failure is logged with the ingest id,
 * never passed over in silence.
 */
async function recordRefusal(
  deps: IngestDeps, facts: IngestFacts, reason: { code: string; message: string; status: number }, actor: Actor, claim: UploadClaim | null,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await recordRejectedIngest(deps.db, facts, reason, actor);
      return;
    } catch (err) {
      if (TRANSIENT_SQLSTATES.has((err as { code?: string }).code ?? '') && attempt < RECORD_ATTEMPTS) continue;
      let failure = err;
      if (isConnectionError(err)) {
        try {
          const kept = claim ?? await UploadClaim.write(deps.spoolDir, facts, actor);
          await kept.keepUnrecorded(deps.spoolDir, facts, reason);
          deps.log?.warn({ err, ingest: facts.id.toString(), code: reason.code }, 'refused upload kept to be recorded when PostgreSQL answers again');
          return;
        } catch (keepErr) {
          failure = keepErr;
        }
      }
      deps.log?.error({ err: failure, ingest: facts.id.toString(), stream: facts.streamName, code: reason.code, attempts: attempt },
        'refused upload could not be recorded as a rejected ingest');
      return;
    }
  }
}

/** The stream's table is gone because an admin deleted the stream while this upload ran. */
async function deletedMeanwhile(deps: IngestDeps, facts: IngestFacts, err: unknown): Promise<AppError | null> {
  if ((err as { code?: string }).code !== '42P01' || facts.streamId === null) return null;
  if (await getStreamById(deps.db.pool, facts.streamId).catch(() => true)) return null;
  return new AppError(409, 'conflict', `stream ${JSON.stringify(facts.streamName)} was deleted while this upload was written; nothing of it was stored`, { cause: err });
}

/** Creates the stream from the upload's schema, or adds the upload's new columns to it. */
async function prepareStream(
  deps: IngestDeps, input: IngestInput, stream: Stream | null, binding: Binding, decoder: Decoder, timeColumn: string,
): Promise<{ stream: Stream; binding: Binding }> {
  const actor = { keyId: input.actor.keyId, role: input.actor.role };
  if (!stream) {
    ({ stream } = await createStream(deps.db, {
      name: input.streamName, timeColumn, chunkIntervalUs: DEFAULT_CHUNK_INTERVAL_US, columns: binding.added,
    }, actor));
    binding = bindColumns(decoder.schema, timeColumn, stream, input.streamName);
  }
  if (binding.added.length > 0) {
    stream = await addColumns(deps.db, input.streamName, binding.added, actor);
    binding = bindColumns(decoder.schema, timeColumn, stream, input.streamName);
  }
  if (binding.added.length > 0) throw new AppError(500, 'internal', 'columns could not be added to the stream');
  if (!stream.timeColumn) await setTimeColumn(deps.db, stream.id, timeColumn);
  return { stream, binding };
}

async function writeAndCommit(
  deps: IngestDeps, input: IngestInput, facts: IngestFacts, stream: Stream, binding: Binding,
  decoder: Decoder, body: IngestBody, timeColumn: string,
): Promise<IngestOutcome> {
  const batches = readAhead(decoder.batches(timeColumn, binding.bound));
  // No database connection is held while the body streams in up to its first batch: a client
  // that stalls before then holds an upload slot (until STRATA_BODY_IDLE_TIMEOUT), never a connection.
  const first = await batches.next();
  let client: PoolClient;
  try {
    client = await deps.db.pool.connect();
  } catch (err) {
    if (!first.done) first.value.release?.();
    void batches.return(undefined).catch(() => undefined);
    throw err;
  }
  const writer = new RowWriter(deps.db, client, stream, facts.id, deps.limits);
  const observers = observersFor(stream, facts.id);
  const stats = new FieldStats();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    for (const o of observers) await o.beforeRows?.(client);
    for (let next = first; !next.done; next = await batches.next()) {
      const batch = next.value;
      await writer.write(batch);
      stats.add(batch);
      for (const o of observers) o.onBatch?.(batch);
      batch.release?.();
    }
    facts.rows = await writer.finish();
    await body.drain();
    Object.assign(facts, {
      bytes: body.received, inflatedBytes: body.inflated, sha256: body.sha256, contentSha256: body.contentSha256, timeMin: writer.minTime,
      timeMax: writer.maxTime, subMicrosecondCount: decoder.subMicrosecondCount, chunks: [...writer.chunks].sort(),
      fieldStats: stats.toJSON(),
    });
    if (facts.subMicrosecondCount > 0) {
      facts.warnings.push(`${facts.subMicrosecondCount} timestamps had sub-microsecond parts; they were truncated to the microsecond`);
    }
    // The content hash is known only now that the whole body has been read: a duplicate found
    // here rolls back the rows already copied.
    const by = { sha256: facts.sha256, contentSha256: facts.contentSha256, idempotencyKey: facts.idempotencyKey };
    const dup = await findDuplicate(client, stream.id, by);
    if (dup) {
      await client.query('ROLLBACK');
      return asDuplicate(dup, facts);
    }
    for (const o of observers) await o.beforeCommit?.(client);
    if (deps.archiveDir && body.spoolPath && facts.sha256) {
      facts.archivePath = await archiveOriginal(deps.archiveDir, body.spoolPath, facts.sha256);
    }
    try {
      await insertCommittedIngest(client, facts, { keyId: input.actor.keyId, role: input.actor.role });
      await client.query('COMMIT');
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw err;
      // A concurrent upload of the same body or content (or idempotency key) committed first.
      await client.query('ROLLBACK');
      const original = await findDuplicate(deps.db.pool, stream.id, by);
      if (!original) throw err;
      return asDuplicate(original, facts);
    }
    return { status: 201, duplicate: false, ingest: (await getIngest(deps.db.pool, facts.id)) as IngestRecord };
  } catch (err) {
    void batches.return(undefined).catch(() => undefined);
    await writer.abort(isAppError(err) ? err.message : 'ingest failed');
    await client.query('ROLLBACK').catch((e: Error) => { broken = e; });
    if (isConnectionError(err)) broken = err as Error;
    throw err;
  } finally {
    client.release(broken);
  }
}
