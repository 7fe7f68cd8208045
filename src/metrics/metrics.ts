// Prometheus metrics (prom-client), served at GET /metrics. A counter for every rejected input,
// by code, so bad uploads show up on a dashboard and not only in logs; and per stream, when it
// last received data and how much, so that an instrument gone silent can be alerted on. The
// stream label takes only names of streams that exist (an upload refused for a stream that does
// not exist counts under stream=""), so its values are bounded by the streams admins and
// instrument keys create; a deleted or renamed stream's series are removed.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  ingests: Counter<'format' | 'status'>;
  ingestRows: Counter<'format'>;
  ingestBytes: Counter<'format'>;
  rejections: Counter<'code'>;
  jobRuns: Counter<'job' | 'outcome'>;
  jobHealthy: Gauge<'job'>;
  streamIngests: Counter<'stream'>;
  streamRows: Counter<'stream'>;
  streamBytes: Counter<'stream'>;
  streamRejections: Counter<'stream' | 'code'>;
  /** Set at each commit, and from the database at each scrape (so it survives restarts and covers every replica). */
  streamLastIngest: Gauge<'stream'>;
  uploadsActive: Gauge;
  embeddedPostgresRestarts: Counter<'outcome'>;
  standbyReplayLag: Gauge;
  reads: Counter<'target' | 'reason'>;
  backupLastSuccess: Gauge;
}

export function createMetrics(withDefaults = true): Metrics {
  const registry = new Registry();
  // prom-client's own names start with process_ and nodejs_: strata_process_cpu_seconds_total …
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: 'strata_' });
  return {
    registry,
    httpRequests: new Counter({ name: 'strata_http_requests_total', help: 'HTTP requests', labelNames: ['method', 'route', 'status'], registers: [registry] }),
    httpDuration: new Histogram({
      name: 'strata_http_request_seconds', help: 'HTTP request duration', labelNames: ['method', 'route'], registers: [registry],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    }),
    ingests: new Counter({ name: 'strata_ingests_total', help: 'Ingests by outcome', labelNames: ['format', 'status'], registers: [registry] }),
    ingestRows: new Counter({ name: 'strata_ingest_rows_total', help: 'Rows committed', labelNames: ['format'], registers: [registry] }),
    ingestBytes: new Counter({ name: 'strata_ingest_bytes_total', help: 'Body bytes of committed ingests', labelNames: ['format'], registers: [registry] }),
    rejections: new Counter({ name: 'strata_rejected_requests_total', help: 'Rejected requests by error code', labelNames: ['code'], registers: [registry] }),
    jobRuns: new Counter({ name: 'strata_job_runs_total', help: 'Maintenance job runs by outcome', labelNames: ['job', 'outcome'], registers: [registry] }),
    jobHealthy: new Gauge({ name: 'strata_job_healthy', help: '1 when the job ran recently and is not failing', labelNames: ['job'], registers: [registry] }),
    streamIngests: new Counter({ name: 'strata_stream_ingests_total', help: 'Committed ingests per stream', labelNames: ['stream'], registers: [registry] }),
    streamRows: new Counter({ name: 'strata_stream_rows_total', help: 'Rows committed per stream', labelNames: ['stream'], registers: [registry] }),
    streamBytes: new Counter({ name: 'strata_stream_bytes_total', help: 'Body bytes of committed ingests per stream', labelNames: ['stream'], registers: [registry] }),
    streamRejections: new Counter({
      name: 'strata_stream_rejections_total', help: 'Refused uploads per stream and error code (stream="" when the stream does not exist)',
      labelNames: ['stream', 'code'], registers: [registry],
    }),
    streamLastIngest: new Gauge({
      name: 'strata_stream_last_ingest_timestamp_seconds', help: 'Unix time of the stream\'s latest committed ingest',
      labelNames: ['stream'], registers: [registry],
    }),
    uploadsActive: new Gauge({ name: 'strata_uploads_active', help: 'Uploads being received now (bounded by STRATA_MAX_CONCURRENT_UPLOADS)', registers: [registry] }),
    embeddedPostgresRestarts: new Counter({
      name: 'strata_embedded_postgres_restarts_total', help: 'Restarts of the embedded PostgreSQL after it died, by outcome (restarted, failed)',
      labelNames: ['outcome'], registers: [registry],
    }),
    standbyReplayLag: new Gauge({
      name: 'strata_standby_replay_lag_seconds', help: 'How far the read standby (STRATA_READ_DATABASE_URL) is behind the primary, in seconds of replay; -1 while it is unreachable',
      registers: [registry],
    }),
    reads: new Counter({
      name: 'strata_reads_total', help: 'Reads (queries, lists) by where they went (standby, primary) and why (standby, no_standby, standby_down, after_ingest_timeout)',
      labelNames: ['target', 'reason'], registers: [registry],
    }),
    backupLastSuccess: new Gauge({
      name: 'strata_backup_last_success_timestamp_seconds', help: 'When the newest complete base backup in STRATA_BACKUP_DIR finished (Unix seconds); 0 when there is none',
      registers: [registry],
    }),
  };
}

/** Removes a stream's series (after it was deleted or renamed). */
export async function forgetStream(m: Metrics, stream: string): Promise<void> {
  for (const metric of [m.streamIngests, m.streamRows, m.streamBytes, m.streamLastIngest]) metric.remove({ stream });
  for (const v of (await m.streamRejections.get()).values) {
    if (v.labels.stream === stream) m.streamRejections.remove({ stream, code: String(v.labels.code) });
  }
}

/** The per-stream gauge from the database: every live stream, with its latest commit (none: not set). */
export function setLastIngests(m: Metrics, latest: readonly { stream: string; at: Date | null }[]): void {
  m.streamLastIngest.reset();
  for (const { stream, at } of latest) if (at) m.streamLastIngest.set({ stream }, at.getTime() / 1000);
}
