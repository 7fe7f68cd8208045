// The one error type of Strata. Everything a client can get wrong, and every failure the
// server reports, is an AppError with an HTTP status and a stable code from codes.ts;
// the HTTP layer renders it as RFC 9457 problem details.
import type { ErrorCode } from './codes.ts';

export class AppError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly detail: Record<string, unknown> | undefined;
  /** Seconds the client should wait before retrying (sent as Retry-After); for 503s and 429s. */
  readonly retryAfter: number | undefined;

  constructor(
    status: number,
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; detail?: Record<string, unknown>; retryAfter?: number } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.status = status;
    this.code = code;
    this.detail = options.detail;
    this.retryAfter = options.retryAfter;
  }

  /** True when the client caused it (4xx): such failures are recorded as rejected ingests. */
  get isClientError(): boolean {
    return this.status >= 400 && this.status < 500;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}
