// Query parameters are data. Values PostgreSQL cannot hold (a NUL character, an unpaired
// surrogate) would otherwise reach a parameterised query and fail there as a server error; they
// are refused here, once for every /v1 route, with a 400 naming the parameter.
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors/index.ts';
import { unstorableReason } from '../db/storable.ts';

export function refuseUnstorableParams(): MiddlewareHandler {
  return async (c, next) => {
    for (const [name, values] of Object.entries(c.req.queries())) {
      for (const text of [name, ...values]) {
        const reason = unstorableReason(text);
        if (reason) {
          const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
          throw new AppError(400, 'invalid_request', `query parameter ${shown} contains ${reason}`);
        }
      }
    }
    await next();
  };
}
