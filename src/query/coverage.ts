// What each source of a stream still holds over a time range. Raw rows: everything but the chunks
// retention dropped (a chunk that held no rows lost nothing) or is dropping right now (detached,
// not yet marked dropped). A rollup level: the buckets below its watermark, except invalidated
// ones and its own dropped chunks. Queries serve each part of their range from what holds it and
// declare, as gaps, the parts that nothing holds any more.
import type { Queryable } from '../db/pool.ts';
import { DATA_SCHEMA } from '../db/sql.ts';
import { FAR_PAST, type Range, normalise, subtract } from '../domain/ranges.ts';
import { formatMicros, pgTimestamp } from '../domain/time.ts';

export const RAW_SOURCE = 'raw';

/** A part of the range that no source holds any more; `heldBy`: coarser levels that still hold some of it. */
export interface Gap extends Range {
  heldBy: string[];
}

export interface LevelState {
  name: string;
  /** Buckets starting before it are materialised; null: none yet. */
  watermarkUs: bigint | null;
}

export interface Coverage {
  /** Ranges whose raw rows are gone. */
  rawLost: Range[];
  /** The raw chunks behind them, with the rows each held (null: unknown). */
  rawLostChunks: (Range & { rows: number | null })[];
  /** Per level, the ranges it serves exactly. */
  clean: Map<string, Range[]>;
}

const us = (e: string): string => `(extract(epoch FROM ${e}) * 1000000)::bigint::text`;

/**
 * The ranges within [from, to) (null: unbounded) whose rows are gone from each source, and the
 * invalidated ranges of each level, in one statement (in the caller's snapshot).
 */
interface LostRow { kind: string; level: string; s: string; e: string; n: string | null }

async function lostAndDirty(q: Queryable, streamId: number, from: bigint | null, to: bigint | null): Promise<LostRow[]> {
  const { rows } = await q.query<LostRow>(
    `SELECT 'lost' AS kind, c.level, ${us('c.range_start')} AS s, ${us('c.range_end')} AS e, c.row_count::text AS n
       FROM strata.chunks c LEFT JOIN strata.rollup_levels l ON l.stream_id = c.stream_id AND l.level = c.level
      WHERE c.stream_id = $1 AND ($2::timestamptz IS NULL OR c.range_end > $2::timestamptz)
        AND ($3::timestamptz IS NULL OR c.range_start < $3::timestamptz)
        AND (c.level = 'raw' OR l.level IS NOT NULL)
        AND ((c.state = 'dropped' AND coalesce(c.row_count, 1) > 0
              -- chunks of an earlier level of the same name, removed with it, are not this level's
              AND (c.level = 'raw' OR c.created_at >= l.created_at))
          OR (c.state = 'active' AND NOT EXISTS (
                SELECT 1 FROM pg_inherits i
                 WHERE i.inhrelid = to_regclass(format('%I.%I', $4::text, c.table_name)) AND NOT i.inhdetachpending)))
     UNION ALL
     SELECT 'dirty', level, ${us('range_start')}, ${us('range_end')}, NULL FROM strata.rollup_invalidations
      WHERE stream_id = $1 AND ($2::timestamptz IS NULL OR range_end > $2::timestamptz)
        AND ($3::timestamptz IS NULL OR range_start < $3::timestamptz)`,
    [streamId, from === null ? null : pgTimestamp(from), to === null ? null : pgTimestamp(to), DATA_SCHEMA]);
  return rows;
}

/** What each source holds over [from, to). */
export async function coverageOf(q: Queryable, streamId: number, levels: readonly LevelState[], from: bigint | null, to: bigint | null): Promise<Coverage> {
  const rows = await lostAndDirty(q, streamId, from, to);
  const ranges = (kind: string, level: string): Range[] =>
    normalise(rows.filter((r) => r.kind === kind && r.level === level).map((r) => ({ start: BigInt(r.s), end: BigInt(r.e) })));
  const clean = new Map<string, Range[]>();
  for (const l of levels) {
    if (l.watermarkUs === null) { clean.set(l.name, []); continue; }
    const bad = normalise([...ranges('lost', l.name), ...ranges('dirty', l.name)]);
    clean.set(l.name, subtract([{ start: FAR_PAST, end: l.watermarkUs }], bad));
  }
  const rawLostChunks = rows.filter((r) => r.kind === 'lost' && r.level === RAW_SOURCE)
    .map((r) => ({ start: BigInt(r.s), end: BigInt(r.e), rows: r.n === null ? null : Number(r.n) }));
  return { rawLost: ranges('lost', RAW_SOURCE), rawLostChunks, clean };
}

/** The levels whose clean ranges overlap a gap (those that still hold some of it, coarser). */
export function heldBy(gap: Range, clean: ReadonlyMap<string, Range[]>): string[] {
  return [...clean].filter(([, rs]) => rs.some((r) => r.start < gap.end && r.end > gap.start)).map(([name]) => name);
}

export function describeGaps(gaps: readonly Gap[]): Record<string, unknown>[] {
  return gaps.map((g) => ({ from: formatMicros(g.start), to: formatMicros(g.end), ...(g.heldBy.length ? { held_by: g.heldBy } : {}) }));
}

/** At most this many ranges in a header; the body (JSON, Arrow metadata) has them all. */
const HEADER_RANGES = 50;

/**
 * A header value listing ranges as ISO 8601 intervals, `start/end` separated by ", ", with a
 * source before each when given; beyond HEADER_RANGES, the count of the others.
 */
export function rangesHeader(ranges: readonly (Range & { source?: string })[]): string {
  const shown = ranges.slice(0, HEADER_RANGES).map((r) => `${r.source ? `${r.source} ` : ''}${formatMicros(r.start)}/${formatMicros(r.end)}`);
  if (ranges.length > HEADER_RANGES) shown.push(`and ${ranges.length - HEADER_RANGES} more`);
  return shown.join(', ');
}
