// PostgreSQL SQLSTATEs are translated to AppErrors here and nowhere else, so SQL text and
// parameters never reach a client.
import { AppError } from './app-error.ts';

interface PgLikeError {
  code?: string;
  message?: string;
}

function isPgError(err: unknown): err is PgLikeError {
  return typeof err === 'object' && err !== null && typeof (err as PgLikeError).code === 'string'
    && /^[0-9A-Z]{5}$/.test((err as PgLikeError).code as string);
}

/** Map an error thrown by pg to an AppError; anything unrecognised becomes a 500. */
export function fromPgError(err: unknown, what: string): AppError {
  if (err instanceof AppError) return err;
  if (!isPgError(err)) {
    const e = err as { code?: string };
    if (e?.code === 'ECONNREFUSED' || e?.code === 'ECONNRESET' || e?.code === '57P01') {
      return new AppError(503, 'database_unavailable', `cannot ${what}: PostgreSQL is not reachable`, { cause: err });
    }
    return new AppError(500, 'internal', `cannot ${what}: unexpected server error`, { cause: err });
  }
  const code = err.code as string;
  if (code === '22008' || code === '22007') {
    return new AppError(422, 'invalid_timestamp', `cannot ${what}: a timestamp is outside PostgreSQL's range`, { cause: err });
  }
  if (code === '23514' && /no partition/i.test(err.message ?? '')) {
    return new AppError(500, 'internal', `cannot ${what}: a row fell outside every chunk`, { cause: err });
  }
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') {
    return new AppError(503, 'database_unavailable', `cannot ${what}: the database connection was lost; retry the request`, { cause: err });
  }
  if (code === '40001' || code === '40P01') {
    return new AppError(503, 'conflict', `cannot ${what}: a concurrent change interfered; retry the request`, { cause: err });
  }
  return new AppError(500, 'internal', `cannot ${what}: unexpected database error`, { cause: err });
}
