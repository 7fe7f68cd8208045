// Trace a value: GET /v1/streams/{stream}/provenance?time=<instant>&tag.<name>=<value>
// [&resolution=raw|<level or interval>] answers which ingests hold the reading at that instant, or,
// for a bucket resolution (1m, 1h, 1d, any fixed interval), which ingests the bucket containing
// that instant aggregates. Buckets are aligned to the Unix epoch, as fixed-length rollup levels are;
// `to` instead names a bucket [time, to) anywhere (a bucket of resolution=auto, which starts at the
// query's `from`).
import { Hono } from 'hono';
import type { AppDeps } from '../deps.ts';
import { need } from '../auth.ts';
import { AppError } from '../../errors/index.ts';
import { formatInterval, parseInterval } from '../../domain/interval.ts';
import { formatMicros } from '../../domain/time.ts';
import type { IngestRecord } from '../../provenance/ingest-records.ts';
import { traceReading } from '../../provenance/trace.ts';
import { parseTimeParam, tagFilters } from '../../query/params.ts';
import { one } from '../../query/run-query.ts';
import { requireStream } from '../../streams/catalog.ts';
import { assertStreamName } from '../../streams/identifiers.ts';

/** Smallest and largest bucket one trace may cover. */
const MIN_BUCKET_US = 1n;
const MAX_BUCKET_US = 366n * 86_400_000_000n;

function bucketOf(resolution: string | undefined): bigint | null {
  if (resolution === undefined || resolution === 'raw') return null;
  const us = parseInterval(resolution);
  if (us === null || us < MIN_BUCKET_US || us > MAX_BUCKET_US) {
    throw new AppError(400, 'invalid_request',
      `resolution=${JSON.stringify(resolution.slice(0, 80))}: give raw, or a fixed interval up to 366 days such as 1m, 1h or 1d`);
  }
  return us;
}

function summary(i: IngestRecord): Record<string, unknown> {
  return {
    id: i.id, status: i.status, stream: i.stream, sha256: i.sha256, filename: i.filename, instrument: i.instrument,
    key_id: i.key_id, received_at: i.received_at, committed_at: i.committed_at, rows: i.rows,
    time_min: i.time_min, time_max: i.time_max, provenance: i.provenance,
    ...(i.retraction ? { retraction: i.retraction } : {}),
    links: { record: `/v1/ingests/${i.id}`, prov: `/v1/ingests/${i.id}/prov`, ...(i.archived ? { original: `/v1/ingests/${i.id}/original` } : {}) },
  };
}

export function streamProvenanceRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get('/:stream/provenance', need('provenance:read', { stream: (c) => c.req.param('stream') }), async (c) => {
    const name = c.req.param('stream');
    assertStreamName(name);
    const query = c.req.queries();
    const time = parseTimeParam('time', one(query, 'time'));
    if (time === null) throw new AppError(400, 'invalid_request', 'time is required: give the instant of the reading, e.g. time=2024-03-01T12:00:00.000001Z');
    const resolution = one(query, 'resolution');
    const to = parseTimeParam('to', one(query, 'to'));
    if (to !== null && resolution !== undefined) throw new AppError(400, 'invalid_request', 'give either resolution or to, not both');
    if (to !== null && (to <= time || to - time > MAX_BUCKET_US)) {
      throw new AppError(400, 'invalid_request', '`to` must be after `time`, at most 366 days later');
    }
    const bucketUs = to === null ? bucketOf(resolution) : to - time;
    const stream = await requireStream(deps.db.pool, name);
    const tags = tagFilters(stream, query);
    const r = await traceReading(deps.db, { stream, time, tags, bucketUs, start: to !== null });
    return c.json({
      stream: stream.name,
      time: formatMicros(time),
      resolution: bucketUs === null ? 'raw' : to !== null ? 'range' : formatInterval(bucketUs),
      range: { from: formatMicros(r.from), to: formatMicros(r.to) },
      tags: Object.fromEntries([...tags].map(([col, values]) => [col.name, values])),
      ingests: r.ingests.map((x) => ({ ...summary(x.ingest), rows_matched: x.rows_matched })),
      ...(bucketUs === null ? { readings: r.readings } : {}),
      retracted: r.retracted.map(summary),
      truncated: r.truncated,
    });
  });
  return app;
}
