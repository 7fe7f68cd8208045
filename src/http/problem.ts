// Errors as RFC 9457 problem details: a stable `code`, a message naming what was wrong, and the
// request id to find the server's log line. SQL and stack traces never reach the client.
import type { Context } from 'hono';
import { AppError, errorCodes, isAppError } from '../errors/index.ts';

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
  return new AppError(500, 'internal', 'unexpected server error; the request id identifies it in the server log', { cause: err });
}

export function problemResponse(c: Context, err: AppError): Response {
  const body = toProblem(err, new URL(c.req.url).pathname, c.get('requestId') as string);
  return c.body(JSON.stringify(body), err.status as 400, { 'content-type': 'application/problem+json' });
}
