// POST /v1/streams bodies (validated by schemas/stream.schema.json) to catalog definitions, and
// streams back to the JSON the API shows.
import { AppError } from '../errors/index.ts';
import type { ColumnType } from '../domain/types.ts';
import { formatInterval, parseInterval } from '../domain/interval.ts';
import { validate } from '../validation/json-schemas.ts';
import type { NewColumn, Stream, StreamDefinition, StreamPatch } from './catalog.ts';
import { DATA_SCHEMA } from '../db/sql.ts';
import { settingHandler, settingHandlers } from './settings.ts';

/** Keys of the definition that belong to feature modules (see settings.ts). */
const SETTING_KEYS = ['rollups', 'retention', 'hdf5_mapping', 'compress_after'];

function pickSettings(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) {
    if (body[key] === undefined) continue;
    if (!settingHandler(key)) throw new AppError(400, 'invalid_body', `stream setting ${JSON.stringify(key)} is not supported by this server`);
    out[key] = body[key];
  }
  return out;
}

interface PatchBody {
  description?: string | null;
  labels?: Record<string, unknown>;
  [setting: string]: unknown;
}

export function parseStreamPatch(json: unknown): StreamPatch {
  const body = validate<PatchBody>('stream-patch', json, 'the stream change');
  return { description: body.description, labels: body.labels, settings: pickSettings(body) };
}

const TYPE_ALIASES: Record<string, ColumnType> = {
  float8: 'float8', float64: 'float8', double: 'float8', float: 'float8',
  float4: 'float4', float32: 'float4',
  int2: 'int2', int16: 'int2', smallint: 'int2',
  int4: 'int4', int32: 'int4', integer: 'int4',
  int8: 'int8', int64: 'int8', bigint: 'int8',
  bool: 'bool', boolean: 'bool',
  text: 'text', string: 'text',
  timestamptz: 'timestamptz', timestamp: 'timestamptz',
};

interface StreamBody {
  name: string;
  description?: string | null;
  labels?: Record<string, unknown>;
  time_column?: string | null;
  chunk_interval?: string;
  tags?: (string | { name: string; description?: string | null })[];
  fields?: { name: string; type: string; unit?: string | null; description?: string | null }[];
}

/** Smallest chunk interval: chunk names carry the start to the second, and tiny chunks only cost. */
export const MIN_CHUNK_INTERVAL_US = 60_000_000n;

export function parseChunkInterval(text: string): bigint {
  const us = parseInterval(text);
  if (us === null || us < MIN_CHUNK_INTERVAL_US || us % 1_000_000n !== 0n) {
    throw new AppError(400, 'invalid_body',
      `chunk_interval ${JSON.stringify(text)} is not a fixed interval of whole seconds of at least 1 minute (e.g. "1 day", "6 hours", "1 week")`);
  }
  return us;
}

export function parseStreamDefinition(json: unknown): StreamDefinition {
  const body = validate<StreamBody>('stream', json, 'the stream definition');
  const columns: NewColumn[] = [];
  for (const t of body.tags ?? []) {
    const tag = typeof t === 'string' ? { name: t } : t;
    columns.push({ name: tag.name, role: 'tag', type: 'text', description: 'description' in tag ? tag.description ?? null : null });
  }
  for (const f of body.fields ?? []) {
    columns.push({ name: f.name, role: 'field', type: TYPE_ALIASES[f.type], unit: f.unit ?? null, description: f.description ?? null });
  }
  if (body.time_column && columns.some((c) => c.name === body.time_column)) {
    throw new AppError(400, 'invalid_body', `time_column ${JSON.stringify(body.time_column)} must not also be declared as a tag or field`);
  }
  return {
    name: body.name,
    description: body.description ?? null,
    labels: body.labels ?? {},
    timeColumn: body.time_column ?? null,
    chunkIntervalUs: parseChunkInterval(body.chunk_interval ?? '1 day'),
    columns,
    settings: pickSettings(body as unknown as Record<string, unknown>),
  };
}

export function streamJson(s: Stream): Record<string, unknown> {
  return {
    name: s.name,
    description: s.description,
    labels: s.labels,
    time_column: s.timeColumn,
    chunk_interval: formatInterval(s.chunkIntervalUs),
    tags: s.columns.filter((c) => c.role === 'tag').map((c) => ({ name: c.name, column: c.columnName, type: c.type, description: c.description })),
    fields: s.columns.filter((c) => c.role === 'field').map((c) => ({ name: c.name, column: c.columnName, type: c.type, unit: c.unit, description: c.description })),
    ...Object.fromEntries(settingHandlers().map((h) => [h.key, h.show ? h.show((s.settings[h.key] ?? null) as never) : s.settings[h.key] ?? null])),
    table: `${DATA_SCHEMA}.${s.tableName}`,
    created_at: s.createdAt,
    updated_at: s.updatedAt,
  };
}
