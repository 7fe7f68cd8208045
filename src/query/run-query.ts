// A query request end to end: parameters → the right reader (raw rows here; rollup levels and
// ad-hoc resolutions where registered) → the chosen output format, streamed.
import type { Db } from '../db/pool.ts';
import { AppError } from '../errors/index.ts';
import { requireStream, type Stream } from '../streams/catalog.ts';
import { FAR_PAST, intersect } from '../domain/ranges.ts';
import { MAX_TIMESTAMP_US } from '../domain/time.ts';
import { coverageOf, describeGaps, rangesHeader } from './coverage.ts';
import { parseFormat, parseNanMode, parseTimeParam, selectColumns, tagFilters, type OutputFormat } from './params.ts';
import { rawBatches, rawColumns } from './raw.ts';
import { rawCsvFromCopy } from './csv-copy.ts';
import { type Cell, type ResultColumn, arrowFormatter, formatterFor } from './result-formats.ts';
import { arrowBatchFormatter, csvBatchFormatter, jsonBatchFormatter, schemaMetadata, type BatchFormatter } from './batch-formats.ts';
import { parquetFromArrow } from './parquet-output.ts';
import type { ColumnBatch } from '../domain/types.ts';

export interface QueryRequest {
  streamName: string;
  /** Every query-string parameter, each with all its values. */
  query: Record<string, string[]>;
  accept?: string;
}

export interface QueryPlan {
  columns: ResultColumn[];
  /** The rows: pages of text cells (aggregates), or column batches (raw rows). */
  pages?: AsyncGenerator<Cell[][]>;
  batches?: AsyncGenerator<ColumnBatch>;
  /** Raw rows as CSV made by PostgreSQL (csv-copy.ts), taken instead of batches for format=csv. */
  csvRows?: (fallback: () => AsyncGenerator<Uint8Array>) => AsyncGenerator<Uint8Array>;
  meta: Record<string, unknown>;
  /** Response headers beside the content type (e.g. which sources served the answer). */
  headers?: Record<string, string>;
  /** Filled in while pages are read (e.g. which level served which range). */
  trailer?: () => Record<string, unknown>;
}

/** Readers for resolutions other than raw, registered by the rollups module. */
export type ResolutionReader = (db: Db, stream: Stream, q: QueryRequest, resolution: string) => Promise<QueryPlan>;
let resolutionReader: ResolutionReader | null = null;

export function registerResolutionReader(reader: ResolutionReader): void {
  resolutionReader = reader;
}

export const one = (q: Record<string, string[]>, name: string): string | undefined => {
  const v = q[name];
  if (!v || v.length === 0) return undefined;
  if (v.length > 1) throw new AppError(400, 'invalid_request', `${name} is given ${v.length} times; give it once`);
  return v[0];
};

export async function planQuery(db: Db, req: QueryRequest): Promise<{ plan: QueryPlan; format: OutputFormat }> {
  const stream = await requireStream(db.pool, req.streamName);
  const format = parseFormat(one(req.query, 'format'), req.accept);
  const resolution = one(req.query, 'resolution') ?? 'raw';
  if (resolution !== 'raw') {
    if (!resolutionReader) throw new AppError(400, 'invalid_request', `resolution=${JSON.stringify(resolution)}: this server serves raw rows only`);
    return { plan: await resolutionReader(db, stream, req, resolution), format };
  }
  // Raw rows are returned as stored; nan= is checked, and says nothing to them.
  parseNanMode(one(req.query, 'nan'));
  const from = parseTimeParam('from', one(req.query, 'from'));
  const to = parseTimeParam('to', one(req.query, 'to'));
  if (from !== null && to !== null && to <= from) throw new AppError(400, 'invalid_request', '`to` must be after `from`');
  const limitText = one(req.query, 'limit');
  const limit = limitText === undefined ? null : Number(limitText);
  if (limit !== null && (!Number.isSafeInteger(limit) || limit < 1)) {
    throw new AppError(400, 'invalid_request', `limit must be an integer from 1 to ${Number.MAX_SAFE_INTEGER}; got ${JSON.stringify(String(limitText).slice(0, 40))}`);
  }
  const raw = { stream, from, to, columns: selectColumns(stream, one(req.query, 'fields')), tags: tagFilters(stream, req.query), limit };
  // Raw rows retention dropped are declared, not silently left out (aggregated resolutions may still answer there).
  const { rawLost } = await coverageOf(db.pool, stream.id, [], from, to);
  const gaps = intersect(rawLost, [{ start: from ?? FAR_PAST, end: to ?? MAX_TIMESTAMP_US }]).map((g) => ({ ...g, heldBy: [] }));
  return {
    format,
    plan: {
      columns: rawColumns(raw), batches: rawBatches(db, raw), csvRows: (fallback) => rawCsvFromCopy(db, raw, fallback), meta: { stream: stream.name, resolution: 'raw', gaps: describeGaps(gaps) },
      ...(gaps.length > 0 ? { headers: { 'strata-gaps': rangesHeader(gaps) } } : {}),
    },
  };
}

function batchFormatterFor(format: OutputFormat): BatchFormatter {
  if (format === 'csv') return csvBatchFormatter();
  if (format === 'json') return jsonBatchFormatter();
  return arrowBatchFormatter();
}

/** The body in `format`, or for Parquet in Arrow (which parquetFromArrow then writes). */
async function* render(plan: QueryPlan, format: OutputFormat): AsyncGenerator<Uint8Array> {
  let rows = 0;
  if (plan.batches) {
    const f = batchFormatterFor(format);
    yield f.begin(plan.columns, plan.meta);
    if (format === 'csv' && plan.csvRows) {
      // CSV has no trailer: the rows are PostgreSQL's bytes, or the batches' when segments overlap.
      const batches = plan.batches;
      yield* plan.csvRows(async function* () { for await (const batch of batches) yield f.batch(batch); });
      return;
    }
    for await (const batch of plan.batches) {
      rows += batch.length;
      yield f.batch(batch);
    }
    yield f.end({ row_count: rows, ...(plan.trailer?.() ?? {}) });
    return;
  }
  const f = format === 'parquet' ? arrowFormatter() : formatterFor(format);
  yield f.begin(plan.columns, plan.meta);
  for await (const page of plan.pages ?? []) {
    rows += page.length;
    yield f.page(page);
  }
  yield f.end({ row_count: rows, ...(plan.trailer?.() ?? {}) });
}

/** The formatted response body, chunk by chunk. */
export function renderQuery(plan: QueryPlan, format: OutputFormat): AsyncGenerator<Uint8Array> {
  const body = render(plan, format);
  return format === 'parquet' ? parquetFromArrow(body, schemaMetadata(plan.meta), plan.columns.filter((c) => c.type === 'text').map((c) => c.name)) : body;
}

const CONTENT_TYPES: Record<OutputFormat, string> = {
  json: 'application/json', csv: 'text/csv; charset=utf-8', arrow: 'application/vnd.apache.arrow.stream', parquet: 'application/vnd.apache.parquet',
};

export function contentTypeOf(format: OutputFormat): string {
  return CONTENT_TYPES[format];
}
