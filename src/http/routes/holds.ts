// Legal holds: POST /v1/holds places one, GET /v1/holds[?stream&active] and GET /v1/holds/{id}
// show them, DELETE /v1/holds/{id} releases one (the record stays; both acts are audited).
import { Hono } from 'hono';
import type { AppDeps } from '../deps.ts';
import { assertScope, currentKey, need } from '../auth.ts';
import { readJson } from '../json-body.ts';
import { AppError } from '../../errors/index.ts';
import { createHold, getHold, listHolds, releaseHold } from '../../retention/holds.ts';
import { parseTimeParam } from '../../query/params.ts';
import { validate } from '../../validation/json-schemas.ts';

function holdId(text: string): number {
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id <= 0) throw new AppError(400, 'invalid_request', 'hold id must be a positive integer');
  return id;
}

export function holdRoutes(deps: AppDeps): Hono {
  const app = new Hono();

  app.post('/', need('holds:write'), async (c) => {
    const body = validate<{ stream: string; from?: string | null; to?: string | null; reason: string }>('hold', await readJson(c), 'the hold');
    const key = currentKey(c);
    assertScope(key, body.stream);
    const hold = await createHold(deps.db, {
      stream: body.stream, reason: body.reason,
      fromUs: parseTimeParam('from', body.from ?? undefined), toUs: parseTimeParam('to', body.to ?? undefined),
    }, { keyId: key.id, role: key.role });
    return c.json(hold, 201, { location: `/v1/holds/${hold.id}` });
  });

  app.get('/', need('holds:read'), async (c) => {
    const q = c.req.query();
    if (q.active !== undefined && q.active !== 'true' && q.active !== 'false') {
      throw new AppError(400, 'invalid_request', 'active must be true or false');
    }
    const key = currentKey(c);
    const holds = await listHolds(deps.db.pool, { stream: q.stream, active: q.active === undefined ? undefined : q.active === 'true', streams: key.streams });
    return c.json({ holds });
  });

  app.get('/:id', need('holds:read'), async (c) => {
    const id = holdId(c.req.param('id'));
    const hold = await getHold(deps.db.pool, id);
    if (!hold) throw new AppError(404, 'not_found', `hold ${id} does not exist`);
    assertScope(currentKey(c), hold.stream);
    return c.json(hold);
  });

  app.delete('/:id', need('holds:write'), async (c) => {
    const id = holdId(c.req.param('id'));
    const key = currentKey(c);
    const existing = await getHold(deps.db.pool, id);
    if (!existing) throw new AppError(404, 'not_found', `hold ${id} does not exist`);
    assertScope(key, existing.stream);
    // The body is optional: {"reason": "…"} says why the hold ends.
    const hasBody = c.req.header('content-type') !== undefined || (c.req.header('content-length') ?? '0') !== '0';
    const reason = hasBody ? validate<{ reason?: string }>('hold-release', await readJson(c), 'the release').reason ?? null : null;
    return c.json(await releaseHold(deps.db, id, reason, { keyId: key.id, role: key.role }));
  });

  return app;
}
