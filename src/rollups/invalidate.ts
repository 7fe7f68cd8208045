// Invalidations: what an ingest or a retraction wrote below a level's watermark, recorded in the
// same transaction, narrow per tag set and per bucket range, so that the refresh recomputes only
// those buckets of that tag set.
//
// While rows are written, each tag set's rows are summarised as a few time ranges (rows closer
// than GAP_US to a range extend it). Before commit the levels are read FOR SHARE — the refresh
// updates a watermark only under that row lock, so it cannot advance past rows that are not yet
// committed — and each range below a watermark becomes that level's buckets, merged where they
// touch.
import { floorDiv } from '../domain/interval.ts';
import type { ColumnBatch } from '../domain/types.ts';
import { registerIngestObserver, registerRetractionObserver, type IngestObserver } from '../ingest/observers.ts';
import type { Stream } from '../streams/catalog.ts';
import { FAR_PAST, subtract } from '../domain/ranges.ts';
import { droppedRawBuckets } from './dropped-buckets.ts';
import { type Invalidation, recordInvalidations } from './invalidation-log.ts';
import { type Level, loadLevels } from './levels.ts';
import { UploadPending } from './pending.ts';
import { type TagValues, tagSetCodes } from './tag-sets.ts';

/** Rows of one tag set less than this apart are one range. */
const GAP_US = 60_000_000;
/** Ranges kept per tag set before they are collapsed into one. */
const MAX_RANGES = 4096;
/** Tag sets tracked per upload before every tag set is invalidated together. */
const MAX_TAG_SETS = 10_000;

interface Span { start: number; end: number }

class TagSet {
  readonly spans: Span[] = [];
  cur: Span | null = null;
  constructor(readonly values: TagValues) {}

  add(t: number): void {
    const c = this.cur;
    if (c !== null && t >= c.start - GAP_US && t <= c.end + GAP_US) {
      if (t < c.start) c.start = t;
      else if (t > c.end) c.end = t;
      return;
    }
    if (c !== null) this.spans.push(c);
    if (this.spans.length >= MAX_RANGES) this.collapse();
    this.cur = { start: t, end: t };
  }

  all(): Span[] {
    return this.cur ? [...this.spans, this.cur] : this.spans;
  }

  private collapse(): void {
    const all = this.all();
    const start = Math.min(...all.map((s) => s.start));
    const end = Math.max(...all.map((s) => s.end));
    this.spans.length = 0;
    this.spans.push({ start, end });
    this.cur = null;
  }
}


/** Follows one upload: the time ranges it writes, per tag set. */
export class TagSetRanges {
  private readonly sets = new Map<string, TagSet>();
  private overflow: TagSet | null = null;

  constructor(private readonly stream: Stream) {}

  private setOf(values: TagValues): TagSet {
    let key = '';
    for (const v of values) key += v === null ? '\u0000' : `${v.length}:${v}`;
    let set = this.sets.get(key);
    if (set === undefined) {
      if (this.sets.size >= MAX_TAG_SETS) return (this.overflow ??= new TagSet(null as unknown as TagValues));
      set = new TagSet(values);
      this.sets.set(key, set);
    }
    return set;
  }

  add(batch: ColumnBatch): void {
    const n = batch.length;
    const { combined, tuple } = tagSetCodes(this.stream, batch);
    const words = new Int32Array(batch.time.buffer, batch.time.byteOffset, n * 2);
    const bySet: (TagSet | undefined)[] = [];
    for (let i = 0; i < n; i++) {
      const code = combined[i];
      const set = bySet[code] ??= this.setOf(tuple(code));
      set.add(words[2 * i + 1] * 4294967296 + (words[2 * i] >>> 0));
    }
  }

  /** Per tag set (null: every tag set), the spans written, in µs (inclusive). */
  spans(): { values: TagValues | null; spans: Span[] }[] {
    const out: { values: TagValues | null; spans: Span[] }[] = [...this.sets.values()].map((s) => ({ values: s.values, spans: s.all() }));
    if (this.overflow) out.push({ values: null, spans: this.overflow.all() });
    return out;
  }
}

/** The buckets of a level that spans below its watermark touch, merged where they touch. */
export function levelRanges(level: Pick<Level, 'intervalUs' | 'watermarkUs'>, spans: readonly { start: bigint; end: bigint }[]): { start: bigint; end: bigint }[] {
  const w = level.watermarkUs;
  if (w === null) return [];
  const L = level.intervalUs;
  const raw = spans
    .filter((s) => s.start < w)
    .map((s) => {
      const start = floorDiv(s.start, L) * L;
      const end = floorDiv(s.end, L) * L + L;
      return { start, end: end < w ? end : w };
    })
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const merged: { start: bigint; end: bigint }[] = [];
  for (const r of raw) {
    const last = merged[merged.length - 1];
    if (last && r.start <= last.end) { if (r.end > last.end) last.end = r.end; } else merged.push({ ...r });
  }
  return merged;
}

/** Invalidations for what an upload wrote, given the levels as they are at its commit. */
export function invalidationsFor(levels: readonly Level[], ranges: TagSetRanges): Invalidation[] {
  const out: Invalidation[] = [];
  const sets = ranges.spans().map((s) => ({ values: s.values, spans: s.spans.map((x) => ({ start: BigInt(x.start), end: BigInt(x.end) })) }));
  for (const level of levels) {
    for (const s of sets) {
      for (const r of levelRanges(level, s.spans)) out.push({ level: level.name, values: s.values, ...r });
    }
  }
  return out;
}

function hasLevels(stream: Stream): boolean {
  return Array.isArray(stream.settings.rollups) && stream.settings.rollups.length > 0;
}

/**
 * What an upload wrote, for the levels: below the watermarks, invalidations; at or above the finest
 * level's, pending rows (pending.ts). The levels are read once as the upload begins and once FOR
 * SHARE before it commits, for both.
 *
 * Batches wholly at or above every watermark as the upload began (the usual live upload) are not
 * followed per tag set: only their time span is kept. Should a refresh move a watermark past
 * some of those rows before the upload commits, that part is invalidated for every tag set —
 * wider than needed, never narrower.
 */
registerIngestObserver((stream, ingestId): IngestObserver => {
  // Levels added while the upload runs have no watermark yet, so nothing can be below it.
  if (!hasLevels(stream)) return {};
  const ranges = new TagSetRanges(stream);
  const pending = new UploadPending(stream, ingestId);
  let above: bigint | null = null;
  let untracked: { start: bigint; end: bigint } | null = null;
  return {
    async beforeRows(tx) {
      const levels = await loadLevels(tx, stream.id);
      pending.start(levels);
      above = levels.reduce<bigint | null>((m, l) => (l.watermarkUs !== null && (m === null || l.watermarkUs > m) ? l.watermarkUs : m), null) ?? FAR_PAST;
    },
    onBatch(batch) {
      if (batch.length === 0) return;
      pending.add(batch);
      if (above !== null && batch.minTime >= above) {
        if (untracked === null) untracked = { start: batch.minTime, end: batch.maxTime };
        else {
          if (batch.minTime < untracked.start) untracked.start = batch.minTime;
          if (batch.maxTime > untracked.end) untracked.end = batch.maxTime;
        }
        return;
      }
      ranges.add(batch);
    },
    async beforeCommit(tx) {
      const levels = await loadLevels(tx, stream.id, 'FOR SHARE');
      const list = invalidationsFor(levels, ranges);
      if (untracked !== null) {
        for (const level of levels) for (const r of levelRanges(level, [untracked])) list.push({ level: level.name, values: null, ...r });
      }
      list.push(...await pending.commit(tx, levels));
      if (list.length > 0) await recordInvalidations(tx, stream.id, list, `ingest:${ingestId}`);
    },
  };
});

/**
 * A retraction invalidates the levels over the ingest's range, except where retention already
 * dropped the raw rows: those buckets cannot be rebuilt without the rest of their rows, so they
 * keep what they hold (README, "Retention and retraction").
 */
registerRetractionObserver(async (tx, { stream, ingestId, timeMin, timeMax }) => {
  const levels = await loadLevels(tx, stream.id, 'FOR SHARE');
  if (timeMin === null || timeMax === null || levels.length === 0) return;
  const list: Invalidation[] = [];
  for (const level of levels) {
    const untouchable = await droppedRawBuckets(tx, stream.id, level.intervalUs, timeMin, timeMax);
    for (const r of subtract(levelRanges(level, [{ start: timeMin, end: timeMax }]), untouchable)) list.push({ level: level.name, values: null, ...r });
  }
  if (list.length > 0) await recordInvalidations(tx, stream.id, list, `retraction:${ingestId}`);
});
