// GET /v1/streams/{stream}/query — raw rows or aggregates, as JSON, CSV or Arrow, streamed.
import { Hono } from 'hono';
import type { AppDeps } from '../deps.ts';
import { need } from '../auth.ts';
import { streamBody } from '../stream-response.ts';
import { readDb } from '../read-db.ts';
import { assertStreamName } from '../../streams/identifiers.ts';
import { contentTypeOf, planQuery, renderQuery } from '../../query/run-query.ts';

export function queryRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get('/:stream/query', need('query', { stream: (c) => c.req.param('stream') }), async (c) => {
    const streamName = c.req.param('stream');
    assertStreamName(streamName);
    const { after_ingest: _after, ...query } = c.req.queries();
    const { plan, format } = await planQuery(await readDb(deps, c), { streamName, query, accept: c.req.header('accept') });
    // Run the query up to its first page before answering, so that a failing query is still a
    // clean error response rather than a cut-off body.
    const body = renderQuery(plan, format);
    const head: Uint8Array[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await body.next();
      if (r.done) break;
      head.push(r.value);
    }
    async function* rest(): AsyncGenerator<Uint8Array> {
      yield* head;
      yield* body;
    }
    const readFrom = c.res.headers.get('Strata-Read-From');
    return new Response(streamBody(rest()), { status: 200, headers: { ...plan.headers, ...(readFrom ? { 'Strata-Read-From': readFrom } : {}), 'content-type': contentTypeOf(format) } });
  });
  return app;
}
