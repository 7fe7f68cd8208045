// POST /v1/streams/{stream}/ingest — the body is the file.
import { type Context, Hono } from 'hono';
import type { AppDeps } from '../deps.ts';
import { currentKey, need } from '../auth.ts';
import { dispositionFilename, requestBody, utf8Header } from '../body-source.ts';
import { AppError, isAppError } from '../../errors/index.ts';
import { paramRefusal } from '../params-guard.ts';
import { fullRecord } from './ingests.ts';
import { getStream } from '../../streams/catalog.ts';
import { type IngestDeps, runIngest } from '../../ingest/run-ingest.ts';
import { UploadSlots } from '../upload-slots.ts';

export function ingestDeps(deps: AppDeps): IngestDeps {
  return {
    // Uploads have connections of their own (server.ts), so that they never take the ones
    // authentication, queries and jobs need.
    db: deps.uploadDb ?? deps.db,
    limits: deps.config.limits,
    spoolDir: deps.config.spoolDir,
    archiveDir: deps.config.archiveDir,
    versions: deps.versions,
    // Read at each use: the server's logger may be replaced after the routes are made.
    get log() { return deps.log; },
  };
}

export function ingestRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const ideps = ingestDeps(deps);
  const slots = new UploadSlots(deps.config.maxConcurrentUploads);
  deps.metrics.uploadsActive.set(0);
  app.post('/:stream/ingest', need('ingest', { stream: (c) => c.req.param('stream') }), async (c) => {
    let giveBack: () => void;
    try {
      giveBack = slots.take();
    } catch (err) {
      deps.metrics.rejections.inc({ code: 'too_many_uploads' });
      throw err;
    }
    deps.metrics.uploadsActive.set(slots.active);
    try {
      return await receive(c);
    } finally {
      giveBack();
      deps.metrics.uploadsActive.set(slots.active);
    }
  });
  const receive = async (c: Context): Promise<Response> => {
    const key = currentKey(c);
    const stream = c.req.param('stream') as string;
    const provenance = utf8Header(c, 'strata-provenance');
    if (provenance === null) throw new AppError(400, 'invalid_provenance', 'the Strata-Provenance header is not valid UTF-8');
    const disposition = utf8Header(c, 'content-disposition');
    const filename = disposition === null ? null : dispositionFilename(disposition);
    if (filename === null) throw new AppError(400, 'invalid_request', 'the filename in Content-Disposition is not valid UTF-8');
    const q = c.req.query();
    const create = q.create === undefined ? true : !['false', '0', 'no'].includes(q.create.toLowerCase());
    const format = c.req.header('content-type');
    try {
      const outcome = await runIngest(ideps, {
        streamName: stream,
        contentType: format,
        contentEncoding: c.req.header('content-encoding'),
        body: requestBody(c, { idleTimeoutMs: deps.config.bodyIdleTimeoutMs }),
        actor: { keyId: key.id, role: key.role, name: key.name },
        timeColumn: q.time_column,
        create,
        idempotencyKey: c.req.header('idempotency-key'),
        filename,
        provenanceHeader: provenance,
        params: q,
        refusal: paramRefusal(c),
      });
      const m = deps.metrics;
      if (!outcome.duplicate) {
        const i = outcome.ingest;
        m.ingests.inc({ format: i.format, status: 'committed' });
        m.ingestRows.inc({ format: i.format }, i.rows);
        m.ingestBytes.inc({ format: i.format }, i.bytes);
        m.streamIngests.inc({ stream: i.stream });
        m.streamRows.inc({ stream: i.stream }, i.rows);
        m.streamBytes.inc({ stream: i.stream }, i.bytes);
        m.streamLastIngest.set({ stream: i.stream }, Date.parse(i.committed_at ?? i.received_at) / 1000);
      }
      deps.log.info({ ingest: outcome.ingest.id, stream, rows: outcome.ingest.rows, bytes: outcome.ingest.bytes, duplicate: outcome.duplicate }, 'ingest');
      return c.json({ ingest: await fullRecord(deps, outcome.ingest), duplicate: outcome.duplicate, ...(outcome.matched ? { matched: outcome.matched } : {}) }, outcome.status,
        { location: `/v1/ingests/${outcome.ingest.id}` });
    } catch (err) {
      if (isAppError(err)) {
        deps.metrics.ingests.inc({ format: 'unknown', status: 'rejected' });
        // Labelled only with streams that exist, so that refused uploads cannot mint label values.
        const known = err.status < 500 && await getStream(deps.db.pool, stream).then((s) => s !== null, () => false);
        deps.metrics.streamRejections.inc({ stream: known ? stream : '', code: err.code });
      }
      throw err;
    }
  };
  return app;
}
