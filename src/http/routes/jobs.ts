// Maintenance jobs: GET /v1/jobs (schedule, last and next run, health), GET /v1/jobs/runs (run
// records), POST /v1/jobs/{name}/run[?stream=] (runs one now, waits, answers its run record).
import { Hono } from 'hono';
import type { AppDeps } from '../deps.ts';
import { assertScope, currentKey, need } from '../auth.ts';
import { AppError } from '../../errors/index.ts';
import { schedulerOf } from '../../jobs/scheduler.ts';
import { type RunOutcome, type RunRecord, getRun, listRuns } from '../../jobs/run-records.ts';
import type { ApiKey } from '../../keys/api-keys.ts';
import { getStream } from '../../streams/catalog.ts';

const OUTCOMES: RunOutcome[] = ['running', 'succeeded', 'failed', 'timed_out', 'interrupted', 'abandoned'];

function positiveInt(name: string, value: string | undefined, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new AppError(400, 'invalid_request', `${name} must be an integer from 1 to ${max}`);
  return n;
}

/** Keys limited to some streams see what concerns their streams only. */
function serverWide(key: ApiKey, what: string): void {
  if (key.streams !== null) throw new AppError(403, 'forbidden', `a key limited to some streams may not see ${what}`);
}

/** Of a run over every stream, the part about one stream (totals and errors concern all of them). */
function partFor(run: RunRecord, stream: string): RunRecord {
  if (run.stream !== null) return run;
  const streams = (run.details.streams ?? {}) as Record<string, unknown>;
  return { ...run, rows: null, chunks: null, error: null, details: { streams: { [stream]: streams[stream] } } };
}

export function jobRoutes(deps: AppDeps): Hono {
  const app = new Hono();

  app.get('/', need('jobs:read'), async (c) => {
    serverWide(currentKey(c), 'the job overview');
    return c.json({ jobs: await schedulerOf(deps).overview() });
  });

  app.get('/runs', need('jobs:read'), async (c) => {
    const q = c.req.query();
    const key = currentKey(c);
    if (q.stream !== undefined) assertScope(key, q.stream);
    else serverWide(key, 'runs of every stream (add ?stream=<name>)');
    if (q.outcome !== undefined && !OUTCOMES.includes(q.outcome as RunOutcome)) {
      throw new AppError(400, 'invalid_request', `outcome must be one of ${OUTCOMES.join(', ')}`);
    }
    const runs = await listRuns(deps.db.pool, {
      job: q.job, stream: q.stream, outcome: q.outcome as RunOutcome | undefined,
      limit: positiveInt('limit', q.limit, 1000) ?? 50, before: positiveInt('before', q.before, Number.MAX_SAFE_INTEGER),
    });
    return c.json({ runs: key.streams === null ? runs : runs.map((r) => partFor(r, q.stream as string)) });
  });

  app.get('/runs/:id', need('jobs:read'), async (c) => {
    serverWide(currentKey(c), 'a run record by id');
    const id = positiveInt('run id', c.req.param('id'), Number.MAX_SAFE_INTEGER) as number;
    const run = await getRun(deps.db.pool, id);
    if (!run) throw new AppError(404, 'not_found', `job run ${id} does not exist`);
    return c.json(run);
  });

  app.post('/:name/run', need('jobs:run'), async (c) => {
    const name = c.req.param('name');
    const stream = c.req.query('stream');
    const key = currentKey(c);
    if (stream !== undefined) {
      assertScope(key, stream);
      if (!(await getStream(deps.db.pool, stream))) throw new AppError(404, 'not_found', `stream ${JSON.stringify(stream)} does not exist`);
    } else if (key.streams !== null) {
      throw new AppError(403, 'forbidden', 'a key limited to some streams may run a job for one of them only: add ?stream=<name>');
    }
    return c.json(await schedulerOf(deps).runNow(name, { stream, actor: { keyId: key.id, role: key.role } }));
  });

  return app;
}
