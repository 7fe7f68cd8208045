// Query parameters are data, and checked before any handler sees them:
// - a parameter the operation does not declare (operations.ts) is refused with a 400 naming it,
//   so that a typo (`form=` for `from=`) never silently widens an answer;
// - values PostgreSQL cannot hold (a NUL character, an unpaired surrogate) would otherwise reach
//   a parameterised query and fail there as a server error; they are refused with a 400 too.
import type { Context, MiddlewareHandler } from 'hono';
import { AppError } from '../errors/index.ts';
import { unstorableReason } from '../db/storable.ts';
import { type Operation, operationFor, unknownParams } from './operations.ts';

const shown = (name: string): string => JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);

function unknownParamsError(op: Operation, names: string[]): AppError {
  const known = (op.query ?? []).map((p) => p.name);
  if (op.tagParams) known.push('tag.<name>');
  const list = names.slice(0, 10).map(shown).join(', ') + (names.length > 10 ? ` and ${names.length - 10} more` : '');
  return new AppError(400, 'unknown_parameter',
    `${op.method.toUpperCase()} ${op.path} does not take ${names.length === 1 ? 'the query parameter' : 'the query parameters'} ${list}; ` +
    (known.length > 0 ? `it takes ${known.join(', ')}` : 'it takes no query parameters'),
    { detail: { parameters: names.slice(0, 100) } });
}

/**
 * Refuses undeclared query parameters on every route. For operations that record their refusals
 * (uploads), the error is left for the handler to raise where the refusal is recorded.
 */
export function refuseUnknownParams(): MiddlewareHandler {
  return async (c, next) => {
    const op = operationFor(c.req.method, c.req.path);
    if (op) {
      const unknown = unknownParams(op, Object.keys(c.req.queries()));
      if (unknown.length > 0) {
        const err = unknownParamsError(op, unknown);
        if (!op.recordsRefusals) throw err;
        c.set('paramRefusal', err);
      }
    }
    await next();
  };
}

/** The refusal refuseUnknownParams left for this request's handler, if any. */
export function paramRefusal(c: Context): AppError | undefined {
  return c.get('paramRefusal');
}

export function refuseUnstorableParams(): MiddlewareHandler {
  return async (c, next) => {
    for (const [name, values] of Object.entries(c.req.queries())) {
      for (const text of [name, ...values]) {
        const reason = unstorableReason(text);
        if (reason) throw new AppError(400, 'invalid_request', `query parameter ${shown(name)} contains ${reason}`);
      }
    }
    await next();
  };
}
