// Bearer-key authentication and role checks. Every /v1 route names the permission it needs with
// need(); the grants table below says which role has which permission. test/access/routes.ts lists
// every route with the roles the issue allows, and the role-matrix test walks it.
import type { Context, MiddlewareHandler } from 'hono';
import { AppError } from '../errors/index.ts';
import { type ApiKey, type Role, authenticate } from '../keys/api-keys.ts';
import type { AppDeps } from './deps.ts';

export type Permission =
  | 'streams:read' | 'streams:write' | 'ingest' | 'query' | 'ingests:read' | 'provenance:read' | 'originals:read'
  | 'retract' | 'audit:read' | 'keys:admin' | 'jobs:read' | 'jobs:run' | 'holds:read' | 'holds:write';

const grants: Record<Role, readonly Permission[]> = {
  admin: ['streams:read', 'streams:write', 'ingest', 'query', 'ingests:read', 'provenance:read', 'originals:read',
    'retract', 'audit:read', 'keys:admin', 'jobs:read', 'jobs:run', 'holds:read', 'holds:write'],
  instrument: ['streams:read', 'ingest', 'ingests:read'],
  reader: ['streams:read', 'query'],
  auditor: ['streams:read', 'query', 'ingests:read', 'provenance:read', 'originals:read', 'retract', 'audit:read', 'jobs:read', 'holds:read'],
};

/** The roles that hold a permission (for the API description). */
export function rolesWith(p: Permission): Role[] {
  return (Object.keys(grants) as Role[]).filter((r) => grants[r].includes(p));
}

export function allows(role: Role, p: Permission): boolean {
  return grants[role].includes(p);
}

export function bearerAuth(deps: AppDeps): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) {
      throw new AppError(401, 'unauthorized', 'missing API key: send Authorization: Bearer <key>');
    }
    const key = await authenticate(deps.db, m[1]);
    if (!key) throw new AppError(401, 'unauthorized', 'unknown or revoked API key');
    c.set('key', key);
    await next();
  };
}

export function currentKey(c: Context): ApiKey {
  return c.get('key');
}

export interface NeedOptions {
  /** The stream the request acts on: the key's scope must include it. */
  stream?: (c: Context) => string | undefined;
  /**
   * The route acts on the whole server (keys, the audit log): a key limited to some streams may
   * not call it, whatever its role.
   */
  global?: boolean;
}

/** Requires a permission, and for stream routes that the key's scope includes the stream. */
export function need(p: Permission, opts: NeedOptions = {}): MiddlewareHandler {
  return async (c, next) => {
    const key = currentKey(c);
    if (!allows(key.role, p)) {
      throw new AppError(403, 'forbidden', `a key with role ${key.role} may not do this (needs ${p})`);
    }
    if (opts.global && key.streams !== null) {
      throw new AppError(403, 'forbidden', `this key is limited to streams ${key.streams.map((s) => JSON.stringify(s)).join(', ')}; this request needs a key without a stream scope`);
    }
    const stream = opts.stream?.(c);
    if (stream !== undefined) assertScope(key, stream);
    await next();
  };
}

export function assertScope(key: ApiKey, stream: string): void {
  if (key.streams !== null && !key.streams.includes(stream)) {
    throw new AppError(403, 'forbidden', `this key is limited to streams ${key.streams.map((s) => JSON.stringify(s)).join(', ')}`);
  }
}

export function inScope(key: ApiKey, stream: string): boolean {
  return key.streams === null || key.streams.includes(stream);
}
