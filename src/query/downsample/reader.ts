// Aggregated queries: resolution=<level>|<interval>|<calendar>|auto|lttb. The planner (plan.ts)
// cuts the range into parts by which source still holds them (coverage.ts): rollup levels whose
// buckets fit wholly inside the query's buckets, coarsest first, then the raw rows retention left,
// then — declared — coarser levels' whole buckets where finer data is gone, and gaps where nothing
// holds the data any more. Partial aggregates of every part are combined in one SQL statement in
// one snapshot, and the response says which source served which part and what is missing.
import type { Db, PoolClient } from '../../db/pool.ts';
import { ident } from '../../db/sql.ts';
import { formatMicros, pgTimestamp } from '../../domain/time.ts';
import type { StreamColumn } from '../../domain/types.ts';
import { type Stream, streamTable } from '../../streams/catalog.ts';
import { type RawSource, countCompressed, lockRawRows, rawSource } from '../../compression/read.ts';
import { type RollupField, holdsNaN, micros, partsFromLevel, partsFromParts, partsFromRaw, rollupFields } from '../../rollups/layout.ts';
import { type Level, levelTable, loadLevels } from '../../rollups/levels.ts';
import { type NanMode, parseNanMode, parseResolution, parseTimeParam, selectColumns, tagFilters } from '../params.ts';
import { type QueryPlan, type QueryRequest, one } from '../run-query.ts';
import type { Cell, ResultColumn } from '../result-formats.ts';
import { type OutputColumn, averageColumn, outputColumns, parseAggs } from './aggregates.ts';
import { FILL_MODES, type FillMode, fillGaps } from './fill.ts';
import { lttb } from './lttb.ts';
import type { Range } from '../../domain/ranges.ts';
import { type Coverage, coverageOf, describeGaps, rangesHeader } from '../coverage.ts';
import { type Bucketing, bad, bucketing, levelPoints, param, validZone } from './bucketing.ts';
import { type Part, type Plan, coarsenedRanges, describeParts, planParts } from './plan.ts';

/** Most points LTTB reads per series. */
const LTTB_MAX_INPUT = 500_000;

/** Ranges a few at a time as OR-ed bounds; many as one multirange, within their hull (for the index). */
function rangePredicate(alias: string, ranges: readonly Range[], params: unknown[]): string {
  const t = `${alias}."time"`;
  const bound = (us: bigint): string => `${param(params, pgTimestamp(us))}::timestamptz`;
  if (ranges.length <= 8) return `(${ranges.map((r) => `(${t} >= ${bound(r.start)} AND ${t} < ${bound(r.end)})`).join(' OR ')})`;
  const multi = `{${ranges.map((r) => `["${pgTimestamp(r.start)}","${pgTimestamp(r.end)}")`).join(',')}}`;
  return `(${t} >= ${bound(ranges[0].start)} AND ${t} < ${bound(ranges[ranges.length - 1].end)} AND ${t} <@ ${param(params, multi)}::tstzmultirange)`;
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
  /** The raw rows, compressed ones included, once prepareRaw has run for the parts that read them. */
  raw?: RawSource;
}

/** Decodes the segments the raw parts of a plan read (none: the stream table alone serves). */
async function prepareRaw(client: PoolClient, shape: Shape, parts: readonly Part[]): Promise<void> {
  const ranges = parts.filter((p) => p.source === null).flatMap((p) => p.ranges);
  if (ranges.length === 0) return;
  const from = ranges.reduce((m, r) => (r.start < m ? r.start : m), ranges[0].start);
  const to = ranges.reduce((m, r) => (r.end > m ? r.end : m), ranges[0].end);
  shape.raw = await rawSource(client, shape.stream, { from, to, tags: shape.tags });
}

const rawTable = (shape: Shape, params: unknown[]): string => (shape.raw ? shape.raw.relation(params) : streamTable(shape.stream));

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

/**
 * Most level rows an aggregation reads without parallel workers. A plan served by the levels'
 * combined rows alone (no tag filter, no group_by) reads one row per level bucket: an `auto`
 * query for 1,000 points at most 60,000 of them with the default levels. Below this, starting
 * workers costs more than it saves — over 10 days of the 1m level (14,400 rows, 12 fields) the
 * statement took 45.7 ms with two workers and 34.9 ms without (test/bench/README.md,
 * "Compression") — and partial sums combined in the order the workers finish made float sums
 * and averages differ in the last digit from one request to the next; one process adds them in
 * the rows' order, the same answer every time.
 */
const SERIAL_LEVEL_ROWS = 100_000n;

/** Whether a query may read only the levels' combined rows (the plan decides whether it does). */
const combinedRowsOnly = (shape: Shape): boolean => shape.tags.size === 0 && shape.groupBy === null;

/** Whether a plan reads only the levels' combined rows (or nothing), and few enough of them to read in one process. */
function smallLevelRead(shape: Shape, parts: readonly Part[]): boolean {
  if (!combinedRowsOnly(shape)) return false;
  let rows = 0n;
  for (const p of parts) {
    if (p.source === null) return false;
    for (const r of p.ranges) rows += (r.end - r.start) / p.source.intervalUs + 1n;
  }
  return rows <= SERIAL_LEVEL_ROWS;
}

/** The aggregate SQL over the planned parts; rows: [bucket µs, (group,) ...outputs]. */
function aggregateSql(shape: Shape, b: Bucketing, parts: readonly Part[], outputs: readonly OutputColumn[], params: unknown[]): string {
  const g = shape.groupBy ? ident(shape.groupBy.columnName) : null;
  // Only the parts the outputs read (an average needs count and sum, not the arrays of min …).
  const needed = new Set([...outputs.map((o) => o.sql).join(' ').matchAll(/c\."(c\d+_[a-z]+)"/g)].map((m) => m[1]));
  // The rows a bucket combined: no output reads them (counts are the fields' own) unless no part is read at all.
  const keep = (s: string): boolean => !s.endsWith('AS src_rows') && (needed.size === 0 || !s.endsWith('AS "rows"'));
  const selects = parts.map((p) => {
    const alias = p.source ? 'l' : 'r';
    const table = p.source ? levelTable(p.source) : rawTable(shape, params);
    // Without tag filter or group_by, a level's combined rows (one per bucket) answer.
    const combinedRows = shape.tags.size === 0 && !g;
    const where = [rangePredicate(alias, p.ranges, params), ...(p.source ? [combinedRows ? 'l.all_tags' : 'NOT l.all_tags'] : []), ...tagPredicate(alias, shape.tags, params)];
    const parts = (p.source ? partsFromLevel(shape.fields, needed) : partsFromRaw(shape.fields, needed)).filter(keep);
    return `SELECT ${b.expr(`${alias}."time"`, params, p.source?.intervalUs)} AS b${g ? `, ${alias}.${g} AS g` : ''}, ${parts.join(', ')}
      FROM ${table} ${alias} WHERE ${where.join(' AND ')} GROUP BY 1${g ? ', 2' : ''}`;
  });
  // One part (the usual case: the auto level serves the whole range) is combined already: its
  // rows are one per bucket (and group), so a second aggregation would only copy them.
  const combined = selects.length === 1 ? selects[0]
    : `SELECT p.b${g ? ', p.g' : ''}, ${partsFromParts(shape.fields, needed).filter(keep).join(', ')} FROM (${selects.join('\nUNION ALL\n')}) p GROUP BY p.b${g ? ', p.g' : ''}`;
  // Ordered by the bucket's µs, not by the bucket itself: a sort on the grouping key would let the
  // planner sort every row read to group them (enable_sort = off cannot tell that sort from the
  // answer's), where hashing them and sorting only the buckets is cheaper (test/bench/README.md,
  // "Compression"). The order is the same.
  return `SELECT ${micros('c.b')}::text AS b_us${g ? ', c.g AS g' : ''}, ${outputs.map((o, i) => `${o.sql} AS o${i}`).join(', ')} FROM (${combined}) c ORDER BY ${g ? 'c.g, ' : ''}${micros('c.b')}`;
}

async function readAll(client: PoolClient, sql: string, params: unknown[]): Promise<Cell[][]> {
  const res = await client.query({ text: sql, values: params, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
  return res.rows as Cell[][];
}

function watermarks(levels: readonly Level[]): Record<string, string | null> {
  return Object.fromEntries(levels.map((l) => [l.name, l.watermarkUs === null ? null : formatMicros(l.watermarkUs)]));
}

async function* once(rows: Cell[][]): AsyncGenerator<Cell[][]> {
  for (let i = 0; i < rows.length; i += 5000) yield rows.slice(i, i + 5000);
}

/** What a plan declares: JSON members, and headers for every format. */
function declared(plan: Plan): { meta: Record<string, unknown>; headers: Record<string, string> } {
  const coarsened = coarsenedRanges(plan.parts);
  const headers: Record<string, string> = {
    // "none" when nothing holds any of the range any more (it is all gaps).
    'strata-served-by': [...new Set(plan.parts.map((p) => `${p.source?.name ?? 'raw'}${p.coarsened ? ' (coarsened)' : ''}`))].join(', ') || 'none',
  };
  if (plan.gaps.length > 0) headers['strata-gaps'] = rangesHeader(plan.gaps);
  if (coarsened.length > 0) headers['strata-coarsened'] = rangesHeader(coarsened);
  return { meta: { served: describeParts(plan.parts), gaps: describeGaps(plan.gaps) }, headers };
}

/** Rows [time µs, (group,) value] ordered by (group,) time. */
function byGroupAndTime(g: boolean): (a: Cell[], b: Cell[]) => number {
  return (a, b) => {
    if (g && a[1] !== b[1]) return (a[1] ?? '') < (b[1] ?? '') ? -1 : 1;
    const d = BigInt(a[0] as string) - BigInt(b[0] as string);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  };
}

/**
 * How many readings [from, to) held: those left, and those of dropped raw chunks, prorated by how
 * much of each chunk the range covers — so that retention does not change which source LTTB reads.
 */
async function readingsHeld(client: PoolClient, shape: Shape, cov: Coverage): Promise<number> {
  const params: unknown[] = [];
  const packed = await countCompressed(client, shape.stream, { from: shape.from, to: shape.to, tags: shape.tags });
  const left = await client.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM (SELECT 1 FROM ${streamTable(shape.stream)} r WHERE ${rangePredicate('r', [{ start: shape.from, end: shape.to }], params)}
       ${tagPredicate('r', shape.tags, params).map((p) => `AND ${p}`).join(' ')} LIMIT ${LTTB_MAX_INPUT + 1}) x`, params);
  let dropped = 0;
  for (const c of cov.rawLostChunks) {
    const s = c.start > shape.from ? c.start : shape.from;
    const e = c.end < shape.to ? c.end : shape.to;
    if (s < e) dropped += Math.ceil((c.rows ?? 0) * Number(e - s) / Number(c.end - c.start));
  }
  return Number(left.rows[0].n) + packed + dropped;
}

/**
 * LTTB: the finest source whose points over the range fit — the raw rows when the range held at
 * most LTTB_MAX_INPUT readings, else the finest level with at most that many buckets — then N
 * points per series. Where that source is gone, coarser levels' bucket averages stand in
 * (declared), and gaps are declared.
 */
async function lttbPlan(client: PoolClient, shape: Shape, levels: readonly Level[], cov: Coverage, maxPoints: number, q: Record<string, string[]>, nanMode: NanMode): Promise<QueryPlan> {
  const numeric = shape.fields.filter((f) => (f.kind === 'number' || f.kind === 'int8') && f.column.type !== 'timestamptz');
  if (numeric.length !== 1) {
    throw bad(`resolution=lttb picks points of one numeric field: name it with fields= (${numeric.map((f) => JSON.stringify(f.column.name)).join(', ') || 'this stream has none'})`);
  }
  if (one(q, 'agg') !== undefined || (one(q, 'fill') ?? 'none') !== 'none') throw bad('resolution=lttb returns points, not aggregates: leave out agg and fill');
  const f = numeric[0];
  const span = shape.to - shape.from;
  const g = shape.groupBy ? ident(shape.groupBy.columnName) : null;
  let level: Level | null = null;
  if (await readingsHeld(client, shape, cov) > LTTB_MAX_INPUT) {
    level = levels.find((l) => span / l.intervalUs <= BigInt(LTTB_MAX_INPUT)) ?? levels[levels.length - 1] ?? null;
  }
  // A level's point per bucket is its average, combined over tag sets, at the bucket start.
  const avg: OutputColumn = averageColumn(f, nanMode);
  const averages = async (b: Bucketing, parts: Part[]): Promise<Cell[][]> => {
    if (parts.length === 0) return [];
    const p: unknown[] = [];
    return readAll(client, `SELECT * FROM (${aggregateSql({ ...shape, fields: [f] }, b, parts, [avg], p)}) x WHERE x.o0 IS NOT NULL`, p);
  };
  let plan: Plan;
  let rows: Cell[][];
  if (level === null) {
    // Raw rows where they are left; where not, the finest level that holds the range.
    const atStart: Bucketing = { ...levelPoints(1n, shape.from, shape.to), expr: (t) => t, exact: () => null };
    plan = planParts(cov, atStart, { exactLevels: [], levels }, shape.from, shape.to);
    const raw = plan.parts.find((p) => p.source === null);
    rows = await averages(atStart, plan.parts.filter((p) => p.source !== null));
    if (raw) {
      await prepareRaw(client, shape, [raw]);
      const p2: unknown[] = [];
      const col = ident(f.column.columnName);
      const used = holdsNaN(f) && nanMode === 'skip' ? `r.${col} <> 'NaN'` : `r.${col} IS NOT NULL`;
      const where = [rangePredicate('r', raw.ranges, p2), ...tagPredicate('r', shape.tags, p2), used];
      rows.push(...await readAll(client, `SELECT ${micros('r."time"')}::text${g ? `, r.${g}` : ''}, r.${col}::float8::text FROM ${rawTable(shape, p2)} r WHERE ${where.join(' AND ')}`, p2));
    }
  } else {
    const b = levelPoints(level.intervalUs, shape.from, shape.to);
    plan = planParts(cov, b, { exactLevels: levels, levels }, shape.from, shape.to);
    rows = await averages(b, plan.parts);
  }
  rows.sort(byGroupAndTime(g !== null));
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
  const { meta, headers } = declared(plan);
  return {
    columns, pages: once(picked),
    meta: {
      stream: shape.stream.name, resolution: 'lttb', from: formatMicros(shape.from), to: formatMicros(shape.to), max_points: maxPoints, nan: nanMode,
      source: level?.name ?? 'raw', ...(level ? { points: `${level.name} bucket averages` } : {}), ...meta,
    },
    headers,
  };
}

/** The range whose coverage a plan reads: the query's, widened by the coarsest level's bucket on each side. */
function coverageSpan(levels: readonly Level[], from: bigint, to: bigint): [bigint, bigint] {
  const widest = levels.reduce((m, l) => (l.intervalUs > m ? l.intervalUs : m), 0n);
  return [from - widest, to + widest];
}

export async function readAggregates(db: Db, stream: Stream, req: QueryRequest, resolutionText: string): Promise<QueryPlan> {
  const q = req.query;
  const resolution = parseResolution(resolutionText);
  const shape = parseShape(stream, q, BigInt(Date.now()) * 1000n);
  const tz = one(q, 'tz');
  if (tz !== undefined && !validZone(tz)) throw bad(`tz=${JSON.stringify(tz)} is not an IANA time zone such as Europe/Berlin or UTC`);
  const fillText = one(q, 'fill') ?? 'none';
  if (!(FILL_MODES as readonly string[]).includes(fillText)) throw bad(`fill=${JSON.stringify(fillText)}: use ${FILL_MODES.join(', ')}`);
  const fill = fillText as FillMode;
  const nanMode = parseNanMode(one(q, 'nan'));
  const pointsRule = resolution?.kind === 'auto' || resolution?.kind === 'lttb';
  const maxPoints = parseMaxPoints(one(q, 'max_points'), pointsRule);
  if (maxPoints > 0 && !pointsRule) throw bad('max_points applies to resolution=auto and resolution=lttb');

  const client = await db.pool.connect();
  try {
    // Aggregations over many level rows gain from hash aggregation in memory and from the other
    // cores; the planner still decides, with these costs, whether to use them. Compiling the
    // expressions (JIT) costs more than these queries take. One round trip for all of it.
    // Grouping by the computed bucket (and tag) by hashing, not by sorting the rows first: level
    // chunks without statistics made the planner take a 9-day zoom's 130,000 level rows (ten
    // lines) for a few hundred and sort them — 0.56× the time without the sort
    // (test/bench/README.md, "Zoom query"). Sorts that the answer's order needs still run.
    // The stream table is locked before the snapshot is taken, so that a chunk's conversion to
    // segments is wholly before or wholly after this answer (compression/read.ts).
    // Without parallel workers where the plan may turn out to be a small level read (see
    // SERIAL_LEVEL_ROWS), so that the usual query needs no round trip more; undone below if not.
    const serial = resolution?.kind !== 'lttb' && combinedRowsOnly(shape);
    await client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
      SET LOCAL work_mem = '64MB'; SET LOCAL parallel_setup_cost = 100;
      SET LOCAL min_parallel_table_scan_size = '512kB'; SET LOCAL jit = off; SET LOCAL enable_sort = off;
      ${serial ? 'SET LOCAL max_parallel_workers_per_gather = 0;' : ''} ${lockRawRows(stream)}`);
    const levels = await loadLevels(client, stream.id);
    if (resolution === null || resolution.kind === 'raw') {
      throw bad(`resolution=${JSON.stringify(resolutionText)}: use raw, auto, lttb, a rollup level (${levels.map((l) => l.name).join(', ') || 'none configured'}), an interval such as 15s, 5min, 1h or 1d, or calendar buckets 1mo, 3mo or 1y`);
    }
    const cov = await coverageOf(client, stream.id, levels, ...coverageSpan(levels, shape.from, shape.to));
    if (resolution.kind === 'lttb') {
      const plan = await lttbPlan(client, shape, levels, cov, maxPoints, q, nanMode);
      await client.query('COMMIT');
      return plan;
    }
    const aggs = parseAggs(one(q, 'agg'));
    const outputs = outputColumns(shape.fields, aggs, shape.explicitFields, nanMode);
    const { b, autoLevel } = await bucketing(client, resolution, shape.from, shape.to, tz, maxPoints, levels);
    // M4's min and max points need their times, which the levels do not keep: raw rows serve it.
    const usable = aggs.includes('m4') ? [] : levels;
    const plan = planParts(cov, b, { exactLevels: usable, levels: usable }, shape.from, shape.to);
    if (serial && !smallLevelRead(shape, plan.parts)) await client.query('SET LOCAL max_parallel_workers_per_gather TO DEFAULT');
    await prepareRaw(client, shape, plan.parts);
    const params: unknown[] = [];
    const sql = aggregateSql(shape, b, plan.parts, outputs, params);
    let rows = plan.parts.length > 0 ? await readAll(client, sql, params) : [];
    await client.query('COMMIT');
    const keyColumns = shape.groupBy ? 2 : 1;
    if (fill !== 'none') rows = fillGaps(rows, b.starts ?? [], keyColumns, outputs.map((o) => o.fill), fill);
    const columns: ResultColumn[] = [
      { name: 'time', type: 'time' },
      ...(shape.groupBy ? [{ name: shape.groupBy.name, type: 'text' as const }] : []),
      ...outputs.map((o) => ({ name: o.name, type: fill === 'linear' && o.fill === 'number' && o.type !== 'float8' ? 'float8' as const : o.type })),
    ];
    const { meta, headers } = declared(plan);
    return {
      columns, pages: once(rows),
      meta: {
        stream: stream.name, resolution: resolutionText, ...b.describe, from: formatMicros(shape.from), to: formatMicros(shape.to),
        agg: aggs, fill, nan: nanMode, ...(shape.groupBy ? { group_by: shape.groupBy.name } : {}),
        ...(autoLevel === null && resolution.kind === 'auto' ? { level: 'raw' } : {}),
        ...meta, watermarks: watermarks(levels),
      },
      headers,
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
