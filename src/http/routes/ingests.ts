// Ingest records and their provenance: GET /v1/ingests (filtered list), GET /v1/ingests/{id}
// (the full record with its key and audit entries), GET /v1/ingests/{id}/prov (W3C PROV-JSON),
// GET /v1/ingests/{id}/original (the archived body, re-hashed before it is served) and
// POST /v1/ingests/{id}/retract. Instrument keys see only their own ingests; scoped keys only
// their streams'.
import { Hono, type Context } from 'hono';
import type { AppDeps } from '../deps.ts';
import { readDb } from '../read-db.ts';
import { currentKey, need } from '../auth.ts';
import { readJson } from '../json-body.ts';
import { streamBody } from '../stream-response.ts';
import { AppError } from '../../errors/index.ts';
import { auditEntriesOfIngest } from '../../audit/log.ts';
import { type ApiKey, getKey } from '../../keys/api-keys.ts';
import { type IngestRecord, type IngestStatus, getIngest, listIngests } from '../../provenance/ingest-records.ts';
import { ingestProv } from '../../provenance/prov-json.ts';
import { openOriginal } from '../../provenance/originals.ts';
import { retractIngest } from '../../provenance/retract.ts';
import { rollupLevelsOf } from '../../provenance/rollup-levels.ts';
import { parseTimeParam } from '../../query/params.ts';
import { getStreamById } from '../../streams/catalog.ts';
import { validate } from '../../validation/json-schemas.ts';

export function canSeeIngest(key: ApiKey, ingest: IngestRecord): boolean {
  if (key.role === 'instrument' && ingest.key_id !== key.id) return false;
  if (key.streams === null) return true;
  // Scopes name streams as they are now called; an upload refused before its stream existed by the name it asked for.
  const name = ingest.stream_id === null ? ingest.stream : ingest.stream_current;
  return name !== null && key.streams.includes(name);
}

/** Loads an ingest the key may see: 404 when there is no such ingest, 403 when it is not the key's to see. */
export async function visibleIngest(deps: AppDeps, c: Context): Promise<IngestRecord> {
  const id = c.req.param('id') ?? '';
  const ingest = /^\d{1,18}$/.test(id) ? await getIngest(deps.db.pool, id) : null;
  if (!ingest) throw new AppError(404, 'not_found', `ingest ${JSON.stringify(id.slice(0, 40))} does not exist`);
  const key = currentKey(c);
  if (!canSeeIngest(key, ingest)) {
    throw new AppError(403, 'forbidden', key.role === 'instrument' && ingest.key_id !== key.id
      ? `ingest ${id} was not uploaded with this key; instrument keys see only their own ingests`
      : `ingest ${id} belongs to a stream outside this key's scope`);
  }
  return ingest;
}

type KeyInfo = Pick<ApiKey, 'id' | 'name' | 'role' | 'prefix'>;

async function keyInfo(deps: AppDeps, id: number | null): Promise<KeyInfo | null> {
  const k = id === null ? null : await getKey(deps.db.pool, id);
  return k ? { id: k.id, name: k.name, role: k.role, prefix: k.prefix } : null;
}

/**
 * Every field of the record, the key that uploaded (and retracted) it, and its audit entries — as
 * GET /v1/ingests/{id} shows it and as the upload's own response returns it (a receipt naming the
 * audit entry, with its hash, that records the upload).
 */
export async function fullRecord(deps: AppDeps, ingest: IngestRecord): Promise<Record<string, unknown>> {
  return {
    ...ingest,
    key: await keyInfo(deps, ingest.key_id),
    ...(ingest.retraction ? { retraction: { ...ingest.retraction, key: await keyInfo(deps, ingest.retraction.by) } } : {}),
    audit: await auditEntriesOfIngest(deps.db.pool, ingest.id),
    links: {
      prov: `/v1/ingests/${ingest.id}/prov`,
      ...(ingest.archived ? { original: `/v1/ingests/${ingest.id}/original` } : {}),
    },
  };
}

function listFilter(c: Context): Parameters<typeof listIngests>[1] {
  const key = currentKey(c);
  const q = c.req.query();
  const status = q.status as IngestStatus | undefined;
  if (status !== undefined && !['committed', 'rejected', 'retracted'].includes(status)) {
    throw new AppError(400, 'invalid_request', 'status must be committed, rejected or retracted');
  }
  const limit = q.limit === undefined ? 100 : Number(q.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new AppError(400, 'invalid_request', 'limit must be an integer from 1 to 1000');
  if (q.after !== undefined && !/^\d{1,18}$/.test(q.after)) throw new AppError(400, 'invalid_request', 'after must be an ingest id');
  if (q.before !== undefined && !/^\d{1,18}$/.test(q.before)) throw new AppError(400, 'invalid_request', 'before must be an ingest id');
  if (q.before !== undefined && q.after !== undefined) throw new AppError(400, 'invalid_request', 'give after or before, not both');
  if (q.stream_id !== undefined && !/^[1-9]\d{0,15}$/.test(q.stream_id)) throw new AppError(400, 'invalid_request', 'stream_id must be a positive integer');
  for (const name of ['stream', 'instrument'] as const) {
    if (q[name] !== undefined && q[name].length > 1024) throw new AppError(400, 'invalid_request', `${name} must be at most 1024 characters`);
  }
  const from = parseTimeParam('from', q.from);
  const to = parseTimeParam('to', q.to);
  if (from !== null && to !== null && to <= from) throw new AppError(400, 'invalid_request', '`to` must be after `from`');
  return {
    stream: q.stream, streamId: q.stream_id === undefined ? undefined : Number(q.stream_id), status, instrument: q.instrument, from, to,
    keyId: key.role === 'instrument' ? key.id : undefined, streams: key.streams,
    after: q.after === undefined ? undefined : BigInt(q.after), before: q.before === undefined ? undefined : BigInt(q.before), limit,
  };
}

/** Content-Disposition with an ASCII fallback and the original name, percent-encoded (RFC 6266). */
function disposition(fallback: string, original: string | null): string {
  if (!original) return `attachment; filename="${fallback}"`;
  const encoded = encodeURIComponent(original).replace(/['()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

export function ingestRecordRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get('/', need('ingests:read'), async (c) => c.json({ ingests: await listIngests((await readDb(deps, c)).pool, listFilter(c)) }));

  app.get('/:id', need('ingests:read'), async (c) => c.json(await fullRecord(deps, await visibleIngest(deps, c))));

  app.get('/:id/prov', need('provenance:read'), async (c) => {
    const ingest = await visibleIngest(deps, c);
    const stream = ingest.stream_id === null ? null : await getStreamById(deps.db.pool, ingest.stream_id);
    const doc = ingestProv({
      ingest,
      key: await keyInfo(deps, ingest.key_id),
      retractedBy: ingest.retraction ? await keyInfo(deps, ingest.retraction.by) : null,
      rollupLevels: stream && ingest.status !== 'rejected' ? await rollupLevelsOf(deps.db, stream) : [],
    });
    return c.json(doc);
  });

  app.get('/:id/original', need('originals:read'), async (c) => {
    const ingest = await visibleIngest(deps, c);
    const key = currentKey(c);
    const original = await openOriginal(deps.db, deps.log, deps.config.archiveDir, ingest, { keyId: key.id, role: key.role });
    return new Response(streamBody(original.read()), {
      status: 200,
      headers: {
        'content-type': original.contentType,
        'content-length': String(original.bytes),
        'content-disposition': disposition(original.fallbackName, ingest.filename),
        'x-content-type-options': 'nosniff',
        'x-strata-sha256': original.sha256,
        'repr-digest': `sha-256=:${Buffer.from(original.sha256, 'hex').toString('base64')}:`,
      },
    });
  });

  app.post('/:id/retract', need('retract'), async (c) => {
    const ingest = await visibleIngest(deps, c);
    const body = validate<{ reason: string }>('retract', await readJson(c), 'the retraction');
    const key = currentKey(c);
    const retracted = await retractIngest(deps.db, ingest.id, body.reason, { keyId: key.id, role: key.role });
    deps.log.info({ ingest: ingest.id, stream: ingest.stream, rows: retracted.retraction?.rows, key: key.id }, 'ingest retracted');
    return c.json(await fullRecord(deps, retracted));
  });
  return app;
}
