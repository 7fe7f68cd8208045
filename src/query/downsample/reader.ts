// Aggregated queries: resolution=<level>|<interval>|auto|lttb. The range is cut into parts by
// which source can serve them exactly — the coarsest rollup level that is materialised, clean
// (no pending invalidation) and whose buckets fit wholly inside the query's buckets, then finer
// levels, then the raw rows for whatever is left (above the watermarks, invalidated, or at edges
// that do not align). Partial aggregates of every part are combined in one SQL statement, so
// the answer is always complete, and the response says which source served which part.
import type { Db, PoolClient } from '../../db/pool.ts';
import { ident } from '../../db/sql.ts';
import { floorDiv, formatInterval, parseInterval } from '../../domain/interval.ts';
import { formatMicros, pgTimestamp } from '../../domain/time.ts';
import type { StreamColumn } from '../../domain/types.ts';
import { AppError } from '../../errors/index.ts';
import { type Stream, streamTable } from '../../streams/catalog.ts';
import { type RollupField, holdsNaN, micros, partsFromLevel, partsFromParts, partsFromRaw, rollupFields } from '../../rollups/layout.ts';
import { type Level, levelTable, loadLevels } from '../../rollups/levels.ts';
import { type NanMode, parseNanMode, parseTimeParam, selectColumns, tagFilters } from '../params.ts';
import { type QueryPlan, type QueryRequest, one } from '../run-query.ts';
import type { Cell, ResultColumn } from '../result-formats.ts';
import { type OutputColumn, averageColumn, outputColumns, parseAggs } from './aggregates.ts';
import { FILL_MODES, type FillMode, fillGaps } from './fill.ts';
import { lttb } from './lttb.ts';
import { FAR_PAST, type Range, intersect, normalise, subtract } from '../../domain/ranges.ts';

function bad(message: string): AppError {
  return new AppError(400, 'invalid_request', message);
}

const MAX_BUCKETS = 1_000_000;
const DAY_US = 86_400_000_000n;
const WEEK_US = 7n * DAY_US;
/** Most points LTTB reads per series. */
const LTTB_MAX_INPUT = 500_000;

/** How query buckets are formed. */
interface Bucketing {
  kind: 'fixed' | 'calendar' | 'auto';
  /** Bucket width (calendar: nominal days or weeks). */
  widthUs: bigint;
  /** SQL for a row's bucket start (timestamptz) from its time expression (rows of a level: its interval). */
  expr(time: string, params: unknown[], levelUs?: bigint): string;
  /** Whether rows of a level of this width can be assigned to query buckets whole. */
  fits(levelUs: bigint): boolean;
  /** Bucket starts over the range (for fill), ascending. */
  starts: bigint[] | null;
  describe: Record<string, unknown>;
}

function param(params: unknown[], value: unknown): string {
  params.push(value);
  return `$${params.length}`;
}

const intervalSql = (us: bigint): string => `'${us} microseconds'::interval`;

function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return /^[A-Za-z0-9_+\-/]{1,64}$/.test(tz);
  } catch {
    return false;
  }
}

async function calendarStarts(client: PoolClient, from: bigint, to: bigint, tz: string, stepDays: bigint, origin: string): Promise<bigint[]> {
  const { rows } = await client.query<{ b: string }>(
    `SELECT ${micros('(g AT TIME ZONE $3)')}::text AS b
       FROM generate_series(date_bin(${intervalSql(stepDays * DAY_US)}, $1::timestamptz AT TIME ZONE $3, $4::timestamp),
                            $2::timestamptz AT TIME ZONE $3, ${intervalSql(stepDays * DAY_US)}) g
      WHERE g AT TIME ZONE $3 < $2::timestamptz`,
    [pgTimestamp(from), pgTimestamp(to), tz, origin]);
  return rows.map((r) => BigInt(r.b));
}

function fixedStarts(from: bigint, to: bigint, w: bigint, origin: bigint): bigint[] {
  const out: bigint[] = [];
  for (let b = origin + floorDiv(from - origin, w) * w; b < to; b += w) out.push(b);
  return out;
}

async function bucketing(client: PoolClient, resolution: string, from: bigint, to: bigint, tz: string | undefined, maxPoints: number, levels: readonly Level[]): Promise<{ b: Bucketing; autoLevel: Level | null }> {
  if (resolution === 'auto') {
    const span = to - from;
    let w = span / BigInt(maxPoints);
    if (w < 1n) w = 1n;
    const coarsest = [...levels].reverse().find((l) => span / l.intervalUs >= BigInt(maxPoints)) ?? null;
    const L = coarsest?.intervalUs ?? 1n;
    const last = from + BigInt(maxPoints - 1) * w;
    return {
      autoLevel: coarsest,
      b: {
        kind: 'auto', widthUs: w,
        expr: (time, params, levelUs) => {
          // Rows of the auto level are at its bucket starts already.
          const inner = coarsest && levelUs !== L ? `date_bin(${intervalSql(L)}, ${time}, '1970-01-01 00:00:00+00'::timestamptz)` : time;
          const f = `${param(params, pgTimestamp(from))}::timestamptz`;
          return `LEAST(GREATEST(date_bin(${intervalSql(w)}, ${inner}, ${f}), ${f}), ${param(params, pgTimestamp(last))}::timestamptz)`;
        },
        fits: (us) => coarsest !== null && L % us === 0n,
        starts: Array.from({ length: maxPoints }, (_, k) => from + BigInt(k) * w),
        describe: { bucket: formatInterval(w), buckets: maxPoints, ...(coarsest ? { level: coarsest.name } : {}) },
      },
    };
  }
  const w = parseInterval(resolution);
  if (w === null) {
    throw bad(`resolution=${JSON.stringify(resolution)}: use raw, auto, lttb, a rollup level (${levels.map((l) => l.name).join(', ') || 'none configured'}) or an interval such as 15s, 5m, 1h or 1d`);
  }
  if (tz !== undefined && w % DAY_US === 0n) {
    const weeks = w % WEEK_US === 0n;
    const stepDays = w / DAY_US;
    const origin = weeks ? '2000-01-03 00:00:00' : '1970-01-01 00:00:00';
    const starts = await calendarStarts(client, from, to, tz, stepDays, origin);
    if (starts.length > MAX_BUCKETS) throw tooMany(starts.length);
    return {
      autoLevel: null,
      b: {
        kind: 'calendar', widthUs: w,
        expr: (time, params) => {
          const zone = `${param(params, tz)}::text`;
          return `(date_bin(${intervalSql(w)}, ${time} AT TIME ZONE ${zone}, '${origin}'::timestamp) AT TIME ZONE ${zone})`;
        },
        fits: (us) => starts.every((s) => s % us === 0n) && (starts.length < 2 || (starts[1] - starts[0]) % us === 0n),
        starts,
        describe: { bucket: formatInterval(w), tz, aligned: weeks ? 'local midnight, Mondays' : 'local midnight' },
      },
    };
  }
  const count = (to - from) / w + 2n;
  if (count > BigInt(MAX_BUCKETS)) throw tooMany(Number(count));
  return {
    autoLevel: null,
    b: {
      kind: 'fixed', widthUs: w,
      expr: (time) => `date_bin(${intervalSql(w)}, ${time}, '1970-01-01 00:00:00+00'::timestamptz)`,
      fits: (us) => w % us === 0n,
      starts: fixedStarts(from, to, w, 0n),
      describe: { bucket: formatInterval(w), ...(tz !== undefined ? { tz, note: 'buckets shorter than a day are aligned to UTC' } : {}) },
    },
  };
}

function tooMany(n: number): AppError {
  return bad(`the range would have ${n} buckets; at most ${MAX_BUCKETS} are answered — choose a coarser resolution or a shorter range`);
}

/** Per level: the ranges it can serve (materialised, not invalidated, not dropped by retention). */
async function cleanRanges(client: PoolClient, stream: Stream, level: Level, from: bigint, to: bigint): Promise<Range[]> {
  if (level.watermarkUs === null) return [];
  const { rows } = await client.query<{ s: string; e: string }>(
    `SELECT ${micros('range_start')}::text AS s, ${micros('range_end')}::text AS e FROM strata.rollup_invalidations
      WHERE stream_id = $1 AND level = $2 AND range_start < $4::timestamptz AND range_end > $3::timestamptz
     UNION ALL
     SELECT ${micros('range_start')}::text, ${micros('range_end')}::text FROM strata.chunks
      WHERE stream_id = $1 AND level = $2 AND state = 'dropped' AND range_start < $4::timestamptz AND range_end > $3::timestamptz`,
    [stream.id, level.name, pgTimestamp(from), pgTimestamp(to)]);
  const dirty = normalise(rows.map((r) => ({ start: BigInt(r.s), end: BigInt(r.e) })));
  return subtract([{ start: FAR_PAST, end: level.watermarkUs }], dirty);
}

interface Part { source: Level | null; ranges: Range[] }

/** Cuts [from, to) into the parts each source serves, coarsest level first, raw last. */
async function planParts(client: PoolClient, stream: Stream, levels: readonly Level[], b: Bucketing, from: bigint, to: bigint): Promise<Part[]> {
  let rest: Range[] = [{ start: from, end: to }];
  const parts: Part[] = [];
  for (const level of [...levels].reverse()) {
    if (rest.length === 0) break;
    if (!b.fits(level.intervalUs)) continue;
    const L = level.intervalUs;
    const interior = { start: (floorDiv(from - 1n, L) + 1n) * L, end: floorDiv(to, L) * L };
    if (interior.start >= interior.end) continue;
    const served = intersect(intersect(rest, [interior]), await cleanRanges(client, stream, level, from, to));
    if (served.length === 0) continue;
    parts.push({ source: level, ranges: served });
    rest = subtract(rest, served);
  }
  if (rest.length > 0) parts.push({ source: null, ranges: rest });
  return parts;
}

function rangePredicate(alias: string, ranges: readonly Range[], params: unknown[]): string {
  return `(${ranges.map((r) => `(${alias}."time" >= ${param(params, pgTimestamp(r.start))}::timestamptz AND ${alias}."time" < ${param(params, pgTimestamp(r.end))}::timestamptz)`).join(' OR ')})`;
}

function tagPredicate(alias: string, tags: Map<StreamColumn, string[]>, params: unknown[]): string[] {
  return [...tags].map(([col, values]) => `${alias}.${ident(col.columnName)} = ANY(${param(params, values)}::text[])`);
}

interface Shape {
  stream: Stream;
  from: bigint;
  to: bigint;
  fields: RollupField[];
  tags: Map<StreamColumn, string[]>;
  groupBy: StreamColumn | null;
  explicitFields: boolean;
}

function parseShape(stream: Stream, q: Record<string, string[]>, nowUs: bigint): Shape {
  const from = parseTimeParam('from', one(q, 'from'));
  if (from === null) throw bad('from is required for aggregated queries (e.g. from=2024-03-01T00:00:00Z); to defaults to now');
  const to = parseTimeParam('to', one(q, 'to')) ?? nowUs;
  if (to <= from) throw bad('`to` must be after `from`');
  const fieldsParam = one(q, 'fields');
  const chosen = selectColumns(stream, fieldsParam);
  const explicitFields = fieldsParam !== undefined && fieldsParam.trim() !== '';
  if (explicitFields) {
    const tag = chosen.find((c) => c.role === 'tag');
    if (tag) throw bad(`fields: ${JSON.stringify(tag.name)} is a tag; aggregate fields, and group by tags with group_by=${tag.name}`);
  }
  const names = new Set(chosen.map((c) => c.name));
  const fields = rollupFields(stream).filter((f) => names.has(f.column.name));
  if (fields.length === 0) throw bad(`stream ${JSON.stringify(stream.name)} has no fields to aggregate`);
  const g = one(q, 'group_by');
  let groupBy: StreamColumn | null = null;
  if (g !== undefined) {
    groupBy = stream.columns.find((c) => c.name === g && c.role === 'tag') ?? null;
    if (!groupBy) throw bad(`group_by=${JSON.stringify(g)}: stream ${JSON.stringify(stream.name)} has no tag of that name; tags: ${stream.columns.filter((c) => c.role === 'tag').map((c) => JSON.stringify(c.name)).join(', ') || 'none'}`);
  }
  return { stream, from, to, fields, tags: tagFilters(stream, q), groupBy, explicitFields };
}

function parseMaxPoints(value: string | undefined, required: boolean): number {
  if (value === undefined) {
    if (required) return 1000;
    return 0;
  }
  const n = Number(value);
  if (!Number.isInteger(n) || n < 2 || n > 100_000) throw bad('max_points must be an integer from 2 to 100000');
  return n;
}

/** The aggregate SQL over the planned parts; rows: [bucket µs, (group,) ...outputs]. */
function aggregateSql(shape: Shape, b: Bucketing, parts: readonly Part[], outputs: readonly OutputColumn[], params: unknown[]): string {
  const g = shape.groupBy ? ident(shape.groupBy.columnName) : null;
  // Only the parts the outputs read (an average needs count and sum, not the arrays of min …).
  const needed = new Set([...outputs.map((o) => o.sql).join(' ').matchAll(/c\."(c\d+_[a-z]+)"/g)].map((m) => m[1]));
  const selects = parts.map((p) => {
    const alias = p.source ? 'l' : 'r';
    const table = p.source ? levelTable(p.source) : streamTable(shape.stream);
    // Without tag filter or group_by, a level's combined rows (one per bucket) answer.
    const combinedRows = shape.tags.size === 0 && !g;
    const where = [rangePredicate(alias, p.ranges, params), ...(p.source ? [combinedRows ? 'l.all_tags' : 'NOT l.all_tags'] : []), ...tagPredicate(alias, shape.tags, params)];
    const parts = (p.source ? partsFromLevel(shape.fields, needed) : partsFromRaw(shape.fields, needed)).filter((s) => !s.endsWith('AS src_rows'));
    return `SELECT ${b.expr(`${alias}."time"`, params, p.source?.intervalUs)} AS b${g ? `, ${alias}.${g} AS g` : ''}, ${parts.join(', ')}
      FROM ${table} ${alias} WHERE ${where.join(' AND ')} GROUP BY 1${g ? ', 2' : ''}`;
  });
  const combined = `SELECT p.b${g ? ', p.g' : ''}, ${partsFromParts(shape.fields, needed).join(', ')} FROM (${selects.join('\nUNION ALL\n')}) p GROUP BY p.b${g ? ', p.g' : ''}`;
  return `SELECT ${micros('c.b')}::text AS b_us${g ? ', c.g AS g' : ''}, ${outputs.map((o, i) => `${o.sql} AS o${i}`).join(', ')} FROM (${combined}) c ORDER BY ${g ? 'c.g, ' : ''}c.b`;
}

async function readAll(client: PoolClient, sql: string, params: unknown[]): Promise<Cell[][]> {
  const res = await client.query({ text: sql, values: params, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
  return res.rows as Cell[][];
}

function describeParts(parts: readonly Part[]): Record<string, unknown>[] {
  return parts.map((p) => ({ source: p.source?.name ?? 'raw', ranges: p.ranges.map((r) => ({ from: formatMicros(r.start), to: formatMicros(r.end) })) }));
}

function watermarks(levels: readonly Level[]): Record<string, string | null> {
  return Object.fromEntries(levels.map((l) => [l.name, l.watermarkUs === null ? null : formatMicros(l.watermarkUs)]));
}

async function* once(rows: Cell[][]): AsyncGenerator<Cell[][]> {
  for (let i = 0; i < rows.length; i += 5000) yield rows.slice(i, i + 5000);
}

/** LTTB: the finest source whose points over the range fit, then N points per series. */
async function lttbPlan(client: PoolClient, shape: Shape, levels: readonly Level[], maxPoints: number, q: Record<string, string[]>, nanMode: NanMode): Promise<QueryPlan> {
  const numeric = shape.fields.filter((f) => (f.kind === 'number' || f.kind === 'int8') && f.column.type !== 'timestamptz');
  if (numeric.length !== 1) {
    throw bad(`resolution=lttb picks points of one numeric field: name it with fields= (${numeric.map((f) => JSON.stringify(f.column.name)).join(', ') || 'this stream has none'})`);
  }
  if (one(q, 'agg') !== undefined || (one(q, 'fill') ?? 'none') !== 'none') throw bad('resolution=lttb returns points, not aggregates: leave out agg and fill');
  const f = numeric[0];
  const params: unknown[] = [];
  const span = shape.to - shape.from;
  const g = shape.groupBy ? ident(shape.groupBy.columnName) : null;
  // Raw rows when there are few enough; else the finest level with few enough buckets.
  const rawCount = await client.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM (SELECT 1 FROM ${streamTable(shape.stream)} r WHERE ${rangePredicate('r', [{ start: shape.from, end: shape.to }], params)}
       ${tagPredicate('r', shape.tags, params).map((p) => `AND ${p}`).join(' ')} LIMIT ${LTTB_MAX_INPUT + 1}) x`, params);
  let level: Level | null = null;
  if (Number(rawCount.rows[0].n) > LTTB_MAX_INPUT) {
    level = levels.find((l) => span / l.intervalUs <= BigInt(LTTB_MAX_INPUT)) ?? levels[levels.length - 1] ?? null;
  }
  let sql: string;
  const p2: unknown[] = [];
  const col = ident(f.column.columnName);
  if (level === null) {
    const used = holdsNaN(f) && nanMode === 'skip' ? `r.${col} <> 'NaN'` : `r.${col} IS NOT NULL`;
    const where = [rangePredicate('r', [{ start: shape.from, end: shape.to }], p2), ...tagPredicate('r', shape.tags, p2), used];
    sql = `SELECT ${micros('r."time"')}::text${g ? `, r.${g}` : ''}, r.${col}::float8::text FROM ${streamTable(shape.stream)} r WHERE ${where.join(' AND ')} ORDER BY ${g ? `r.${g}, ` : ''}r."time"`;
  } else {
    // A level's point per bucket is its average, combined over tag sets, at the bucket start.
    const L = level.intervalUs;
    const b: Bucketing = { kind: 'fixed', widthUs: L, expr: (t) => `date_bin(${intervalSql(L)}, ${t}, '1970-01-01 00:00:00+00'::timestamptz)`, fits: (us) => us === L, starts: null, describe: {} };
    const parts = await planParts(client, shape.stream, [level], b, shape.from, shape.to);
    sql = `SELECT * FROM (${aggregateSql({ ...shape, fields: [f] }, b, parts, [averageColumn(f, nanMode)], p2)}) x WHERE x.o0 IS NOT NULL ORDER BY ${g ? 'x.g, ' : ''}x.b_us::bigint`;
  }
  const rows = await readAll(client, sql, p2);
  const picked: Cell[][] = [];
  for (let i = 0; i < rows.length;) {
    let j = i;
    while (j < rows.length && (!g || rows[j][1] === rows[i][1])) j++;
    const slice = rows.slice(i, j);
    const vi = g ? 2 : 1;
    const xs = Float64Array.from(slice, (r) => Number(r[0]));
    const ys = Float64Array.from(slice, (r) => Number(r[vi]));
    for (const k of lttb(xs, ys, maxPoints)) picked.push(slice[k]);
    i = j;
  }
  const columns: ResultColumn[] = [{ name: 'time', type: 'time' }, ...(shape.groupBy ? [{ name: shape.groupBy.name, type: 'text' as const }] : []), { name: f.column.name, type: 'float8' }];
  const served = level ? [{ source: level.name, note: 'bucket averages' }] : [{ source: 'raw' }];
  return {
    columns, pages: once(picked),
    meta: { stream: shape.stream.name, resolution: 'lttb', from: formatMicros(shape.from), to: formatMicros(shape.to), max_points: maxPoints, nan: nanMode, source: level?.name ?? 'raw', served },
    headers: { 'strata-served-by': level?.name ?? 'raw' },
  };
}

export async function readAggregates(db: Db, stream: Stream, req: QueryRequest, resolution: string): Promise<QueryPlan> {
  const q = req.query;
  const shape = parseShape(stream, q, BigInt(Date.now()) * 1000n);
  const tz = one(q, 'tz');
  if (tz !== undefined && !validZone(tz)) throw bad(`tz=${JSON.stringify(tz)} is not an IANA time zone such as Europe/Berlin or UTC`);
  const fillText = one(q, 'fill') ?? 'none';
  if (!(FILL_MODES as readonly string[]).includes(fillText)) throw bad(`fill=${JSON.stringify(fillText)}: use ${FILL_MODES.join(', ')}`);
  const fill = fillText as FillMode;
  const nanMode = parseNanMode(one(q, 'nan'));
  const maxPoints = parseMaxPoints(one(q, 'max_points'), resolution === 'auto' || resolution === 'lttb');
  if (maxPoints > 0 && resolution !== 'auto' && resolution !== 'lttb') throw bad('max_points applies to resolution=auto and resolution=lttb');

  const client = await db.pool.connect();
  try {
    // Aggregations over many level rows gain from hash aggregation in memory and from the other
    // cores; the planner still decides, with these costs, whether to use them. Compiling the
    // expressions (JIT) costs more than these queries take. One round trip for all of it.
    await client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
      SET LOCAL work_mem = '64MB'; SET LOCAL parallel_setup_cost = 100;
      SET LOCAL min_parallel_table_scan_size = '512kB'; SET LOCAL jit = off`);
    const levels = await loadLevels(client, stream.id);
    if (resolution === 'lttb') {
      const plan = await lttbPlan(client, shape, levels, maxPoints, q, nanMode);
      await client.query('COMMIT');
      return plan;
    }
    const aggs = parseAggs(one(q, 'agg'));
    const outputs = outputColumns(shape.fields, aggs, shape.explicitFields, nanMode);
    const { b, autoLevel } = await bucketing(client, resolution, shape.from, shape.to, tz, maxPoints, levels);
    // M4's min and max points need their times, which the levels do not keep: raw rows serve it.
    const parts = await planParts(client, stream, aggs.includes('m4') ? [] : levels, b, shape.from, shape.to);
    const params: unknown[] = [];
    const sql = aggregateSql(shape, b, parts, outputs, params);
    let rows = await readAll(client, sql, params);
    await client.query('COMMIT');
    const keyColumns = shape.groupBy ? 2 : 1;
    if (fill !== 'none') rows = fillGaps(rows, b.starts ?? [], keyColumns, outputs.map((o) => o.fill), fill);
    const columns: ResultColumn[] = [
      { name: 'time', type: 'time' },
      ...(shape.groupBy ? [{ name: shape.groupBy.name, type: 'text' as const }] : []),
      ...outputs.map((o) => ({ name: o.name, type: fill === 'linear' && o.fill === 'number' && o.type !== 'float8' ? 'float8' as const : o.type })),
    ];
    const served = describeParts(parts);
    return {
      columns, pages: once(rows),
      meta: {
        stream: stream.name, resolution, ...b.describe, from: formatMicros(shape.from), to: formatMicros(shape.to),
        agg: aggs, fill, nan: nanMode, ...(shape.groupBy ? { group_by: shape.groupBy.name } : {}),
        ...(autoLevel === null && resolution === 'auto' ? { level: 'raw' } : {}),
        served, watermarks: watermarks(levels),
      },
      headers: { 'strata-served-by': parts.map((p) => p.source?.name ?? 'raw').join(', ') },
    };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw mapPgError(err);
  } finally {
    client.release();
  }
}

function mapPgError(err: unknown): unknown {
  const code = (err as { code?: string }).code;
  if (code === '22023' || code === '22009') return bad(`the query could not be answered: ${(err as Error).message}`);
  return err;
}
