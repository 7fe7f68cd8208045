// JSON Schemas for request bodies and headers live in schemas/*.schema.json; this compiles them
// once (Ajv) and turns a failed validation into a 4xx naming the offending path.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { schemasDir } from '../db/migrate.ts';
import { AppError, type ErrorCode } from '../errors/index.ts';

const ajv = new Ajv({ allErrors: false, useDefaults: true, strict: false });
const compiled = new Map<string, ValidateFunction>();

function validator(name: string): ValidateFunction {
  let v = compiled.get(name);
  if (!v) {
    const schema = JSON.parse(readFileSync(path.join(schemasDir, `${name}.schema.json`), 'utf8')) as object;
    v = ajv.compile(schema);
    compiled.set(name, v);
  }
  return v;
}

/** Validates `value` against schemas/<name>.schema.json; throws a 4xx AppError on failure. */
export function validate<T>(name: string, value: unknown, what: string, code: ErrorCode = 'invalid_body', status = 400): T {
  const v = validator(name);
  if (!v(value)) {
    const e = v.errors?.[0];
    const where = e?.instancePath ? e.instancePath : '(root)';
    const extra = e?.params && 'additionalProperty' in e.params ? ` (${JSON.stringify(e.params.additionalProperty)})` : '';
    const allowed = e?.params && 'allowedValues' in e.params ? `: one of ${(e.params.allowedValues as unknown[]).join(', ')}` : '';
    throw new AppError(status, code, `${what} is invalid at ${where}: ${e?.message ?? 'does not match its schema'}${extra}${allowed}`,
      { detail: { path: where, schema: `schemas/${name}.schema.json` } });
  }
  return value as T;
}

/** Depth of nested arrays/objects, stopping once `limit` is passed. */
export function jsonDepth(value: unknown, limit: number, depth = 0): number {
  if (depth > limit || value === null || typeof value !== 'object') return depth;
  let max = depth + 1;
  for (const v of Object.values(value as object)) {
    max = Math.max(max, jsonDepth(v, limit, depth + 1));
    if (max > limit) break;
  }
  return max;
}
