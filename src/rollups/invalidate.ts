// Invalidations: what an ingest or a retraction wrote below a level's watermark, recorded in the
// same transaction, narrow per tag set and per bucket range, so that the refresh recomputes only
// those buckets of that tag set.
//
// While rows are written, each tag set's rows are summarised as a few time ranges (rows closer
// than GAP_US to a range extend it). Before commit the levels are read FOR SHARE — the refresh
// updates a watermark only under that row lock, so it cannot advance past rows that are not yet
// committed — and each range below a watermark becomes that level's buckets, merged where they
// touch.
import type { PoolClient } from '../db/pool.ts';
import { floorDiv } from '../domain/interval.ts';
import { pgTimestamp } from '../domain/time.ts';
import type { ColumnBatch, ColumnData } from '../domain/types.ts';
import { registerIngestObserver, registerRetractionObserver, type IngestObserver } from '../ingest/observers.ts';
import type { Stream } from '../streams/catalog.ts';
import { type Level, loadLevels } from './levels.ts';
import { tagColumns } from './layout.ts';
import { FAR_PAST, subtract } from '../domain/ranges.ts';
import { droppedRawBuckets } from './refresh.ts';
import { UploadPending } from './pending.ts';

/** Rows of one tag set less than this apart are one range. */
const GAP_US = 60_000_000;
/** Ranges kept per tag set before they are collapsed into one. */
const MAX_RANGES = 4096;
/** Tag sets tracked per upload before every tag set is invalidated together. */
const MAX_TAG_SETS = 10_000;

export type TagValues = (string | null)[];

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

const decoder = new TextDecoder();

/** A batch's tag column as small integer codes per row (equal values, equal codes; 0 is null). */
interface ColumnCodes {
  codes: Int32Array;
  /** The value of each code. */
  values: (string | null)[];
}

function isNullAt(col: ColumnData, i: number): boolean {
  const v = col.validity;
  return v !== null && ((v.bitmap[(v.offset + i) >> 3] >> ((v.offset + i) & 7)) & 1) === 0;
}

/**
 * Codes for text held as bytes (utf8, utf8view): an open-addressing table keyed by the bytes of
 * each distinct value, so that a row costs a hash and a compare of a few bytes, not a decode.
 */
function byteCodes(col: ColumnData, n: number, at: ByteAt): ColumnCodes {
  const codes = new Int32Array(n);
  const values: (string | null)[] = [null];
  let size = 64;
  let reps = new Int32Array(size).fill(-1);
  let slotCodes = new Int32Array(size);
  const hash = (i: number): number => {
    const b = at.buf(i); const off = at.off(i); const len = at.len(i);
    let h = 0x811c9dc5 ^ len;
    for (let k = 0; k < len; k++) h = Math.imul(h ^ b[off + k], 16777619);
    return h >>> 0;
  };
  const equal = (a: number, c: number): boolean => {
    const la = at.len(a);
    if (la !== at.len(c)) return false;
    const ba = at.buf(a); const oa = at.off(a); const bc = at.buf(c); const oc = at.off(c);
    for (let k = 0; k < la; k++) if (ba[oa + k] !== bc[oc + k]) return false;
    return true;
  };
  const insert = (i: number, code: number, h: number): void => {
    let slot = h & (size - 1);
    while (reps[slot] !== -1) slot = (slot + 1) & (size - 1);
    reps[slot] = i;
    slotCodes[slot] = code;
  };
  let prev = -1;
  for (let i = 0; i < n; i++) {
    if (isNullAt(col, i)) { prev = -1; continue; }
    // Runs of one value are common: compare with the row before first.
    if (prev >= 0 && equal(prev, i)) { codes[i] = codes[prev]; prev = i; continue; }
    const h = hash(i);
    let slot = h & (size - 1);
    let code = 0;
    while (reps[slot] !== -1) {
      if (equal(reps[slot], i)) { code = slotCodes[slot]; break; }
      slot = (slot + 1) & (size - 1);
    }
    if (code === 0) {
      const off = at.off(i);
      code = values.length;
      values.push(decoder.decode(at.buf(i).subarray(off, off + at.len(i))));
      if (values.length * 2 > size) {
        const old = { reps, slotCodes };
        size *= 2;
        reps = new Int32Array(size).fill(-1);
        slotCodes = new Int32Array(size);
        for (let k = 0; k < old.reps.length; k++) if (old.reps[k] !== -1) insert(old.reps[k], old.slotCodes[k], hash(old.reps[k]));
      }
      insert(i, code, h);
    }
    codes[i] = code;
    prev = i;
  }
  return { codes, values };
}

const mix5 = (a: number, b: number, c: number, d: number, e: number): number =>
  Math.imul(Math.imul(Math.imul(Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b, 0xc2b2ae35) ^ c, 0x27d4eb2f) ^ d, 0x165667b1) ^ e;

/**
 * Codes for short text values held as five integers each (whatever the layout, they hold every
 * byte of the value and its length): an open-addressing table, so that a row costs a hash and a
 * compare of five integers, not a decode. Code 0 is null; `values` holds each code's text.
 */
class FiveIntCodes {
  private size = 64;
  private keys = new Int32Array(this.size * 5);
  private slotCodes = new Int32Array(this.size);
  readonly values: (string | null)[] = [null];

  /** The key's code, or 0 when it has none yet. */
  find(a: number, b: number, c: number, d: number, e: number): number {
    const { keys, slotCodes } = this;
    const mask = this.size - 1;
    let slot = mix5(a, b, c, d, e) & mask;
    while (slotCodes[slot] !== 0) {
      const k = slot * 5;
      if (keys[k] === a && keys[k + 1] === b && keys[k + 2] === c && keys[k + 3] === d && keys[k + 4] === e) return slotCodes[slot];
      slot = (slot + 1) & mask;
    }
    return 0;
  }

  /** Gives the key (not in the table) the next code, for `text`; returns the code. */
  add(a: number, b: number, c: number, d: number, e: number, text: string): number {
    const code = this.values.length;
    this.values.push(text);
    this.put(a, b, c, d, e, code);
    if (this.values.length * 2 > this.size) {
      const { keys, slotCodes } = this;
      this.size *= 2;
      this.keys = new Int32Array(this.size * 5);
      this.slotCodes = new Int32Array(this.size);
      for (let k = 0; k < slotCodes.length; k++) {
        if (slotCodes[k] !== 0) this.put(keys[k * 5], keys[k * 5 + 1], keys[k * 5 + 2], keys[k * 5 + 3], keys[k * 5 + 4], slotCodes[k]);
      }
    }
    return code;
  }

  private put(a: number, b: number, c: number, d: number, e: number, code: number): void {
    const mask = this.size - 1;
    let slot = mix5(a, b, c, d, e) & mask;
    while (this.slotCodes[slot] !== 0) slot = (slot + 1) & mask;
    const k = slot * 5;
    this.keys[k] = a; this.keys[k + 1] = b; this.keys[k + 2] = c; this.keys[k + 3] = d; this.keys[k + 4] = e;
    this.slotCodes[slot] = code;
  }
}

/**
 * Codes for Utf8 / LargeUtf8 values of at most 16 bytes (the usual tag): a value is its length and
 * four little-endian words read at fixed places (overlapping where it is shorter), which together
 * hold every byte.
 */
function shortUtf8Codes(col: ColumnData, n: number, offsets: Int32Array | Float64Array, data: Uint8Array): ColumnCodes {
  const codes = new Int32Array(n);
  const table = new FiveIntCodes();
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const bits = col.validity?.bitmap;
  const bitOff = col.validity?.offset ?? 0;
  for (let i = 0; i < n; i++) {
    if (bits !== undefined && ((bits[(bitOff + i) >> 3] >> ((bitOff + i) & 7)) & 1) === 0) continue;
    const s = offsets[i];
    const len = offsets[i + 1] - s;
    let a = 0; let b = 0; let c = 0; let d = 0;
    if (len >= 4) {
      const m = len - 4;
      a = dv.getInt32(s, true);
      b = dv.getInt32(s + (m < 4 ? m : 4), true);
      c = dv.getInt32(s + (m < 8 ? m : 8), true);
      d = dv.getInt32(s + m, true);
    } else {
      for (let k = 0; k < len; k++) a |= data[s + k] << (8 * k);
    }
    const code = table.find(len, a, b, c, d);
    codes[i] = code !== 0 ? code : table.add(len, a, b, c, d, decoder.decode(data.subarray(s, s + len)));
  }
  return { codes, values: table.values };
}

/**
 * Codes for Utf8View values that are all inline (≤ 12 bytes, the usual tag): a view's four words
 * (length and bytes, zero-padded) are the value.
 */
function inlineViewCodes(col: ColumnData, n: number, w: Int32Array, views: Uint8Array): ColumnCodes {
  const codes = new Int32Array(n);
  const table = new FiveIntCodes();
  const bits = col.validity?.bitmap;
  const bitOff = col.validity?.offset ?? 0;
  for (let i = 0; i < n; i++) {
    if (bits !== undefined && ((bits[(bitOff + i) >> 3] >> ((bitOff + i) & 7)) & 1) === 0) continue;
    const a = w[i * 4]; const b = w[i * 4 + 1]; const c = w[i * 4 + 2]; const d = w[i * 4 + 3];
    const code = table.find(a, b, c, d, 0);
    codes[i] = code !== 0 ? code : table.add(a, b, c, d, 0, decoder.decode(views.subarray(i * 16 + 4, i * 16 + 4 + a)));
  }
  return { codes, values: table.values };
}

/** Where row i's bytes are. */
interface ByteAt {
  buf(i: number): Uint8Array;
  off(i: number): number;
  len(i: number): number;
}

function columnCodes(col: ColumnData | undefined, n: number): ColumnCodes {
  if (!col) return { codes: new Int32Array(n), values: [null] };
  const v = col.values;
  switch (v.kind) {
    case 'dictionary': {
      const codes = new Int32Array(n);
      for (let i = 0; i < n; i++) codes[i] = isNullAt(col, i) ? 0 : Number(v.indices[i]) + 1;
      return { codes, values: [null, ...v.entries.map((e) => (e ? decoder.decode(e) : null))] };
    }
    case 'utf8': {
      const o = v.offsets;
      let short = true;
      for (let i = 0; i < n && short; i++) short = o[i + 1] - o[i] <= 16;
      return short ? shortUtf8Codes(col, n, o, v.data) : byteCodes(col, n, { buf: () => v.data, off: (i) => o[i], len: (i) => o[i + 1] - o[i] });
    }
    case 'utf8view': {
      const w = new Int32Array(v.views.buffer, v.views.byteOffset, v.views.byteLength >> 2);
      let inline = true;
      for (let i = 0; i < n && inline; i++) inline = w[i * 4] <= 12;
      if (inline) return inlineViewCodes(col, n, w, v.views);
      return byteCodes(col, n, {
        buf: (i) => (w[i * 4] <= 12 ? v.views : v.buffers[w[i * 4 + 2]]),
        off: (i) => (w[i * 4] <= 12 ? i * 16 + 4 : w[i * 4 + 3]),
        len: (i) => w[i * 4],
      });
    }
    default: {
      const codes = new Int32Array(n);
      const values: (string | null)[] = [null];
      const index = new Map<string, number>();
      for (let i = 0; i < n; i++) {
        const s = v.kind === 'strings' ? v.values[i] : null;
        if (s === null || isNullAt(col, i)) continue;
        let code = index.get(s);
        if (code === undefined) { code = values.length; values.push(s); index.set(s, code); }
        codes[i] = code;
      }
      return { codes, values };
    }
  }
}

/**
 * One code per row of a batch for its whole tag set (the tag column codes combined; equal tag
 * sets, equal codes), and the tag values of each code.
 */
export function tagSetCodes(stream: Pick<Stream, 'columns'>, batch: ColumnBatch): { combined: Int32Array; tuple(code: number): TagValues } {
  const n = batch.length;
  const byName = new Map(batch.columns.map((c) => [c.column.columnName, c]));
  const cols = tagColumns(stream).map((t) => columnCodes(byName.get(t.columnName), n));
  if (cols.length === 0) return { combined: new Int32Array(n), tuple: () => [] };
  if (cols.length === 1) return { combined: cols[0].codes, tuple: (code) => [cols[0].values[code]] };
  const combined = new Int32Array(n);
  const index = new Map<string, number>();
  const tuples: TagValues[] = [];
  let prev: string | null = null;
  let prevCode = -1;
  for (let i = 0; i < n; i++) {
    let key = '';
    for (const c of cols) key += `${c.codes[i]},`;
    if (key !== prev) {
      let code = index.get(key);
      if (code === undefined) { code = tuples.length; tuples.push(cols.map((c) => c.values[c.codes[i]])); index.set(key, code); }
      prev = key;
      prevCode = code;
    }
    combined[i] = prevCode;
  }
  return { combined, tuple: (code) => tuples[code] };
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

export interface Invalidation {
  level: string;
  values: TagValues | null;
  start: bigint;
  end: bigint;
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

export async function recordInvalidations(tx: PoolClient, streamId: number, list: readonly Invalidation[], cause: string): Promise<void> {
  for (let i = 0; i < list.length; i += 1000) {
    const part = list.slice(i, i + 1000);
    await tx.query(
      `INSERT INTO strata.rollup_invalidations (stream_id, level, tag_values, range_start, range_end, cause)
       SELECT $1, l, t::jsonb, s::timestamptz, e::timestamptz, $6
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(l, t, s, e)`,
      [streamId, part.map((x) => x.level), part.map((x) => (x.values === null ? null : JSON.stringify(x.values))),
        part.map((x) => pgTimestamp(x.start)), part.map((x) => pgTimestamp(x.end)), cause]);
  }
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
