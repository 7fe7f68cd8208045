// Prometheus metrics (prom-client), served at GET /metrics. A counter for every rejected input,
// by code, so bad uploads show up on a dashboard and not only in logs.
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
  uploadsActive: Gauge;
  embeddedPostgresRestarts: Counter<'outcome'>;
}

export function createMetrics(withDefaults = true): Metrics {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: 'strata_process_' });
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
    uploadsActive: new Gauge({ name: 'strata_uploads_active', help: 'Uploads being received now (bounded by STRATA_MAX_CONCURRENT_UPLOADS)', registers: [registry] }),
    embeddedPostgresRestarts: new Counter({
      name: 'strata_embedded_postgres_restarts_total', help: 'Restarts of the embedded PostgreSQL after it died, by outcome (restarted, failed)',
      labelNames: ['outcome'], registers: [registry],
    }),
  };
}
