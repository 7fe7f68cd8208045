// Stream definitions: POST /v1/streams, GET /v1/streams, GET/PATCH/DELETE /v1/streams/{stream},
// POST /v1/streams/{stream}/rename, GET /v1/streams/{stream}/activity (rows, last ingests, silent
// instruments, rollup freshness).
import { Hono } from 'hono';
import type { AppDeps } from '../deps.ts';
import { readDb } from '../read-db.ts';
import { assertScope, currentKey, inScope, need } from '../auth.ts';
import { readJson } from '../json-body.ts';
import { AppError } from '../../errors/index.ts';
import { createStream, listStreams, requireStream, updateStream } from '../../streams/catalog.ts';
import { parseStreamDefinition, parseStreamPatch, streamJson } from '../../streams/definition.ts';
import { assertStreamName } from '../../streams/identifiers.ts';
import { deleteStream, renameStream } from '../../streams/lifecycle.ts';
import { validate } from '../../validation/json-schemas.ts';
import { forgetStream } from '../../metrics/metrics.ts';
import { streamActivity } from '../../streams/activity.ts';

export function streamRoutes(deps: AppDeps): Hono {
  const app = new Hono();

  app.post('/', need('streams:write'), async (c) => {
    const def = parseStreamDefinition(await readJson(c));
    const key = currentKey(c);
    assertScope(key, def.name);
    const { stream, created } = await createStream(deps.db, def, { keyId: key.id, role: key.role });
    if (!created) throw new AppError(409, 'conflict', `stream ${JSON.stringify(def.name)} already exists`);
    return c.json(streamJson(stream), 201, { location: `/v1/streams/${encodeURIComponent(stream.name)}` });
  });

  app.get('/', need('streams:read'), async (c) => {
    const key = currentKey(c);
    const streams = (await listStreams((await readDb(deps, c)).pool)).filter((s) => inScope(key, s.name));
    return c.json({ streams: streams.map(streamJson) });
  });

  app.get('/:stream', need('streams:read', { stream: (c) => c.req.param('stream') }), async (c) => {
    const name = c.req.param('stream');
    assertStreamName(name);
    return c.json(streamJson(await requireStream(deps.db.pool, name)));
  });

  app.get('/:stream/activity', need('streams:read', { stream: (c) => c.req.param('stream') }), async (c) => {
    const name = c.req.param('stream');
    assertStreamName(name);
    return c.json(await streamActivity(deps.db.pool, await requireStream(deps.db.pool, name)));
  });

  app.patch('/:stream', need('streams:write', { stream: (c) => c.req.param('stream') }), async (c) => {
    const name = c.req.param('stream');
    assertStreamName(name);
    const patch = parseStreamPatch(await readJson(c));
    const key = currentKey(c);
    return c.json(streamJson(await updateStream(deps.db, name, patch, { keyId: key.id, role: key.role })));
  });

  app.delete('/:stream', need('streams:write', { stream: (c) => c.req.param('stream') }), async (c) => {
    const name = c.req.param('stream');
    assertStreamName(name);
    const key = currentKey(c);
    const deleted = await deleteStream(deps.db, name, { keyId: key.id, role: key.role });
    await forgetStream(deps.metrics, name);
    deps.log.info({ stream: name, stream_id: deleted.stream_id, chunks: deleted.chunks_dropped, key: key.id }, 'stream deleted');
    return c.json(deleted);
  });

  app.post('/:stream/rename', need('streams:write', { stream: (c) => c.req.param('stream') }), async (c) => {
    const name = c.req.param('stream');
    assertStreamName(name);
    const body = validate<{ name: string }>('stream-rename', await readJson(c), 'the rename');
    const key = currentKey(c);
    assertScope(key, body.name);
    const stream = await renameStream(deps.db, name, body.name, { keyId: key.id, role: key.role });
    await forgetStream(deps.metrics, name);
    deps.log.info({ stream: body.name, was: name, key: key.id }, 'stream renamed');
    return c.json(streamJson(stream), 200, { location: `/v1/streams/${encodeURIComponent(stream.name)}` });
  });

  return app;
}
