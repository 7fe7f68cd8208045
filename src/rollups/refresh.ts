// The rollup refresh of one stream: levels finest first, each (1) recomputing its invalidated
// buckets, per tag set and range, and (2) advancing its watermark towards now − lag. Every range
// is its own short transaction; a coarser level is built from the next finer one wherever that
// level is materialised and clean over the range, else from the raw rows.
//
// Advancing takes the level's catalog row FOR UPDATE before reading: uploads read the rows FOR
// SHARE before they commit, so every upload is either committed before the step reads (and its
// rows are in the step) or commits after it and sees the new watermark (and records an
// invalidation). Recomputing invalidations needs no such lock: it deletes only the invalidations
// it read before it read the rows, so anything committed meanwhile stays invalidated.
import type { Db, PoolClient } from '../db/pool.ts';
import { subtract } from '../domain/ranges.ts';
import { withTransaction } from '../db/pool.ts';
import { withPause } from '../jobs/pause.ts';
import { DATA_SCHEMA, ident, qualified } from '../db/sql.ts';
import { floorDiv } from '../domain/interval.ts';
import { formatMicros, pgTimestamp } from '../domain/time.ts';
import { ensureChunks } from '../partitions/chunks.ts';
import type { Stream } from '../streams/catalog.ts';
import { lockRawRows, rawSource } from '../compression/read.ts';
import { findSegmentSummaries } from '../compression/store.ts';
import { FAST_ORDER_LIMIT_US, levelValuesFromParts, micros, partsFromLevel, partsFromRaw, partsFromRawParts, rollupFields, tagColumns } from './layout.ts';
import { droppedRawBuckets } from './dropped-buckets.ts';
import { invalidatedWithin, recordInvalidations } from './invalidation-log.ts';
import { type Level, REFRESH_LOCK_SPACE, levelTable, loadLevels } from './levels.ts';
import { deletePending, pendingSource, pendingSupported, restartPending } from './pending-table.ts';
import { segmentPartsSql, splitSegments } from './segment-parts.ts';
import type { TagValues } from './tag-sets.ts';

export interface RefreshRange {
  level: string;
  kind: 'advance' | 'invalidation';
  tags: TagValues | null;
  from: string;
  to: string;
  source: string;
  rowsRead: number;
  rowsWritten: number;
  /** Compressed segments read: answered from their statistics, and decoded (when any were read). */
  segments?: { summarised: number; decoded: number };
}

const segmentsRead = (r: Rebuilt): Pick<RefreshRange, 'segments'> =>
  (r.summarised + r.decoded > 0 ? { segments: { summarised: r.summarised, decoded: r.decoded } } : {});

export interface RefreshOptions {
  nowUs: bigint;
  lagUs: bigint;
  runId: number | null;
  maxNewChunks: number;
  signal?: AbortSignal;
  /** Advance no further than the bucket that holds this instant (retention's absorb). */
  untilUs?: bigint;
  /** After each range's transaction, pause for this percentage of the time it took (retention's absorb). */
  pausePercent?: number;
}

const ORIGIN = "'1970-01-01 00:00:00+00'::timestamptz";
const bucketOf = (intervalUs: bigint, expr: string): string => `date_bin('${intervalUs} microseconds'::interval, ${expr}, ${ORIGIN})`;

/** Chunk ranges (active) of a stream's raw table or a level, overlapping [from, to). */
async function sourceChunks(q: Db | PoolClient, streamId: number, level: string, from: bigint | null, to: bigint): Promise<{ start: bigint; end: bigint }[]> {
  const runner = 'pool' in q ? q.pool : q;
  const { rows } = await runner.query<{ s: string; e: string }>(
    `SELECT ${micros('range_start')}::text AS s, ${micros('range_end')}::text AS e
       FROM strata.chunks WHERE stream_id = $1 AND level = $2 AND state = 'active'
        AND ($3::timestamptz IS NULL OR range_end > $3::timestamptz) AND range_start < $4::timestamptz
      ORDER BY range_start`,
    [streamId, level, from === null ? null : pgTimestamp(from), pgTimestamp(to)]);
  return rows.map((r) => ({ start: BigInt(r.s), end: BigInt(r.e) }));
}

interface Source { name: string; level: Level | null }

/**
 * Where [from, to) of `level` can be built from: the next finer level when it is materialised and
 * clean there, otherwise the raw rows.
 */
async function chooseSource(tx: PoolClient, stream: Stream, finer: Level | null, from: bigint, to: bigint): Promise<Source> {
  if (finer === null) return { name: 'raw', level: null };
  const { rows } = await tx.query<{ w: string | null }>(
    `SELECT ${micros('watermark')}::text AS w FROM strata.rollup_levels WHERE stream_id = $1 AND level = $2`, [stream.id, finer.name]);
  const w = rows[0]?.w ?? null;
  if (w === null || BigInt(w) < to || await invalidatedWithin(tx, stream.id, finer.name, from, to)) return { name: 'raw', level: null };
  // Ranges of the finer level that retention dropped cannot serve.
  const dropped = await tx.query(
    `SELECT 1 FROM strata.chunks WHERE stream_id = $1 AND level = $2 AND state = 'dropped'
        AND range_start < $4::timestamptz AND range_end > $3::timestamptz LIMIT 1`,
    [stream.id, finer.name, pgTimestamp(from), pgTimestamp(to)]);
  if (dropped.rows.length > 0) return { name: 'raw', level: null };
  return { name: finer.name, level: finer };
}

function tagPredicates(stream: Stream, alias: string, values: TagValues | null, params: unknown[]): string[] {
  if (values === null) return [];
  return tagColumns(stream).map((c, i) => {
    params.push(values[i] ?? null);
    return `${alias}.${ident(c.columnName)} IS NOT DISTINCT FROM $${params.length}::text`;
  });
}

interface Rebuilt {
  read: number;
  written: number;
  /** Compressed segments read: from their statistics, decoded. */
  summarised: number;
  decoded: number;
}

/**
 * Deletes and rebuilds [from, to) of a level (one tag set, or all), then the combined rows of
 * those buckets; returns the rows per tag set read and written.
 */
async function rebuild(tx: PoolClient, stream: Stream, level: Level, source: Source, from: bigint, to: bigint, tags: TagValues | null): Promise<Rebuilt> {
  const fields = rollupFields(stream);
  const tagCols = tagColumns(stream).map((c) => ident(c.columnName));
  const table = levelTable(level);
  const delParams: unknown[] = [pgTimestamp(from), pgTimestamp(to)];
  const delWhere = ['"time" >= $1::timestamptz', '"time" < $2::timestamptz', 'NOT all_tags', ...tagPredicates(stream, table, tags, delParams)];
  await tx.query(`DELETE FROM ${table} WHERE ${delWhere.join(' AND ')}`, delParams);
  // A chunk filling up has no statistics yet, and the planner would scan all of it for a minute
  // of rows: read raw rows through the chunk's BRIN index.
  if (!source.level) await tx.query('SET LOCAL enable_seqscan = off');

  const params: unknown[] = [pgTimestamp(from), pgTimestamp(to)];
  const alias = source.level ? 'l' : 'r';
  // Segments of compressed chunks in the range: those inside one bucket from their statistics,
  // the others decoded and read beside the table's rows; the lock keeps a conversion wholly before
  // or after this read.
  if (!source.level) await tx.query(lockRawRows(stream));
  const segs = source.level ? { summarised: [], decoded: [] }
    : splitSegments(await findSegmentSummaries(tx, { streamId: stream.id, from, to }), stream, fields, level.intervalUs, from, to, tags);
  const sourceTable = source.level ? levelTable(source.level) : (await rawSource(tx, stream, { from, to }, segs.decoded)).relation(params);
  const where = [`${alias}."time" >= $1::timestamptz`, `${alias}."time" < $2::timestamptz`, ...(source.level ? ['NOT l.all_tags'] : []), ...tagPredicates(stream, alias, tags, params)];
  const fastOrder = !source.level && from > -FAST_ORDER_LIMIT_US && to < FAST_ORDER_LIMIT_US;
  const parts = source.level ? partsFromLevel(fields) : partsFromRaw(fields, undefined, fastOrder);
  const groupKeys = ['1', ...tagCols.map((_, i) => String(i + 2))];
  const { columns, values } = levelValuesFromParts(fields, fastOrder);
  const combined = levelValuesFromParts(fields);
  let partial = `SELECT ${bucketOf(level.intervalUs, `${alias}."time"`)} AS "time"${tagCols.map((c) => `, ${alias}.${c}`).join('')}, ${parts.join(', ')}
        FROM ${sourceTable} ${alias} WHERE ${where.join(' AND ')}
       GROUP BY ${groupKeys.join(', ')}`;
  if (segs.summarised.length > 0) {
    partial = `SELECT p."time"${tagCols.map((c) => `, p.${c}`).join('')}, ${partsFromRawParts(fields, fastOrder).join(', ')}
        FROM (${partial} UNION ALL ${segmentPartsSql(stream, fields, level.intervalUs, segs.summarised, fastOrder, params)}) p
       GROUP BY ${groupKeys.join(', ')}`;
  }
  const sql = `
    WITH p AS (
      ${partial}
    ), ins AS (
      INSERT INTO ${table} ("time"${tagCols.map((c) => `, ${c}`).join('')}, ${columns.join(', ')})
      SELECT p."time"${tagCols.map((c) => `, p.${c}`).join('')}, ${values.join(', ')} FROM p
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM ins)::int AS written, (SELECT coalesce(sum(src_rows), 0) FROM p)::bigint::text AS read`;
  const { rows } = await tx.query<{ written: number; read: string }>(sql, params);

  // The combined rows of the same buckets, from the rows per tag set as they now are.
  await tx.query(`DELETE FROM ${table} WHERE "time" >= $1::timestamptz AND "time" < $2::timestamptz AND all_tags`, [pgTimestamp(from), pgTimestamp(to)]);
  await tx.query(
    `INSERT INTO ${table} ("time", all_tags, ${combined.columns.join(', ')})
     SELECT p."time", true, ${combined.values.join(', ')}
       FROM (SELECT l."time", ${partsFromLevel(fields).join(', ')} FROM ${table} l
              WHERE l."time" >= $1::timestamptz AND l."time" < $2::timestamptz AND NOT l.all_tags GROUP BY 1) p`,
    [pgTimestamp(from), pgTimestamp(to)]);
  return { read: Number(rows[0].read), written: rows[0].written, summarised: segs.summarised.length, decoded: segs.decoded.length };
}

async function recordRefresh(tx: PoolClient, stream: Stream, runId: number | null, r: RefreshRange, from: bigint, to: bigint): Promise<void> {
  await tx.query(
    `INSERT INTO strata.rollup_refreshes (run_id, stream_id, level, kind, tag_values, range_start, range_end, source, rows_read, rows_written)
     VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $7::timestamptz, $8, $9, $10)`,
    [runId, stream.id, r.level, r.kind, r.tags === null ? null : JSON.stringify(r.tags), pgTimestamp(from), pgTimestamp(to), r.source, r.rowsRead, r.rowsWritten]);
}

/** Makes sure the level has chunks wherever its source has data within [from, to). */
async function ensureLevelChunks(db: Db, stream: Stream, level: Level, source: string, from: bigint, to: bigint, maxNew: number): Promise<void> {
  for (const c of await sourceChunks(db, stream.id, source, from, to)) {
    const a = c.start > from ? c.start : from;
    const b = c.end < to ? c.end : to;
    if (a < b) {
      await ensureChunks(db, { streamId: stream.id, tableName: level.tableName, chunkIntervalUs: level.chunkUs, level: level.name },
        floorDiv(a, level.intervalUs) * level.intervalUs, b - 1n, maxNew);
    }
  }
}

/**
 * Summarises the BRIN ranges of raw chunks within [from, to) that are not summarised yet (fresh
 * rows), so that reading a minute of a chunk reads that minute and not the whole chunk.
 */
async function summarizeRaw(db: Db, stream: Stream, from: bigint, to: bigint): Promise<void> {
  await db.pool.query(
    `SELECT brin_summarize_new_values(i.indexrelid)
       FROM strata.chunks c
       JOIN pg_index i ON i.indrelid = to_regclass(format('%I.%I', $4::text, c.table_name))
       JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'brin'
      WHERE c.stream_id = $1 AND c.level = 'raw' AND c.state = 'active'
        AND c.range_end > $2::timestamptz AND c.range_start < $3::timestamptz`,
    [stream.id, pgTimestamp(from), pgTimestamp(to), DATA_SCHEMA]);
}

interface InvalidationRow { id: string; tags: string | null; s: string; e: string }

/** Merges a level's invalidations per tag set into ranges (overlapping or adjacent ones join). */
function mergeInvalidations(rows: readonly InvalidationRow[]): { tags: TagValues | null; from: bigint; to: bigint; ids: string[] }[] {
  const groups = new Map<string, InvalidationRow[]>();
  for (const r of rows) {
    const key = r.tags ?? 'null';
    const g = groups.get(key) ?? [];
    g.push(r);
    groups.set(key, g);
  }
  const out: { tags: TagValues | null; from: bigint; to: bigint; ids: string[] }[] = [];
  for (const [key, g] of groups) {
    const tags = key === 'null' ? null : JSON.parse(key) as TagValues;
    g.sort((a, b) => (BigInt(a.s) < BigInt(b.s) ? -1 : 1));
    let cur: { tags: TagValues | null; from: bigint; to: bigint; ids: string[] } | null = null;
    for (const r of g) {
      const s = BigInt(r.s); const e = BigInt(r.e);
      if (cur && s <= cur.to) {
        if (e > cur.to) cur.to = e;
        cur.ids.push(r.id);
      } else {
        if (cur) out.push(cur);
        cur = { tags, from: s, to: e, ids: [r.id] };
      }
    }
    if (cur) out.push(cur);
  }
  return out;
}

/** Recomputes a level's invalidated buckets (optionally only those overlapping [from, to)). */
async function refreshInvalidations(db: Db, stream: Stream, level: Level, finer: Level | null, opts: RefreshOptions, out: RefreshRange[], within?: { from: bigint; to: bigint }): Promise<void> {
  const { rows } = await db.pool.query<InvalidationRow>(
    `SELECT id::text, tag_values::text AS tags, ${micros('range_start')}::text AS s,
            ${micros('range_end')}::text AS e
       FROM strata.rollup_invalidations WHERE stream_id = $1 AND level = $2
        AND ($3::timestamptz IS NULL OR range_end > $3::timestamptz) AND ($4::timestamptz IS NULL OR range_start < $4::timestamptz)`,
    [stream.id, level.name, within ? pgTimestamp(within.from) : null, within ? pgTimestamp(within.to) : null]);
  for (const inv of mergeInvalidations(rows)) {
    if (opts.signal?.aborted) return;
    // Invalidations at or above the watermark (uploads that could not add pending rows) wait for
    // the watermark to pass them; the part of one below it is rebuilt now, the rest kept.
    const w = level.watermarkUs;
    if (w === null || inv.from >= w) continue;
    const to = inv.to < w ? inv.to : w;
    if (inv.from < to) {
      const sourceName = finer?.name ?? 'raw';
      await ensureLevelChunks(db, stream, level, sourceName, inv.from, to, opts.maxNewChunks);
      if (sourceName !== 'raw') await ensureLevelChunks(db, stream, level, 'raw', inv.from, to, opts.maxNewChunks);
    }
    if (inv.from < to && finer === null) await summarizeRaw(db, stream, inv.from, to);
    await withPause(opts.pausePercent ?? 0, opts.signal, () => withTransaction(db, async (tx) => {
      if (inv.from < to) {
        const source = await chooseSource(tx, stream, finer, inv.from, to);
        // From raw rows, buckets that hold rows retention dropped keep what they have.
        const pieces = source.level ? [{ start: inv.from, end: to }]
          : subtract([{ start: inv.from, end: to }], await droppedRawBuckets(tx, stream.id, level.intervalUs, inv.from, to));
        for (const piece of pieces) {
          const done = await rebuild(tx, stream, level, source, piece.start, piece.end, inv.tags);
          const r: RefreshRange = {
            level: level.name, kind: 'invalidation', tags: inv.tags, from: formatMicros(piece.start), to: formatMicros(piece.end), source: source.name,
            rowsRead: done.read, rowsWritten: done.written, ...segmentsRead(done),
          };
          await recordRefresh(tx, stream, opts.runId, r, piece.start, piece.end);
          out.push(r);
        }
      }
      await tx.query('DELETE FROM strata.rollup_invalidations WHERE id = ANY($1::bigint[])', [inv.ids]);
      if (inv.to > to) await recordInvalidations(tx, stream.id, [{ level: level.name, values: inv.tags, start: to, end: inv.to }], 'carried');
    }));
  }
}

/** How far a level may advance now: now − lag, and no further than the finer level it is built from. */
function advanceTarget(level: Level, finer: Level | null, opts: RefreshOptions): bigint {
  const L = level.intervalUs;
  let target = floorDiv(opts.nowUs - opts.lagUs, L) * L;
  if (opts.untilUs !== undefined) {
    const until = (floorDiv(opts.untilUs - 1n, L) + 1n) * L;
    if (until < target) target = until;
  }
  if (finer !== null) {
    const fw = finer.watermarkUs === null ? null : floorDiv(finer.watermarkUs, L) * L;
    if (fw === null) return level.watermarkUs ?? target;
    if (fw < target) target = fw;
  }
  return target;
}

/**
 * Gathers statistics for the level chunks of [from, to) that have never had any. Without them the
 * planner takes a freshly written chunk for a few dozen rows and sorts a zoom's hundred thousand
 * level rows instead of hashing them (where autovacuum is off, for ever). Once is enough: the
 * planner scales the rows it knows by the chunk's pages as the chunk grows.
 */
async function analyzeFreshChunks(db: Db, stream: Stream, level: Level, from: bigint, to: bigint): Promise<void> {
  const { rows } = await db.pool.query<{ table_name: string }>(
    `SELECT c.table_name FROM strata.chunks c
       JOIN pg_class k ON k.relname = c.table_name AND k.relnamespace = $5::regnamespace
      WHERE c.stream_id = $1 AND c.level = $2 AND c.state = 'active'
        AND c.range_start < $4::timestamptz AND c.range_end > $3::timestamptz AND k.reltuples < 0`,
    [stream.id, level.name, pgTimestamp(from), pgTimestamp(to), DATA_SCHEMA]);
  for (const r of rows) await db.pool.query(`ANALYZE ${qualified(DATA_SCHEMA, r.table_name)}`);
}

/** Advances a level's watermark to its target, a bounded range per transaction. */
async function advance(db: Db, stream: Stream, level: Level, finer: Level | null, opts: RefreshOptions, out: RefreshRange[]): Promise<void> {
  const target = advanceTarget(level, finer, opts);
  const L = level.intervalUs;
  let w = level.watermarkUs;
  if (w !== null && w >= target) return;
  const sourceName = finer?.name ?? 'raw';
  const step = finer === null
    ? (stream.chunkIntervalUs > L ? (stream.chunkIntervalUs / L) * L : L)
    : (finer.chunkUs > L ? (finer.chunkUs / L) * L : L) * 4n;
  while (!opts.signal?.aborted) {
    // Stretches without data are passed over in one move: the next step starts at the first chunk.
    const chunks = await sourceChunks(db, stream.id, sourceName, w, target);
    let from = target;
    if (chunks.length > 0) {
      const first = floorDiv(w !== null && chunks[0].start < w ? w : chunks[0].start, L) * L;
      from = first < target ? first : target;
    }
    const to = from + step < target ? from + step : target;
    if (from < to) {
      await ensureLevelChunks(db, stream, level, sourceName, from, to, opts.maxNewChunks);
      if (sourceName !== 'raw') await ensureLevelChunks(db, stream, level, 'raw', from, to, opts.maxNewChunks);
    }
    // Move the watermark and mark the step's range invalid in one short transaction: uploads
    // that commit from then on see the new watermark and record their own invalidations, and
    // queries answer the range from finer data until the rebuild below has committed.
    const pending = await withTransaction(db, async (tx) => {
      const upd = await tx.query(
        `UPDATE strata.rollup_levels SET watermark = $3::timestamptz
          WHERE stream_id = $1 AND level = $2 AND watermark IS NOT DISTINCT FROM $4::timestamptz`,
        [stream.id, level.name, pgTimestamp(to), w === null ? null : pgTimestamp(w)]);
      if (upd.rowCount !== 1) return null;
      if (from >= to) return '';
      const ins = await tx.query<{ id: string }>(
        `INSERT INTO strata.rollup_invalidations (stream_id, level, tag_values, range_start, range_end, cause)
         VALUES ($1, $2, NULL, $3::timestamptz, $4::timestamptz, 'advance') RETURNING id::text`,
        [stream.id, level.name, pgTimestamp(from), pgTimestamp(to)]);
      return ins.rows[0].id;
    });
    if (pending === null) throw new Error(`the watermark of level ${level.name} of stream ${stream.name} changed during the refresh`);
    if (pending !== '') {
      // The finest level is built from the uploads' pending rows where it keeps them, else from raw rows.
      const fromPending = finer === null && level.pendingFromUs !== null && level.pendingFromUs <= from;
      if (finer === null && !fromPending) await summarizeRaw(db, stream, from, to);
      await withPause(opts.pausePercent ?? 0, opts.signal, () => withTransaction(db, async (tx) => {
        const source = fromPending ? { name: 'pending', level: pendingSource(stream, level) } : await chooseSource(tx, stream, finer, from, to);
        const done = await rebuild(tx, stream, level, source, from, to, null);
        // Raw rows hold whatever pending rows there are in the range.
        if (finer === null && level.pendingFromUs !== null) await deletePending(tx, stream, from, to);
        await tx.query('DELETE FROM strata.rollup_invalidations WHERE id = $1', [pending]);
        if (done.written > 0 || done.read > 0) {
          const r: RefreshRange = {
            level: level.name, kind: 'advance', tags: null, from: formatMicros(from), to: formatMicros(to), source: source.name,
            rowsRead: done.read, rowsWritten: done.written, ...segmentsRead(done),
          };
          await recordRefresh(tx, stream, opts.runId, r, from, to);
          out.push(r);
        }
      }));
    }
    if (pending !== '') await analyzeFreshChunks(db, stream, level, from, to);
    w = to;
    level.watermarkUs = to;
    if (to >= target) return;
  }
}

/**
 * Refreshes a stream's levels: invalidations, then the watermark, finest level first. `within`
 * limits the invalidations recomputed to those overlapping a range (retention's absorb).
 */
export async function refreshStream(db: Db, stream: Stream, opts: RefreshOptions, within?: { from: bigint; to: bigint }): Promise<RefreshRange[]> {
  const client = await db.pool.connect();
  try {
    await client.query("SET lock_timeout = '120s'");
    await client.query('SELECT pg_advisory_lock($1, $2)', [REFRESH_LOCK_SPACE, stream.id]);
    await client.query('RESET lock_timeout');
    try {
      const out: RefreshRange[] = [];
      let levels = await loadLevels(db.pool, stream.id);
      if (levels.length > 0 && levels[0].pendingFromUs === null && pendingSupported(stream)) {
        // A stream from before pending rows (or whose fields allow them again): from the next chunk on.
        await withTransaction(db, async (tx) => restartPending(tx, stream, await loadLevels(tx, stream.id, 'FOR UPDATE')));
        levels = await loadLevels(db.pool, stream.id);
      }
      for (let i = 0; i < levels.length; i++) {
        if (opts.signal?.aborted) break;
        const finer = i > 0 ? levels[i - 1] : null;
        await refreshInvalidations(db, stream, levels[i], finer, opts, out, within);
        await advance(db, stream, levels[i], finer, opts, out);
      }
      return out;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, $2)', [REFRESH_LOCK_SPACE, stream.id]);
    }
  } finally {
    client.release();
  }
}
