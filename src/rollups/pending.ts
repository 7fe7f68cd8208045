// Partial aggregates made while an upload is written. The refresh that follows a live stream
// would otherwise read every raw row once more, a minute or so after the upload wrote it: as much
// work for PostgreSQL as storing the row, and it would compete with the uploads for the CPU. The
// upload has its rows in columns in memory anyway; it sums them per bucket of the stream's finest
// level and tag set (count, sum, min, max, first and last with their times, count of true: the
// parts of a level row, layout.ts) and adds those rows, one per bucket and tag set, to the
// stream's pending table (pending-table.ts) in its own transaction. When the watermark passes them, the refresh
// builds the level's buckets from the pending rows, as a coarser level is built from a finer one,
// and deletes them.
//
// The pending table holds rows of the finest level's buckets at or above its watermark only, and
// the level's pending_from says from where on it is complete. That holds because:
//  - before commit an upload reads the levels FOR SHARE (the refresh moves a watermark only under
//    that row lock): its buckets below the watermark become invalidations as before, its buckets
//    at or above it pending rows;
//  - an upload that cannot add pending rows (its finest level changed while it ran, its times are
//    beyond ±2^53 µs, or its rows are too sparse for partial aggregates to save anything)
//    invalidates its buckets at or above the watermark instead, for every tag set; the refresh
//    rebuilds those from raw rows once the watermark has passed them;
//  - a retraction deletes the ingest's pending rows;
//  - when the finest level changes, the pending rows are deleted and pending_from moves past every
//    raw chunk there is: what is stored by then is built from raw rows, what comes after from
//    pending rows.
// Streams with text or timestamp fields keep no pending rows; their levels are built from raw rows.
import type { PoolClient } from '../db/pool.ts';
import { ident } from '../db/sql.ts';
import { CopyStream } from '../copy/copy-stream.ts';
import { TupleWriter } from '../copy/tuple-writer.ts';
import { floorDiv } from '../domain/interval.ts';
import type { ColumnBatch, ColumnData, Validity } from '../domain/types.ts';
import type { Stream } from '../streams/catalog.ts';
import type { Invalidation } from './invalidation-log.ts';
import { type RollupField, holdsNaN, partsOf, rollupFields, tagColumns } from './layout.ts';
import type { Level } from './levels.ts';
import { pendingSupported, pendingTable } from './pending-table.ts';
import { type TagValues, tagSetCodes } from './tag-sets.ts';

/** Times are kept as doubles: exact within ±2^53 µs (about 285 years either side of 1970). */
const SAFE_US = 2n ** 53n;
/** Distinct tag sets per upload that partial aggregates follow. */
const MAX_SETS = 16_384;
/** Buckets × tag sets per upload before partial aggregates are given up. */
const MAX_GROUPS = 200_000;
/** Partial aggregates are kept when they are this many times fewer than the rows (or few). */
const MIN_ROWS_PER_GROUP = 8;
const FEW_GROUPS = 256;

type SlotKind = 'float8' | 'float4' | 'int8' | 'bool';

/**
 * Where a field's parts sit in a group's numbers: float8 and float4 (also int2, int4): n, sum,
 * min, max, first time, first, last time, last — over the values other than NaN — then the count
 * of NaN and the times of the earliest and latest NaN; bool: n, true; int8: n, first time, last
 * time (sum, min, max, first and last are bigints, in the group's bigint slots).
 */
interface Slot { field: RollupField; kind: SlotKind; at: number; bigAt: number }

const WIDTH: Record<SlotKind, number> = { float8: 11, float4: 11, int8: 3, bool: 2 };

const bitAt = (bitmap: Uint8Array, i: number): number => (bitmap[i >> 3] >> (i & 7)) & 1;

/** A new group's float parts: nothing yet (each start gives way to the first value or time). */
const FLOAT_START = [0, 0, Infinity, -Infinity, Infinity, NaN, -Infinity, NaN, 0, Infinity, -Infinity];

/** What one batch holds of each group it touches: its rows, and its earliest and latest row. */
interface BatchGroups {
  /** The groups the batch touches, in the order it first touches them. */
  touched: Int32Array;
  count: number;
  rows: Int32Array;
  first: Int32Array;
  last: Int32Array;
  /** Whether two rows of one group share its earliest or latest time (first and last then need the values). */
  ties: boolean;
  /** The batch's rows ordered by group (touched order), in row order within a group: group k's are perm[start[k]…start[k + 1]). */
  perm: Int32Array;
  start: Int32Array;
}

/**
 * Adds one float value x at time t to the parts at F[o…]: a NaN to the NaN count and times, any
 * other value to n, sum, min, max, first and last (ties broken as in layout.ts).
 */
function addFloat(F: Float64Array, o: number, x: number, t: number, f4: boolean): void {
  if (x !== x) {
    F[o + 8]++;
    if (t < F[o + 9]) F[o + 9] = t;
    if (t > F[o + 10]) F[o + 10] = t;
    return;
  }
  F[o]++;
  F[o + 1] = f4 ? Math.fround(F[o + 1] + x) : F[o + 1] + x;
  if (x < F[o + 2]) F[o + 2] = x;
  if (x > F[o + 3]) F[o + 3] = x;
  const ft = F[o + 4];
  if (t < ft || (t === ft && x < F[o + 5])) { F[o + 4] = t; F[o + 5] = x; }
  const lt = F[o + 6];
  if (t > lt || (t === lt && x > F[o + 7])) { F[o + 6] = t; F[o + 7] = x; }
}

/**
 * Adds a float column's values to the parts of their groups (at `at` in each group's W numbers;
 * see Slot). Without nulls and ties, a group's rows are summed in one pass, and first and last
 * come from its earliest and latest row, n from its row count — unless NaN is among them, when
 * the group's rows are added again one by one; otherwise row by row.
 * `f4`: the column is float4, which PostgreSQL sums in float4.
 */
function addFloats(F: Float64Array, W: number, at: number, a: Float64Array, valid: Validity | null, f4: boolean,
  n: number, times: Float64Array, groupOf: Int32Array, bg: BatchGroups): void {
  if (valid === null && !bg.ties) {
    // Group by group, its rows through perm: the running parts stay in registers.
    const { perm, start } = bg;
    for (let k = 0; k < bg.count; k++) {
      const g = bg.touched[k];
      const o = g * W + at;
      let sum = F[o + 1];
      let lo = F[o + 2];
      let hi = F[o + 3];
      let nans = 0;
      const end = start[k + 1];
      for (let j = start[k]; j < end; j++) {
        const x = f4 ? Math.fround(a[perm[j]]) : a[perm[j]];
        sum = f4 ? Math.fround(sum + x) : sum + x;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
        if (x !== x) nans++;
      }
      if (nans > 0) {
        for (let j = start[k]; j < end; j++) addFloat(F, o, f4 ? Math.fround(a[perm[j]]) : a[perm[j]], times[perm[j]], f4);
        continue;
      }
      F[o + 1] = sum;
      F[o + 2] = lo;
      F[o + 3] = hi;
      F[o] += end - start[k];
      const r0 = bg.first[g];
      const t0 = times[r0];
      const x0 = f4 ? Math.fround(a[r0]) : a[r0];
      if (t0 < F[o + 4] || (t0 === F[o + 4] && x0 < F[o + 5])) { F[o + 4] = t0; F[o + 5] = x0; }
      const r1 = bg.last[g];
      const t1 = times[r1];
      const x1 = f4 ? Math.fround(a[r1]) : a[r1];
      if (t1 > F[o + 6] || (t1 === F[o + 6] && x1 > F[o + 7])) { F[o + 6] = t1; F[o + 7] = x1; }
    }
    return;
  }
  const bits = valid?.bitmap;
  const bitOff = valid?.offset ?? 0;
  for (let i = 0; i < n; i++) {
    if (bits !== undefined && ((bits[(bitOff + i) >> 3] >> ((bitOff + i) & 7)) & 1) === 0) continue;
    addFloat(F, groupOf[i] * W + at, f4 ? Math.fround(a[i]) : a[i], times[i], f4);
  }
}

export class PartialAggregates {
  private readonly slots: Slot[];
  private readonly width: number;
  private readonly bigWidth: number;
  /** Each group's numbers (group-major, `width` each), its bigints, bucket, tag set and row count. */
  private nums = new Float64Array(0);
  private bigs: bigint[] = [];
  private bucket = new Float64Array(0);
  private set = new Int32Array(0);
  private rowCount = new Float64Array(0);
  /** Per group, scratch for the batch being added (see BatchGroups); `seen` holds the batch number. */
  private bRows = new Int32Array(0);
  private bFirst = new Int32Array(0);
  private bLast = new Int32Array(0);
  private seen = new Int32Array(0);
  private bPos = new Int32Array(0);
  private scratch = { times: new Float64Array(0), groupOf: new Int32Array(0), touched: new Int32Array(0), perm: new Int32Array(0), start: new Int32Array(1) };
  private wide = new Float64Array(0);
  private batchNo = 0;
  private groups = 0;
  private readonly index = new Map<number, number>();
  /** Per tag set, the bucket of its latest row and that bucket's group: rows mostly come in time order. */
  private setBucket = new Float64Array(0);
  private setGroup = new Int32Array(0);
  private readonly setIndex = new Map<string, number>();
  private readonly sets: TagValues[] = [];
  /** The first `width` numbers of a new group. */
  private readonly start: Float64Array;
  private readonly L: number;
  rows = 0;
  /** Why partial aggregates were given up for this upload, or null. */
  failed: string | null = null;

  constructor(private readonly stream: Pick<Stream, 'columns'>, readonly intervalUs: bigint) {
    this.L = Number(intervalUs);
    let at = 0;
    let bigAt = 0;
    const start: number[] = [];
    this.slots = rollupFields(stream).map((field) => {
      const t = field.column.type;
      const kind: SlotKind = t === 'bool' ? 'bool' : t === 'int8' ? 'int8' : t === 'float4' ? 'float4' : 'float8';
      const slot = { field, kind, at, bigAt };
      at += WIDTH[kind];
      if (kind === 'int8') bigAt += 5;
      start.push(...(kind === 'bool' ? [0, 0] : kind === 'int8' ? [0, Infinity, -Infinity] : FLOAT_START));
      return slot;
    });
    this.width = at;
    this.bigWidth = bigAt;
    this.start = Float64Array.from(start);
    if (!pendingSupported(stream)) this.fail('the stream has text or timestamp fields');
  }

  /** Whether the pending rows are worth writing instead of reading the raw rows again. */
  get worthKeeping(): boolean {
    return this.failed === null && (this.groups <= FEW_GROUPS || this.groups * MIN_ROWS_PER_GROUP <= this.rows);
  }

  private fail(reason: string): void {
    this.failed = reason;
    this.nums = new Float64Array(0);
    this.bigs = [];
    this.index.clear();
  }

  private setFor(values: TagValues): number {
    let key = '';
    for (const v of values) key += v === null ? '\u0000' : `${v.length}:${v}`;
    let s = this.setIndex.get(key);
    if (s === undefined) {
      if (this.sets.length >= MAX_SETS) return -1;
      s = this.sets.length;
      this.sets.push(values);
      this.setIndex.set(key, s);
      if (s >= this.setBucket.length) {
        const bucket = new Float64Array(Math.max(16, s * 2)).fill(NaN);
        bucket.set(this.setBucket);
        const group = new Int32Array(bucket.length);
        group.set(this.setGroup);
        this.setBucket = bucket;
        this.setGroup = group;
      }
    }
    return s;
  }

  private newGroup(b: number, s: number): number {
    const g = this.groups++;
    if (g >= this.bucket.length) {
      const cap = Math.max(64, this.bucket.length * 2);
      const grow = <T extends Float64Array | Int32Array>(a: T, n: number): T => {
        const x = new (a.constructor as new (n: number) => T)(n);
        x.set(a);
        return x;
      };
      this.bucket = grow(this.bucket, cap);
      this.set = grow(this.set, cap);
      this.rowCount = grow(this.rowCount, cap);
      this.nums = grow(this.nums, cap * this.width);
      this.bRows = grow(this.bRows, cap);
      this.bFirst = grow(this.bFirst, cap);
      this.bLast = grow(this.bLast, cap);
      this.seen = grow(this.seen, cap);
      this.bPos = grow(this.bPos, cap);
    }
    this.bucket[g] = b;
    this.set[g] = s;
    this.nums.set(this.start, g * this.width);
    for (let k = 0; k < this.bigWidth; k++) this.bigs.push(0n);
    return g;
  }

  add(batch: ColumnBatch): void {
    const n = batch.length;
    this.rows += n;
    if (this.failed !== null || n === 0) return;
    if (batch.minTime <= -SAFE_US || batch.maxTime >= SAFE_US) { this.fail('times beyond ±2^53 µs'); return; }
    const L = this.L;
    const words = new Int32Array(batch.time.buffer, batch.time.byteOffset, n * 2);
    // Scratch per batch, kept for the next one (batches are of similar sizes).
    if (this.scratch.times.length < n) {
      this.scratch = { times: new Float64Array(n), groupOf: new Int32Array(n), touched: new Int32Array(n), perm: new Int32Array(n), start: new Int32Array(n + 1) };
    }
    const { times, groupOf, touched, perm, start } = this.scratch;
    let count = 0;
    let ties = false;
    const no = ++this.batchNo;
    const { combined, tuple } = tagSetCodes(this.stream, batch);
    const setOfCode: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = words[2 * i + 1] * 4294967296 + (words[2 * i] >>> 0);
      times[i] = t;
      let b = Math.floor(t / L);
      if (b * L > t) b--; else if ((b + 1) * L <= t) b++;
      const c = combined[i];
      let s = setOfCode[c];
      if (s === undefined) s = setOfCode[c] = this.setFor(tuple(c));
      if (s < 0) { this.fail(`more than ${MAX_SETS} tag sets`); return; }
      let g: number | undefined;
      if (this.setBucket[s] === b) g = this.setGroup[s];
      else {
        const key = b * MAX_SETS + s;
        g = this.index.get(key);
        if (g === undefined) {
          if (this.groups >= MAX_GROUPS) { this.fail(`more than ${MAX_GROUPS} buckets and tag sets`); return; }
          g = this.newGroup(b, s);
          this.index.set(key, g);
        }
        this.setBucket[s] = b;
        this.setGroup[s] = g;
      }
      groupOf[i] = g;
      this.rowCount[g]++;
      if (this.seen[g] !== no) {
        this.seen[g] = no;
        touched[count++] = g;
        this.bRows[g] = 1;
        this.bFirst[g] = i;
        this.bLast[g] = i;
        continue;
      }
      this.bRows[g]++;
      const ft = times[this.bFirst[g]];
      if (t < ft) this.bFirst[g] = i; else if (t === ft) ties = true;
      const lt = times[this.bLast[g]];
      if (t > lt) this.bLast[g] = i; else if (t === lt) ties = true;
    }
    // The rows ordered by group: a counting sort over the groups in the order they were touched.
    start[0] = 0;
    for (let k = 0; k < count; k++) {
      const g = touched[k];
      start[k + 1] = start[k] + this.bRows[g];
      this.bPos[g] = start[k];
    }
    for (let i = 0; i < n; i++) perm[this.bPos[groupOf[i]]++] = i;
    const bg: BatchGroups = { touched, count, rows: this.bRows, first: this.bFirst, last: this.bLast, ties, perm, start };
    const byName = new Map(batch.columns.map((c) => [c.column.columnName, c]));
    for (const slot of this.slots) {
      const col = byName.get(slot.field.column.columnName);
      if (!col) continue;
      const why = this.addField(slot, col, n, times, groupOf, bg);
      if (why !== null) { this.fail(`field ${slot.field.column.name}: ${why}`); return; }
    }
  }

  /** Adds one column of a batch to its field's parts; returns why it cannot, or null. */
  private addField(slot: Slot, col: ColumnData, n: number, times: Float64Array, groupOf: Int32Array, bg: BatchGroups): string | null {
    const F = this.nums;
    const W = this.width;
    const v = col.values;
    const valid = col.validity;
    if (slot.kind === 'bool') {
      if (v.kind !== 'bits') return `bool values as ${v.kind}`;
      if (valid === null) {
        const { perm, start } = bg;
        for (let k = 0; k < bg.count; k++) {
          let trues = 0;
          for (let j = start[k]; j < start[k + 1]; j++) trues += bitAt(v.bitmap, v.offset + perm[j]);
          const o = bg.touched[k] * W + slot.at;
          F[o] += start[k + 1] - start[k];
          F[o + 1] += trues;
        }
        return null;
      }
      for (let i = 0; i < n; i++) {
        if (valid !== null && bitAt(valid.bitmap, valid.offset + i) === 0) continue;
        const o = groupOf[i] * W + slot.at;
        F[o]++;
        F[o + 1] += bitAt(v.bitmap, v.offset + i);
      }
      return null;
    }
    if (slot.kind === 'int8') {
      if (v.kind !== 'bigint' && v.kind !== 'number') return `int8 values as ${v.kind}`;
      const B = this.bigs;
      const BW = this.bigWidth;
      for (let i = 0; i < n; i++) {
        if (valid !== null && bitAt(valid.bitmap, valid.offset + i) === 0) continue;
        const x = v.kind === 'bigint' ? v.values[i] : BigInt(v.values[i]);
        const t = times[i];
        const g = groupOf[i];
        const o = g * W + slot.at;
        const ob = g * BW + slot.bigAt;
        if (F[o] === 0) {
          F[o] = 1; F[o + 1] = t; F[o + 2] = t;
          B[ob] = x; B[ob + 1] = x; B[ob + 2] = x; B[ob + 3] = x; B[ob + 4] = x;
          continue;
        }
        F[o]++;
        B[ob] += x;
        if (x < B[ob + 1]) B[ob + 1] = x;
        if (x > B[ob + 2]) B[ob + 2] = x;
        if (t < F[o + 1] || (t === F[o + 1] && x < B[ob + 3])) { F[o + 1] = t; B[ob + 3] = x; }
        if (t > F[o + 2] || (t === F[o + 2] && x > B[ob + 4])) { F[o + 2] = t; B[ob + 4] = x; }
      }
      return null;
    }
    if (v.kind !== 'number') return `${slot.field.column.type} values as ${v.kind}`;
    // Float64Array (the usual field) is read as it is; other number arrays are widened first, so
    // that the loops' element loads stay monomorphic.
    const a = v.values;
    addFloats(F, W, slot.at, a instanceof Float64Array ? a : this.widened(a, n), valid, slot.kind === 'float4', n, times, groupOf, bg);
    return null;
  }

  /** A field's first n numbers as float64, in an array kept for the next field and batch. */
  private widened(a: ArrayLike<number>, n: number): Float64Array {
    if (this.wide.length < n) this.wide = new Float64Array(n);
    const w = this.wide.subarray(0, n);
    for (let i = 0; i < n; i++) w[i] = a[i];
    return w;
  }

  /**
   * The pending rows for buckets at or after `fromUs` as binary COPY tuples, with the names of
   * their columns (levelColumnsDdl's, without all_tags, which keeps its default).
   */
  tuples(fromUs: bigint | null, ingestId: bigint): { names: string[]; rows: TupleWriter } {
    const L = this.intervalUs;
    const from = fromUs === null ? -Infinity : Number(floorDiv(fromUs, L));
    const tags = tagColumns(this.stream);
    const names = ['ingest_id', 'time', ...tags.map((c) => c.columnName), 'rows'];
    for (const slot of this.slots) {
      for (const part of partsOf(slot.field)) {
        names.push(`${slot.field.prefix}_${part}`);
        if (part === 'first' || part === 'last') names.push(`${slot.field.prefix}_${part}_t`);
      }
    }
    const w = new TupleWriter();
    const F = this.nums;
    const B = this.bigs;
    for (let g = 0; g < this.groups; g++) {
      if (this.bucket[g] < from) continue;
      w.row(names.length).int8(ingestId).timestamptz(BigInt(this.bucket[g]) * L);
      const set = this.sets[this.set[g]];
      for (let k = 0; k < tags.length; k++) {
        const v = set[k];
        if (v === null || v === undefined) w.null(); else w.text(v);
      }
      w.int8(this.rowCount[g]);
      for (const slot of this.slots) {
        const o = g * this.width + slot.at;
        const n = F[o];
        if (slot.kind === 'bool') {
          w.int8(n).int8(F[o + 1]);
        } else if (slot.kind === 'int8') {
          const ob = g * this.bigWidth + slot.bigAt;
          w.int8(n);
          if (n === 0) for (let k = 0; k < 7; k++) w.null();
          else w.numeric(B[ob]).numeric(B[ob + 1]).numeric(B[ob + 2]).numeric(B[ob + 3]).int8(F[o + 1]).numeric(B[ob + 4]).int8(F[o + 2]);
        } else {
          w.int8(n);
          if (n === 0) for (let k = 0; k < 7; k++) w.null();
          else w.float8(F[o + 1]).float8(F[o + 2]).float8(F[o + 3]).float8(F[o + 5]).int8(F[o + 4]).float8(F[o + 7]).int8(F[o + 6]);
          if (holdsNaN(slot.field)) {
            const nans = F[o + 8];
            w.int8(nans);
            if (nans === 0) w.null().null();
            else w.int8(F[o + 9]).int8(F[o + 10]);
          }
        }
      }
    }
    return { names, rows: w };
  }
}

/** Adds an upload's pending rows at or after `fromUs` (its finest level's watermark), by binary COPY. */
async function insertPending(tx: PoolClient, stream: Stream, ingestId: bigint, acc: PartialAggregates, fromUs: bigint | null): Promise<void> {
  const { names, rows } = acc.tuples(fromUs, ingestId);
  if (rows.rows === 0) return;
  const copy = new CopyStream(tx, pendingTable(stream), names.map(ident), 1 << 20);
  try {
    await copy.write(rows.bytes());
    await copy.finish();
  } catch (err) {
    await copy.abort('pending rows not written');
    throw err;
  }
}

/**
 * One upload's pending rows, followed by the rollups' ingest observer (invalidate.ts), which reads
 * the levels for both: as the upload begins, it sums the rows per bucket of the finest level and
 * tag set; before commit, with the levels read FOR SHARE, the buckets at or above the finest
 * level's watermark go into the pending table, or — if they cannot — are invalidated for every
 * tag set.
 */
export class UploadPending {
  private acc: PartialAggregates | null = null;
  private span: { start: bigint; end: bigint } | null = null;

  constructor(private readonly stream: Stream, private readonly ingestId: bigint) {}

  /** As the upload begins, with the stream's levels (finest first). */
  start(levels: readonly Level[]): void {
    const finest = levels[0];
    if (finest && finest.pendingFromUs !== null && pendingSupported(this.stream)) this.acc = new PartialAggregates(this.stream, finest.intervalUs);
  }

  add(batch: ColumnBatch): void {
    if (batch.length === 0) return;
    const span = this.span;
    if (span === null) this.span = { start: batch.minTime, end: batch.maxTime };
    else {
      if (batch.minTime < span.start) span.start = batch.minTime;
      if (batch.maxTime > span.end) span.end = batch.maxTime;
    }
    this.acc?.add(batch);
  }

  /** Before commit, with the levels read FOR SHARE: writes the pending rows, or returns the invalidations that stand in for them. */
  async commit(tx: PoolClient, levels: readonly Level[]): Promise<Invalidation[]> {
    const finest = levels[0];
    const { acc, span } = this;
    if (span === null || !finest || finest.pendingFromUs === null) return [];
    if (acc !== null && acc.worthKeeping && acc.intervalUs === finest.intervalUs) {
      await insertPending(tx, this.stream, this.ingestId, acc, finest.watermarkUs);
      return [];
    }
    const L = finest.intervalUs;
    const w = finest.watermarkUs;
    const first = floorDiv(span.start, L) * L;
    const start = w !== null && w > first ? w : first;
    const end = (floorDiv(span.end, L) + 1n) * L;
    return start < end ? [{ level: finest.name, values: null, start, end }] : [];
  }
}
