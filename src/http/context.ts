// Per-request values set by middleware.
import type { ApiKey } from '../keys/api-keys.ts';

declare module 'hono' {
  interface ContextVariableMap {
    requestId: string;
    key: ApiKey;
  }
}

export {};
