// Per-request values set by middleware.
import type { ApiKey } from '../keys/api-keys.ts';
import type { AppError } from '../errors/index.ts';

declare module 'hono' {
  interface ContextVariableMap {
    requestId: string;
    key: ApiKey;
    /** An undeclared query parameter, left for a handler that records its refusals. */
    paramRefusal: AppError;
  }
}

export {};
