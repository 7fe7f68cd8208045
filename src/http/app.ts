// The HTTP application: request ids and logging, problem-details errors, authentication on /v1,
// and the routes of each module. Built by createApp so tests can call app.request() in process.
import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import type { AppDeps } from './deps.ts';
import './context.ts';
import { bearerAuth } from './auth.ts';
import { asAppError, problemResponse } from './problem.ts';
import { healthRoutes } from './routes/health.ts';
import { clientRoutes } from './routes/client.ts';
import { streamRoutes } from './routes/streams.ts';
import { ingestRoutes } from './routes/ingest.ts';
import { queryRoutes } from './routes/query.ts';
import { keyRoutes, whoamiRoutes } from './routes/keys.ts';
import { consoleRoutes } from './routes/console.ts';
import { ingestRecordRoutes } from './routes/ingests.ts';
import { auditRoutes } from './routes/audit.ts';
import { streamProvenanceRoutes } from './routes/stream-provenance.ts';
import { refuseUnknownParams, refuseUnstorableParams } from './params-guard.ts';
import { AppError } from '../errors/index.ts';
import { openApiDocument } from './openapi.ts';
import { setLastIngests } from '../metrics/metrics.ts';
import { latestCommitPerStream } from '../provenance/ingest-records.ts';

/** Route groups other modules mount under /v1 (jobs, holds, audit …). */
export type RouteModule = (deps: AppDeps) => { path: string; app: Hono };
const extraRoutes: RouteModule[] = [];

export function registerRoutes(module: RouteModule): void {
  extraRoutes.push(module);
}

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();

  app.use('*', async (c, next) => {
    const id = c.req.header('x-request-id')?.slice(0, 128) || randomUUID();
    c.set('requestId', id);
    const started = performance.now();
    await next();
    c.header('x-request-id', id);
    const route = c.req.routePath || 'unmatched';
    const seconds = (performance.now() - started) / 1000;
    deps.metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) });
    deps.metrics.httpDuration.observe({ method: c.req.method, route }, seconds);
    deps.log.debug({ req: id, method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(seconds * 1000) }, 'request');
  });

  app.use('*', refuseUnknownParams());

  app.onError((err, c) => {
    const appErr = asAppError(err);
    if (appErr.status >= 500) {
      deps.log.error({ req: c.get('requestId'), err: appErr.cause ?? appErr, path: c.req.path }, appErr.message);
    } else {
      deps.metrics.rejections.inc({ code: appErr.code });
      deps.log.info({ req: c.get('requestId'), code: appErr.code, path: c.req.path, status: appErr.status }, appErr.message);
    }
    return problemResponse(c, appErr);
  });

  app.notFound(() => {
    throw new AppError(404, 'not_found', 'no such endpoint; see GET /openapi.json');
  });

  app.route('/', healthRoutes(deps));
  app.route('/', consoleRoutes());
  app.route('/', clientRoutes());
  app.get('/openapi.json', (c) => c.json(openApiDocument(deps.versions.strata ?? 'unknown')));
  app.get('/metrics', async (c) => {
    // Per-stream last-ingest times come from the database, so that they survive restarts and
    // cover uploads other replicas took; without the database, the values this server last had.
    await latestCommitPerStream(deps.db.pool).then((latest) => setLastIngests(deps.metrics, latest), () => undefined);
    return c.body(await deps.metrics.registry.metrics(), 200, { 'content-type': deps.metrics.registry.contentType });
  });

  const v1 = new Hono();
  v1.use('*', bearerAuth(deps));
  v1.use('*', refuseUnstorableParams());
  v1.route('/streams', ingestRoutes(deps));
  v1.route('/streams', streamProvenanceRoutes(deps));
  v1.route('/streams', queryRoutes(deps));
  v1.route('/streams', streamRoutes(deps));
  v1.route('/keys', keyRoutes(deps));
  v1.route('/whoami', whoamiRoutes());
  v1.route('/ingests', ingestRecordRoutes(deps));
  v1.route('/audit', auditRoutes(deps));
  for (const module of extraRoutes) {
    const { path, app: sub } = module(deps);
    v1.route(path, sub);
  }
  app.route('/v1', v1);
  return app;
}
