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

// Module-level, not closures made per call: an optimised loop calling a closure made anew on each
// call of its function deoptimises on the next call ("wrong call target").
const mix5 = (len: number, a: number, b: number, c: number, d: number): number =>
  Math.imul(Math.imul(Math.imul(Math.imul(len ^ 0x9e3779b9, 0x85ebca6b) ^ a, 0xc2b2ae35) ^ b, 0x27d4eb2f) ^ c, 0x165667b1) ^ d;

/** Puts the five-integer key src[from…from + 5) with its code into an open-addressing table of `size` slots. */
function put5(keys: Int32Array, slotCodes: Int32Array, size: number, src: Int32Array, from: number, code: number): void {
  let slot = mix5(src[from], src[from + 1], src[from + 2], src[from + 3], src[from + 4]) & (size - 1);
  while (slotCodes[slot] !== 0) slot = (slot + 1) & (size - 1);
  for (let k = 0; k < 5; k++) keys[slot * 5 + k] = src[from + k];
  slotCodes[slot] = code;
}

const mix4 = (a: number, b: number, c: number, d: number): number =>
  Math.imul(Math.imul(Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b, 0xc2b2ae35) ^ c, 0x27d4eb2f) ^ d;

/** Puts the four-integer key src[from…from + 4) with its code into an open-addressing table of `size` slots. */
function put4(keys: Int32Array, slotCodes: Int32Array, size: number, src: Int32Array, from: number, code: number): void {
  let slot = mix4(src[from], src[from + 1], src[from + 2], src[from + 3]) & (size - 1);
  while (slotCodes[slot] !== 0) slot = (slot + 1) & (size - 1);
  for (let k = 0; k < 4; k++) keys[slot * 4 + k] = src[from + k];
  slotCodes[slot] = code;
}

/**
 * Codes for Utf8 / LargeUtf8 values of at most 16 bytes (the usual tag): a value is its length and
 * four little-endian words read at fixed places (overlapping where it is shorter), which together
 * hold every byte, so rows are hashed and compared as five integers.
 */
function shortUtf8Codes(col: ColumnData, n: number, offsets: Int32Array | Float64Array, data: Uint8Array): ColumnCodes {
  const codes = new Int32Array(n);
  const values: (string | null)[] = [null];
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let size = 64;
  let keys = new Int32Array(size * 5);
  let slotCodes = new Int32Array(size);
  const bits = col.validity?.bitmap;
  const bitOff = col.validity?.offset ?? 0;
  const key = new Int32Array(5);
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
    let slot = mix5(len, a, b, c, d) & (size - 1);
    let code = 0;
    while (slotCodes[slot] !== 0) {
      const k = slot * 5;
      if (keys[k] === len && keys[k + 1] === a && keys[k + 2] === b && keys[k + 3] === c && keys[k + 4] === d) { code = slotCodes[slot]; break; }
      slot = (slot + 1) & (size - 1);
    }
    if (code === 0) {
      code = values.length;
      values.push(decoder.decode(data.subarray(s, s + len)));
      key[0] = len; key[1] = a; key[2] = b; key[3] = c; key[4] = d;
      put5(keys, slotCodes, size, key, 0, code);
      if (values.length * 2 > size) {
        const oldKeys = keys; const oldCodes = slotCodes;
        size *= 2;
        keys = new Int32Array(size * 5);
        slotCodes = new Int32Array(size);
        for (let k = 0; k < oldCodes.length; k++) if (oldCodes[k] !== 0) put5(keys, slotCodes, size, oldKeys, k * 5, oldCodes[k]);
      }
    }
    codes[i] = code;
  }
  return { codes, values };
}

/**
 * Codes for Utf8View values that are all inline (≤ 12 bytes, the usual tag): a view's four words
 * (length and bytes, zero-padded) are the value, so rows are hashed and compared as integers.
 */
function inlineViewCodes(col: ColumnData, n: number, w: Int32Array, views: Uint8Array): ColumnCodes {
  const codes = new Int32Array(n);
  const values: (string | null)[] = [null];
  let size = 64;
  let keys = new Int32Array(size * 4);
  let slotCodes = new Int32Array(size);
  const bits = col.validity?.bitmap;
  const bitOff = col.validity?.offset ?? 0;
  for (let i = 0; i < n; i++) {
    if (bits !== undefined && ((bits[(bitOff + i) >> 3] >> ((bitOff + i) & 7)) & 1) === 0) continue;
    const a = w[i * 4]; const b = w[i * 4 + 1]; const c = w[i * 4 + 2]; const d = w[i * 4 + 3];
    let slot = mix4(a, b, c, d) & (size - 1);
    let code = 0;
    while (slotCodes[slot] !== 0) {
      const k = slot * 4;
      if (keys[k] === a && keys[k + 1] === b && keys[k + 2] === c && keys[k + 3] === d) { code = slotCodes[slot]; break; }
      slot = (slot + 1) & (size - 1);
    }
    if (code === 0) {
      code = values.length;
      values.push(decoder.decode(views.subarray(i * 16 + 4, i * 16 + 4 + a)));
      put4(keys, slotCodes, size, w, i * 4, code);
      if (values.length * 2 > size) {
        const oldKeys = keys; const oldCodes = slotCodes;
        size *= 2;
        keys = new Int32Array(size * 4);
        slotCodes = new Int32Array(size);
        for (let k = 0; k < oldCodes.length; k++) if (oldCodes[k] !== 0) put4(keys, slotCodes, size, oldKeys, k * 4, oldCodes[k]);
      }
    }
    codes[i] = code;
  }
  return { codes, values };
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
