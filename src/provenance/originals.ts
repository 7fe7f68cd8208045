// Serving an ingest's original: the archived body is re-hashed before it is served. A file that is
// missing or whose bytes no longer match the SHA-256 recorded at ingest is reported — to the
// caller as a 409 naming both hashes, to the server log as an error, and in the audit log — and
// never served.
import type { Db } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { type Actor, appendAudit } from '../audit/log.ts';
import { AppError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { archiveRelativePath, openVerifiedOriginal } from './archive.ts';
import type { IngestRecord } from './ingest-records.ts';

export interface ServableOriginal {
  bytes: number;
  sha256: string;
  /** A media type that says what the bytes are, chosen by Strata (never the client's header). */
  contentType: string;
  /** A plain ASCII name for Content-Disposition; the original filename goes in filename*. */
  fallbackName: string;
  read(): AsyncGenerator<Uint8Array>;
}

const BY_FORMAT: Record<string, { type: string; ext: string }> = {
  'arrow-stream': { type: 'application/vnd.apache.arrow.stream', ext: 'arrows' },
  'arrow-file': { type: 'application/vnd.apache.arrow.file', ext: 'arrow' },
  hdf5: { type: 'application/x-hdf5', ext: 'h5' },
};

const ENCODED: Record<string, { type: string; ext: string }> = {
  gzip: { type: 'application/gzip', ext: 'gz' }, 'x-gzip': { type: 'application/gzip', ext: 'gz' },
  deflate: { type: 'application/zlib', ext: 'zz' }, br: { type: 'application/octet-stream', ext: 'br' },
};

function mediaOf(i: IngestRecord): { type: string; name: string } {
  const base = BY_FORMAT[i.format] ?? { type: 'application/octet-stream', ext: 'bin' };
  const enc = i.content_encoding ? ENCODED[i.content_encoding.trim().toLowerCase()] : undefined;
  // The archive holds the body as received: a gzip upload is served as the gzip file it was.
  if (enc) return { type: enc.type, name: `ingest-${i.id}.${base.ext}.${enc.ext}` };
  return { type: base.type, name: `ingest-${i.id}.${base.ext}` };
}

async function report(db: Db, log: Logger, actor: Actor, i: IngestRecord, action: string, details: Record<string, unknown>): Promise<void> {
  log.error({ ingest: i.id, sha256: i.sha256, ...details }, `archived original of ingest ${i.id}: ${action}`);
  await withTransaction(db, (tx) => appendAudit(tx, actor, action, `ingest:${i.id}`, { ingest_id: i.id, stream: i.stream, ...details }));
}

export async function openOriginal(db: Db, log: Logger, archiveDir: string, i: IngestRecord, actor: Actor): Promise<ServableOriginal> {
  if (!i.archived || !i.sha256) {
    const why = i.status === 'rejected' ? 'rejected uploads keep no original' : 'the server kept no original when it was received';
    throw new AppError(404, 'not_found', `ingest ${i.id} has no original: ${why}`);
  }
  const rel = archiveRelativePath(i.sha256);
  const check = await openVerifiedOriginal(archiveDir, rel, i.sha256);
  if (check.state === 'missing') {
    await report(db, log, actor, i, 'ingest.original_missing', { expected_sha256: i.sha256, archive_path: rel });
    throw new AppError(409, 'original_missing',
      `the archived original of ingest ${i.id} (SHA-256 ${i.sha256}) is missing from the archive; it cannot be served — restore ${rel} from a backup of the archive directory`,
      { detail: { expected_sha256: i.sha256, archive_path: rel } });
  }
  if (check.state === 'mismatch') {
    await report(db, log, actor, i, 'ingest.original_mismatch', { expected_sha256: i.sha256, actual_sha256: check.sha256, bytes: check.bytes, expected_bytes: i.bytes });
    throw new AppError(409, 'original_mismatch',
      `the archived original of ingest ${i.id} no longer matches the SHA-256 recorded when it was received (recorded ${i.sha256}, now ${check.sha256}); it is not served — restore ${rel} from a backup of the archive directory`,
      { detail: { expected_sha256: i.sha256, actual_sha256: check.sha256, bytes: check.bytes, expected_bytes: i.bytes, archive_path: rel } });
  }
  const media = mediaOf(i);
  return { bytes: check.bytes, sha256: i.sha256, contentType: media.type, fallbackName: media.name, read: check.read };
}
