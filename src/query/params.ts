// Query-string parameters shared by the query endpoints: time range, fields, tag filters, format.
import { AppError } from '../errors/index.ts';
import { parseInterval } from '../domain/interval.ts';
import { parseInstant } from '../domain/time.ts';
import type { StreamColumn } from '../domain/types.ts';
import type { Stream } from '../streams/catalog.ts';

export type OutputFormat = 'json' | 'csv' | 'arrow' | 'parquet';

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
  if (/^[+-]?\d{4,6}-\d{2}-\d{2}$/.test(value.trim())) {
    // A date alone does not say whose midnight it means (UTC, the query's tz, the lab's).
    throw new AppError(400, 'invalid_request',
      `${name}=${value}: a date alone is ambiguous; give an instant with a zone, e.g. ${value.trim()}T00:00:00Z or ${value.trim()}T00:00:00+01:00`);
  }
  const parsed = parseInstant(value);
  if (!parsed) throw new AppError(400, 'invalid_request', `${name}=${JSON.stringify(value)} is not an RFC 3339 instant with a time zone (e.g. 2024-03-01T00:00:00Z)`);
  return parsed.us;
}

export function parseFormat(value: string | undefined, accept: string | undefined): OutputFormat {
  const v = value ?? (accept?.includes('text/csv') ? 'csv' : accept?.includes('application/vnd.apache.arrow.stream') ? 'arrow'
    : accept?.includes('application/vnd.apache.parquet') ? 'parquet' : 'json');
  if (v !== 'json' && v !== 'csv' && v !== 'arrow' && v !== 'parquet') {
    throw new AppError(400, 'invalid_request', `format=${JSON.stringify(v)}: use json, csv, arrow or parquet`);
  }
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

/** A query's resolution: stored rows, a bucketing rule, or fixed-width or calendar buckets. */
export type Resolution =
  | { kind: 'raw' }
  | { kind: 'auto' }
  | { kind: 'lttb' }
  | { kind: 'fixed'; us: bigint }
  | { kind: 'calendar'; months: number };

const CALENDAR = /^(\d{1,4})\s*(mo|mon|month|months|y|yr|year|years)$/;

/**
 * Parses `resolution=`: raw, auto, lttb, a fixed interval (`15s`, `5min`, `1h`, `2d`, `1w`) or
 * calendar months and years (`1mo`, `3mo`, `1y`). `M` alone is refused: pandas reads it as a
 * month, other tools as a minute. Null when it is none of these (the caller names the choices).
 */
export function parseResolution(text: string): Resolution | null {
  const t = text.trim();
  if (t === 'raw' || t === 'auto' || t === 'lttb') return { kind: t };
  if (/^\d*\s*M$/.test(t)) {
    const n = t.slice(0, -1).trim() || '1';
    throw new AppError(400, 'invalid_request', `resolution=${JSON.stringify(text)} is ambiguous: write ${n}mo for calendar months or ${n}min for minutes`);
  }
  const cal = CALENDAR.exec(t.toLowerCase());
  if (cal) {
    const n = Number(cal[1]);
    const months = cal[2].startsWith('y') ? n * 12 : n;
    if (n < 1 || (months < 12 && 12 % months !== 0) || (months >= 12 && months % 12 !== 0)) {
      throw new AppError(400, 'invalid_request', `resolution=${JSON.stringify(text)}: calendar buckets are 1, 2, 3, 4 or 6 months (1mo, 3mo for quarters) or whole years (1y)`);
    }
    return { kind: 'calendar', months };
  }
  const us = parseInterval(t);
  return us === null ? null : { kind: 'fixed', us };
}
