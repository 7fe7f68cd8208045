// Query-string parameters shared by the query endpoints: time range, fields, tag filters, format.
import { AppError } from '../errors/index.ts';
import { parseInstant } from '../domain/time.ts';
import type { StreamColumn } from '../domain/types.ts';
import type { Stream } from '../streams/catalog.ts';

export type OutputFormat = 'json' | 'csv' | 'arrow';

/** What NaN does to aggregates: left out (skip, the default) or IEEE semantics (propagate). */
export type NanMode = 'skip' | 'propagate';

export function parseNanMode(value: string | undefined): NanMode {
  if (value === undefined || value === 'skip' || value === 'propagate') return value ?? 'skip';
  throw new AppError(400, 'invalid_request', `nan=${JSON.stringify(value)}: use skip (aggregates leave NaN out, the default) or propagate (IEEE semantics: a NaN makes avg, sum, min and max NaN)`);
}

export function parseTimeParam(name: string, value: string | undefined): bigint | null {
  if (value === undefined || value === '') return null;
  if (/^-?\d+$/.test(value)) {
    throw new AppError(400, 'invalid_request', `${name}=${value}: give an RFC 3339 instant such as 2024-03-01T00:00:00Z`);
  }
  const parsed = parseInstant(value);
  if (!parsed) throw new AppError(400, 'invalid_request', `${name}=${JSON.stringify(value)} is not an RFC 3339 instant with a time zone (e.g. 2024-03-01T00:00:00Z)`);
  return parsed.us;
}

export function parseFormat(value: string | undefined, accept: string | undefined): OutputFormat {
  const v = value ?? (accept?.includes('text/csv') ? 'csv' : accept?.includes('application/vnd.apache.arrow.stream') ? 'arrow' : 'json');
  if (v !== 'json' && v !== 'csv' && v !== 'arrow') throw new AppError(400, 'invalid_request', `format=${JSON.stringify(v)}: use json, csv or arrow`);
  return v;
}

/** Columns named by `fields=a,b` (original names), or all tags and fields. */
export function selectColumns(stream: Stream, fields: string | undefined): StreamColumn[] {
  if (fields === undefined || fields.trim() === '') return stream.columns;
  const byName = new Map(stream.columns.map((c) => [c.name, c]));
  const out: StreamColumn[] = [];
  for (const name of fields.split(',').map((s) => s.trim()).filter(Boolean)) {
    const c = byName.get(name);
    if (!c) {
      throw new AppError(400, 'invalid_request',
        `fields: stream ${JSON.stringify(stream.name)} has no column ${JSON.stringify(name)}; it has ${stream.columns.map((x) => JSON.stringify(x.name)).join(', ') || 'no columns'}`);
    }
    if (!out.includes(c)) out.push(c);
  }
  return out;
}

/** Tag filters from `tag.<name>=<value>` parameters (repeatable: values of one tag are OR-ed). */
export function tagFilters(stream: Stream, query: Record<string, string[]>): Map<StreamColumn, string[]> {
  const filters = new Map<StreamColumn, string[]>();
  for (const [key, values] of Object.entries(query)) {
    if (!key.startsWith('tag.')) continue;
    const name = key.slice(4);
    const col = stream.columns.find((c) => c.name === name && c.role === 'tag');
    if (!col) {
      throw new AppError(400, 'invalid_request',
        `${key}: stream ${JSON.stringify(stream.name)} has no tag ${JSON.stringify(name)}; tags: ${stream.columns.filter((c) => c.role === 'tag').map((c) => JSON.stringify(c.name)).join(', ') || 'none'}`);
    }
    filters.set(col, values);
  }
  return filters;
}
