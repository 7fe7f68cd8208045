// API keys (admin, without a stream scope: a scoped admin could otherwise mint itself an
// unscoped key): POST /v1/keys answers with the secret once; GET lists; DELETE revokes.
import { Hono } from 'hono';
import type { AppDeps } from '../deps.ts';
import { type Permission, allows, currentKey, need } from '../auth.ts';
import { readJson } from '../json-body.ts';
import { AppError } from '../../errors/index.ts';
import { type ApiKey, type Role, createKey, listKeys, revokeKey } from '../../keys/api-keys.ts';
import { validate } from '../../validation/json-schemas.ts';

function keyJson(k: ApiKey): Record<string, unknown> {
  return {
    id: k.id, name: k.name, role: k.role, streams: k.streams, prefix: k.prefix,
    created_at: k.createdAt, created_by: k.createdBy, revoked_at: k.revokedAt, revoked_by: k.revokedBy,
    last_used_at: k.lastUsedAt,
  };
}

export function keyRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.post('/', need('keys:admin', { global: true }), async (c) => {
    const body = validate<{ name: string; role: Role; streams?: string[] | null }>('key', await readJson(c), 'the key request');
    const actor = currentKey(c);
    const { key, secret } = await createKey(deps.db, body, { keyId: actor.id, role: actor.role });
    return c.json({ ...keyJson(key), key: secret }, 201);
  });
  app.get('/', need('keys:admin', { global: true }), async (c) => c.json({ keys: (await listKeys(deps.db.pool)).map(keyJson) }));
  app.delete('/:id', need('keys:admin', { global: true }), async (c) => {
    const id = Number(c.req.param('id'));
    if (!Number.isSafeInteger(id) || id <= 0) throw new AppError(400, 'invalid_request', 'key id must be a positive integer');
    const actor = currentKey(c);
    return c.json(keyJson(await revokeKey(deps.db, id, { keyId: actor.id, role: actor.role })));
  });
  return app;
}

const PERMISSIONS: readonly Permission[] = ['streams:read', 'streams:write', 'ingest', 'query', 'ingests:read', 'provenance:read',
  'originals:read', 'retract', 'audit:read', 'keys:admin', 'jobs:read', 'jobs:run', 'holds:read', 'holds:write'];

/** GET /v1/whoami: the calling key (never its secret) and what its role may do, for the console. */
export function whoamiRoutes(): Hono {
  const app = new Hono();
  app.get('/', need('streams:read'), (c) => {
    const k = currentKey(c);
    return c.json({ ...keyJson(k), permissions: PERMISSIONS.filter((p) => allows(k.role, p)) });
  });
  return app;
}
