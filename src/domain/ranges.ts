// Sets of time ranges [start, end) in µs, kept sorted and disjoint: what the query planner cuts
// a requested range into, by which source can serve each part.

export interface Range {
  start: bigint;
  end: bigint;
}

export const FAR_PAST = -(2n ** 62n);

/** Sorts and merges overlapping or adjacent ranges; drops empty ones. */
export function normalise(ranges: readonly Range[]): Range[] {
  const sorted = ranges.filter((r) => r.start < r.end).map((r) => ({ ...r })).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) { if (r.end > last.end) last.end = r.end; } else out.push(r);
  }
  return out;
}

export function intersect(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  let i = 0; let j = 0;
  while (i < a.length && j < b.length) {
    const start = a[i].start > b[j].start ? a[i].start : b[j].start;
    const end = a[i].end < b[j].end ? a[i].end : b[j].end;
    if (start < end) out.push({ start, end });
    if (a[i].end < b[j].end) i++; else j++;
  }
  return out;
}

export function subtract(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const r of a) {
    let pieces: Range[] = [r];
    for (const cut of b) {
      if (cut.end <= r.start || cut.start >= r.end) continue;
      pieces = pieces.flatMap((p) => [
        ...(cut.start > p.start ? [{ start: p.start, end: cut.start < p.end ? cut.start : p.end }] : []),
        ...(cut.end < p.end ? [{ start: cut.end > p.start ? cut.end : p.start, end: p.end }] : []),
      ]).filter((p) => p.start < p.end);
    }
    out.push(...pieces);
  }
  return normalise(out);
}
