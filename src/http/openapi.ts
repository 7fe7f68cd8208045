// GET /openapi.json: the API as OpenAPI 3.1, generated from the operations table (operations.ts)
// the server also checks query parameters with. Request bodies point at the same JSON Schemas
// the server validates with (schemas/*.schema.json); the roles of each operation come from the
// permission table in auth.ts, so the description cannot drift from what is enforced.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { schemasDir } from '../db/migrate.ts';
import { errorCodes } from '../errors/index.ts';
import { rolesWith } from './auth.ts';
import { supportedContentTypes } from '../ingest/formats.ts';
import { type Operation, type ResponseSpec, operations } from './operations.ts';
import { headerSchemas, responseSchemas } from './openapi-schemas.ts';

type Json = Record<string, unknown>;

/**
 * A request-body schema as a component: draft-07 `definitions` become `$defs` and its local
 * references point into the component (a `#/…` reference would otherwise resolve against the
 * OpenAPI document's root).
 */
export function asComponent(name: string, schema: unknown): unknown {
  const prefix = `#/components/schemas/${name}`;
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    const out: Json = {};
    for (const [k, x] of Object.entries(v as Json)) {
      if (k === '$ref' && typeof x === 'string' && x.startsWith('#')) out.$ref = prefix + x.slice(1).replace(/^\/definitions\//, '/$defs/');
      else out[k === 'definitions' ? '$defs' : k] = walk(x);
    }
    return out;
  };
  return walk(schema);
}

function loadSchemas(): Json {
  const out: Json = {};
  for (const f of readdirSync(schemasDir).filter((x) => x.endsWith('.schema.json'))) {
    const { $schema: _s, $id: _i, ...schema } = JSON.parse(readFileSync(path.join(schemasDir, f), 'utf8')) as Json;
    const name = f.replace('.schema.json', '');
    out[name] = asComponent(name, schema);
  }
  return out;
}

const problem = { $ref: '#/components/responses/Problem' };
const headerRef = (name: string): Json => ({ $ref: `#/components/headers/${name}` });

function success(spec: ResponseSpec): Json {
  const content = Object.fromEntries(Object.entries(spec.content).map(([type, schema]) =>
    [type, { schema: typeof schema === 'string' ? { $ref: `#/components/schemas/${schema}` } : schema }]));
  return {
    description: spec.description,
    headers: Object.fromEntries(['X-Request-Id', ...(spec.headers ?? [])].map((h) => [h, headerRef(h)])),
    content,
  };
}

function parameters(op: Operation): Json[] {
  const out: Json[] = [];
  for (const m of op.path.matchAll(/\{(\w+)\}/g)) out.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
  for (const p of op.query ?? []) {
    const schema = p.schema ?? { type: 'string' };
    out.push({
      name: p.name, in: 'query', required: p.required ?? false, description: p.description,
      ...(p.repeatable ? { style: 'form', explode: true, schema: { type: 'array', items: schema } } : { schema }),
    });
  }
  if (op.tagParams) {
    // `tag.<name>=<value>` pairs: a form-exploded object whose property names are the parameter names.
    out.push({
      name: 'tag', in: 'query', required: false, style: 'form', explode: true,
      description: `\`tag.<name>=<value>\`, repeatable: ${op.tagParams}. Written as one query parameter per tag, e.g. \`tag.sample=S-1&tag.sample=S-2\`.`,
      schema: {
        type: 'object', propertyNames: { pattern: '^tag\\..+$' },
        additionalProperties: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
      },
    });
  }
  for (const h of op.requestHeaders ?? []) out.push({ name: h, in: 'header', required: false, ...headerSchemas[h] });
  return out;
}

function operation(op: Operation): Json {
  const roles = op.permission ? rolesWith(op.permission) : [];
  const out: Json = {
    operationId: `${op.method}${op.path.replace(/\{(\w+)\}/g, 'By_$1').replace(/[^A-Za-z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ? ch.toUpperCase() : ''))}`,
    summary: op.summary,
    description: (op.permission ? `Roles: ${roles.join(', ')} (a key limited to some streams may only act on those).` : 'No key needed.') +
      ' Query parameters not listed here are refused (400 unknown_parameter).',
    parameters: parameters(op),
    responses: { [String(op.ok.status)]: success(op.ok), '503': { $ref: '#/components/responses/Unavailable' }, default: problem },
  };
  if (op.permission) out.security = [{ bearer: [] }];
  if (op.body) out.requestBody = { required: !op.bodyOptional, content: { 'application/json': { schema: { $ref: `#/components/schemas/${op.body}` } } } };
  if (op.fileBody) {
    out.requestBody = {
      required: true, description: 'the file, streamed; Content-Type names its format',
      content: Object.fromEntries(supportedContentTypes.map((t) => [t, { schema: { type: 'string', contentMediaType: t } }])),
    };
  }
  return out;
}

let cached: unknown = null;

export function openApiDocument(version: string): unknown {
  if (cached) return cached;
  const paths: Record<string, Json> = {};
  for (const op of operations) (paths[op.path] ??= {})[op.method] = operation(op);
  const problemContent = { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } };
  cached = {
    openapi: '3.1.0',
    info: { title: 'Strata', version, description: 'Time-series ingestion for scientific labs: Arrow and HDF5 in, provenance for every reading.' },
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key: Authorization: Bearer strata_…' } },
      headers: Object.fromEntries(Object.entries(headerSchemas).map(([name, h]) => [name, { description: h.description, schema: h.schema }])),
      responses: {
        Problem: { description: 'an error (RFC 9457 problem details with a stable code)', headers: { 'X-Request-Id': headerRef('X-Request-Id') }, content: problemContent },
        Unavailable: { description: 'the database (or another part of the server) is unavailable: retry later',
          headers: { 'Retry-After': headerRef('Retry-After'), 'X-Request-Id': headerRef('X-Request-Id') }, content: problemContent },
      },
      schemas: {
        ...loadSchemas(),
        ...responseSchemas,
        Problem: {
          type: 'object', required: ['type', 'title', 'status', 'code', 'detail'],
          properties: {
            type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' },
            code: { enum: Object.keys(errorCodes) }, detail: { type: 'string' }, instance: { type: 'string' }, request_id: { type: 'string' },
          },
        },
      },
    },
  };
  return cached;
}
