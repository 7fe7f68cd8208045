// Errors as RFC 9457 problem details: a stable `code`, a message naming what was wrong, and the
// request id to find the server's log line. SQL and stack traces never reach the client.
import type { Context } from 'hono';
import { AppError, DATABASE_RETRY_AFTER_S, errorCodes, fromPgError, isAppError } from '../errors/index.ts';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  instance: string;
  request_id: string;
  [extra: string]: unknown;
}

export function toProblem(err: AppError, instance: string, requestId: string): Problem {
  return {
    type: `urn:strata:error:${err.code}`,
    title: errorCodes[err.code],
    status: err.status,
    code: err.code,
    detail: err.message,
    instance,
    request_id: requestId,
    ...(err.detail ?? {}),
  };
}

export function asAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  const e = err as { status?: number; message?: string };
  // Hono's own HTTPExceptions (e.g. malformed JSON bodies) carry a status.
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    return new AppError(e.status, 'invalid_request', e.message || 'the request is malformed', { cause: err });
  }
  // A lost database connection surfaces wherever a request first needs one (the key lookup, a
  // query, a catalog read): the one translation in errors/ makes it a 503, everything else a 500.
  const translated = fromPgError(err, 'answer the request');
  if (translated.status !== 500) return translated;
  return new AppError(500, 'internal', 'unexpected server error; the request id identifies it in the server log', { cause: err });
}

export function problemResponse(c: Context, err: AppError): Response {
  const body = toProblem(err, new URL(c.req.url).pathname, c.get('requestId') as string);
  const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
  // A failure of ours is temporary: say when to come back.
  if (err.status === 503 || err.status === 429) headers['retry-after'] = String(err.retryAfter ?? DATABASE_RETRY_AFTER_S);
  // The client stopped sending its body: the rest of it will not be read, so the connection cannot be reused.
  if (err.status === 408) headers.connection = 'close';
  return c.body(JSON.stringify(body), err.status as 400, headers);
}
