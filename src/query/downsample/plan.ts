// The query planner's cut of a range into parts by source. Exactly first: the coarsest level
// whose whole buckets lie inside one query bucket and inside the range, where it is materialised,
// clean and not dropped; then finer levels; then the raw rows that retention left. What is still
// uncovered (raw rows dropped at an edge the levels do not reach exactly, or, for auto, where the
// auto level and every finer source are gone) is served coarsened: whole buckets of the finest
// level that still holds them, each within one query bucket — declared as such. What nothing
// holds any more is a gap, declared too. Never a silently smaller answer.
import { type Range, intersect, normalise, subtract } from '../../domain/ranges.ts';
import { formatMicros } from '../../domain/time.ts';
import type { Level } from '../../rollups/levels.ts';
import { type Coverage, type Gap, heldBy } from '../coverage.ts';
import { type Bucketing, bucketHull, wholeBuckets } from './bucketing.ts';

export interface Part {
  /** null: raw rows. */
  source: Level | null;
  ranges: Range[];
  /** Whole level buckets standing for a part whose finer data is gone: they may reach outside the range, or (auto) be assigned by their start. */
  coarsened?: boolean;
}

export interface Plan {
  parts: Part[];
  gaps: Gap[];
}

export interface PlanOptions {
  /** Levels that may serve exactly (finest first); others only coarsen. */
  exactLevels: readonly Level[];
  /** Levels that may serve coarsened edges (finest first). */
  levels: readonly Level[];
}

/** Cuts [from, to) into the parts each source serves (see the header). */
export function planParts(cov: Coverage, b: Bucketing, opts: PlanOptions, from: bigint, to: bigint): Plan {
  let rest: Range[] = [{ start: from, end: to }];
  const parts: Part[] = [];
  const cleanOf = (l: Level): Range[] => cov.clean.get(l.name) ?? [];
  for (const level of [...opts.exactLevels].reverse()) {
    if (rest.length === 0) break;
    const fit = b.exact(level.intervalUs);
    if (fit === null || fit.length === 0) continue;
    const served = wholeBuckets(intersect(intersect(rest, fit), cleanOf(level)), level.intervalUs);
    if (served.length === 0) continue;
    parts.push({ source: level, ranges: served });
    rest = subtract(rest, served);
  }
  const raw = subtract(rest, cov.rawLost);
  if (raw.length > 0) parts.push({ source: null, ranges: raw });
  let lost = intersect(rest, cov.rawLost);
  for (const level of opts.levels) {
    if (lost.length === 0) break;
    const L = level.intervalUs;
    // Every whole bucket of the hull holds some of what is lost.
    const usable = wholeBuckets(intersect(normalise(bucketHull(lost, L)), cleanOf(level)), L);
    const taken = normalise(b.whole(L, usable));
    if (taken.length === 0) continue;
    // The whole buckets replace whatever else served parts of them.
    for (const p of parts) p.ranges = subtract(p.ranges, taken);
    parts.push({ source: level, ranges: taken, coarsened: true });
    lost = subtract(lost, taken);
  }
  const gaps = lost.map((g) => ({ ...g, heldBy: heldBy(g, cov.clean) }));
  return { parts: parts.filter((p) => p.ranges.length > 0), gaps };
}

export function describeParts(parts: readonly Part[]): Record<string, unknown>[] {
  return parts.map((p) => ({
    source: p.source?.name ?? 'raw',
    ...(p.coarsened ? { coarsened: true } : {}),
    ranges: p.ranges.map((r) => ({ from: formatMicros(r.start), to: formatMicros(r.end) })),
  }));
}

/** The coarsened ranges with their sources, for a header. */
export function coarsenedRanges(parts: readonly Part[]): (Range & { source: string })[] {
  return parts.filter((p) => p.coarsened).flatMap((p) => p.ranges.map((r) => ({ ...r, source: p.source?.name ?? 'raw' })));
}
