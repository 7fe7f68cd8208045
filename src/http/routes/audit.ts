// The audit log (admin, auditor; keys without a stream scope, since the log covers every stream):
// GET /v1/audit pages through it in sequence order; GET /v1/audit/verify recomputes the chain,
// optionally against hashes an outside copy holds, and writes the head to the server log.
import { Hono } from 'hono';
import type { AppDeps } from '../deps.ts';
import { need } from '../auth.ts';
import { AppError } from '../../errors/index.ts';
import { type ChainAnchor, listAudit, verifyAndLog } from '../../audit/log.ts';

const MAX_FILTER_CHARS = 1024;

function intParam(name: string, value: string | undefined, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d{1,16}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new AppError(400, 'invalid_request', `${name}=${JSON.stringify(value.slice(0, 40))}: give an integer from ${min} to ${max}`);
  }
  return Number(value);
}

function filterParam(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.length === 0 || value.length > MAX_FILTER_CHARS) {
    throw new AppError(400, 'invalid_request', `${name} must be 1–${MAX_FILTER_CHARS} characters`);
  }
  return value;
}

/** `expect=<seq>:<sha256 hex>`, repeatable: entries whose hashes an outside copy recorded. */
function parseAnchors(values: string[]): ChainAnchor[] {
  if (values.length > 100) throw new AppError(400, 'invalid_request', 'give at most 100 expect= parameters');
  return values.map((v) => {
    const m = /^(\d{1,15}):([0-9a-fA-F]{64})$/.exec(v);
    if (!m || Number(m[1]) < 1) {
      throw new AppError(400, 'invalid_request', `expect=${JSON.stringify(v.slice(0, 100))}: give <sequence>:<64 hex digits>, as a verification or the server log printed them`);
    }
    return { seq: Number(m[1]), hash: m[2].toLowerCase() };
  });
}

export function auditRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get('/', need('audit:read', { global: true }), async (c) => {
    const q = c.req.query();
    const limit = intParam('limit', q.limit, 1, 1000, 100);
    const entries = await listAudit(deps.db.pool, {
      after: intParam('after', q.after, 0, Number.MAX_SAFE_INTEGER, 0), limit,
      action: filterParam('action', q.action), subject: filterParam('subject', q.subject),
    });
    const last = entries.at(-1);
    return c.json({ entries, next_after: entries.length === limit && last ? last.seq : null });
  });
  app.get('/verify', need('audit:read', { global: true }), async (c) => {
    const anchors = parseAnchors(c.req.queries('expect') ?? []);
    const result = await verifyAndLog(deps.db.pool, deps.log, `GET /v1/audit/verify (request ${c.get('requestId')})`, anchors);
    return c.json(result);
  });
  return app;
}
