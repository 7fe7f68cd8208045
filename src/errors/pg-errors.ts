// PostgreSQL SQLSTATEs, and the ways a connection to PostgreSQL can fail, are translated to
// AppErrors here and nowhere else, so SQL text and parameters never reach a client and a lost
// database is a 503 with Retry-After wherever it is noticed (a key lookup, a query, a COPY).
import { AppError } from './app-error.ts';

interface PgLikeError {
  code?: string;
  message?: string;
  cause?: unknown;
}

/** Seconds a client is told to wait (Retry-After) when the database is unavailable. */
export const DATABASE_RETRY_AFTER_S = 5;

function isPgError(err: unknown): err is PgLikeError {
  return typeof err === 'object' && err !== null && typeof (err as PgLikeError).code === 'string'
    && /^[0-9A-Z]{5}$/.test((err as PgLikeError).code as string);
}

// Socket-level failures reaching or talking to PostgreSQL.
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'EAI_AGAIN']);
// SQLSTATEs that mean the session or the server went away (or is not accepting sessions yet).
const SESSION_GONE = new Set(['57P01', '57P02', '57P03', '53300', '57P05']);
// node-postgres reports a lost or unusable connection with these messages and no code.
const DRIVER_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|is not queryable|Connection ended unexpectedly|terminating connection due to|the database system is (starting up|shutting down|in recovery mode)|server closed the connection unexpectedly/i;

/**
 * True when err (or an error it wraps) says the connection to PostgreSQL is lost or cannot be
 * made: the request may succeed later, and the connection it ran on must not be reused.
 */
export function isConnectionError(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as PgLikeError).cause, depth++) {
    if (e instanceof AppError) return e.code === 'database_unavailable';
    const { code, message } = e as PgLikeError;
    if (typeof code === 'string' && (SOCKET_CODES.has(code) || code.startsWith('08') || SESSION_GONE.has(code))) return true;
    if (typeof message === 'string' && DRIVER_MESSAGES.test(message)) return true;
  }
  return false;
}

/** The 503 for a request that needed the database while it was unreachable. */
export function databaseUnavailable(what: string, cause?: unknown): AppError {
  return new AppError(503, 'database_unavailable',
    `cannot ${what}: the connection to PostgreSQL was lost or cannot be made; retry in a few seconds`,
    { cause, retryAfter: DATABASE_RETRY_AFTER_S });
}

/**
 * What keeps PostgreSQL from doing the work now, for SQLSTATEs that are a failure of ours rather
 * than of the request: the same request may succeed later (null for any other code).
 */
function serverCannotNow(code: string): string | null {
  if (code.startsWith('53')) return 'PostgreSQL lacks the resources (disk space, memory or connections)';
  if (code.startsWith('58')) return 'PostgreSQL met a system or I/O error';
  if (code === '57014') return 'PostgreSQL cancelled the statement';
  if (code === '55P03') return 'a lock was not granted in time';
  return null;
}

/** Map an error thrown by pg (or by anything beneath a request) to an AppError; anything unrecognised becomes a 500. */
export function fromPgError(err: unknown, what: string): AppError {
  if (err instanceof AppError) return err;
  if (isConnectionError(err)) return databaseUnavailable(what, err);
  if (!isPgError(err)) {
    return new AppError(500, 'internal', `cannot ${what}: unexpected server error`, { cause: err });
  }
  const code = err.code as string;
  if (code === '22008' || code === '22007') {
    return new AppError(422, 'invalid_timestamp', `cannot ${what}: a timestamp is outside PostgreSQL's range`, { cause: err });
  }
  if (code === '23514' && /no partition/i.test(err.message ?? '')) {
    return new AppError(500, 'internal', `cannot ${what}: a row fell outside every chunk`, { cause: err });
  }
  if (code === '40001' || code === '40P01') {
    return new AppError(503, 'conflict', `cannot ${what}: a concurrent change interfered; retry the request`, { cause: err, retryAfter: 1 });
  }
  const busy = serverCannotNow(code);
  if (busy) {
    return new AppError(503, 'database_unavailable', `cannot ${what}: ${busy}; retry in a few seconds`, { cause: err, retryAfter: DATABASE_RETRY_AFTER_S });
  }
  return new AppError(500, 'internal', `cannot ${what}: unexpected database error`, { cause: err });
}
