// The raw query path over compressed chunks: the plain rows' batches (binary COPY, in time order)
// merged with the decoded segments of the same range, in time order, into new batches of the
// kinds the output formats take (number, bigint, bits, strings). With no segment in the range —
// the usual case — the plain batches pass through untouched.
//
// Values are copied, not converted: floats by their bits (NaN payloads and −0 stay), int8 and
// times as bigints, so the merged answer is the one the plain rows would have given. They are
// copied in runs: a source's rows that come before every other source's current row (and the
// next segment's first time) go into the batch in one typed-array copy per column — loggers
// write stretches of one tag, so runs are long, and the merge costs little beside the decoding.
import type { Queryable } from '../db/pool.ts';
import type { ColumnBatch, ColumnData, ColumnValues, Stream, StreamColumn } from '../domain/types.ts';
import type { RawRange } from './read.ts';
import { decodeSegment } from './segment.ts';
import { type SegmentRef, findSegments, loadSegments } from './store.ts';

const LOAD_AT_ONCE = 8;

/** Copies rows [from, from + n) of one column of a source batch to rows [to, to + n) of an output column. */
type Copier = (from: number, to: number, n: number) => void;

interface Cursor {
  batch: ColumnBatch;
  /** Times as doubles, compared first (exact ties fall back to the bigints). */
  tn: Float64Array;
  i: number;
  copiers: Copier[] | null;
}

function less(a: Cursor, b: Cursor): boolean {
  const x = a.tn[a.i];
  const y = b.tn[b.i];
  return x < y || (x === y && a.batch.time[a.i] < b.batch.time[b.i]);
}

/**
 * How many of c's rows from its current one come before every other cursor's current row and
 * before `bound` (at least its current row, which is the smallest), `room` at most.
 */
function runLength(c: Cursor, others: readonly (Cursor | null | undefined)[], bound: bigint | null, room: number): number {
  let limitN = Infinity;
  let limitT: bigint | null = null;
  const lower = (n: number, t: bigint): void => {
    if (n < limitN || (n === limitN && limitT !== null && t < limitT)) { limitN = n; limitT = t; }
  };
  for (const o of others) if (o) lower(o.tn[o.i], o.batch.time[o.i]);
  if (bound !== null) lower(Number(bound), bound);
  const end = Math.min(c.batch.length, c.i + room);
  let j = c.i + 1;
  if (limitT === null) return end - c.i;
  const { tn, batch: { time } } = c;
  while (j < end && (tn[j] < limitN || (tn[j] === limitN && time[j] < (limitT as bigint)))) j++;
  return j - c.i;
}

/** A binary heap of cursors on their current row's time. */
class CursorHeap {
  readonly items: Cursor[] = [];
  push(c: Cursor): void {
    const h = this.items;
    h.push(c);
    let k = h.length - 1;
    while (k > 0) {
      const p = (k - 1) >> 1;
      if (!less(h[k], h[p])) break;
      [h[k], h[p]] = [h[p], h[k]];
      k = p;
    }
  }
  /** Re-places the top after its cursor moved, dropping it when it is exhausted. */
  fixTop(): void {
    const h = this.items;
    if (h[0].i >= h[0].batch.length) {
      const last = h.pop() as Cursor;
      if (h.length === 0) return;
      h[0] = last;
    }
    let k = 0;
    for (;;) {
      const l = 2 * k + 1;
      const r = l + 1;
      let m = k;
      if (l < h.length && less(h[l], h[m])) m = l;
      if (r < h.length && less(h[r], h[m])) m = r;
      if (m === k) return;
      [h[k], h[m]] = [h[m], h[k]];
      k = m;
    }
  }
}

type Out =
  | { kind: 'words'; words: Uint32Array; per: number; typed: Float64Array | Float32Array }
  | { kind: 'ints'; values: Int16Array | Int32Array }
  | { kind: 'bigint'; values: BigInt64Array }
  | { kind: 'bits'; bitmap: Uint8Array }
  | { kind: 'strings'; values: (string | null)[] };

/** Output batch under construction. */
class BatchBuilder {
  time: BigInt64Array;
  outs: Out[];
  valid: Uint8Array[];
  length = 0;

  constructor(private readonly columns: readonly StreamColumn[], readonly capacity: number) {
    this.time = new BigInt64Array(capacity);
    this.outs = columns.map((c) => makeOut(c, capacity));
    this.valid = columns.map(() => new Uint8Array(Math.ceil(capacity / 8)));
  }

  get full(): boolean { return this.length >= this.capacity; }

  /** Copiers that move row `from` of `batch` to row `to` of this builder, one per column. */
  copiersFor(batch: ColumnBatch): Copier[] {
    return this.columns.map((col, k) => {
      const data = batch.columns.find((d) => d.column.columnName === col.columnName);
      const valid = this.valid[k];
      if (!data) return () => undefined; // the column is absent from the source: NULL (bit left 0)
      return copier(data, this.outs[k], valid);
    });
  }

  /** Takes the cursor's next n rows (they fit). */
  take(c: Cursor, n: number): void {
    const to = this.length;
    this.length += n;
    this.time.set(c.batch.time.subarray(c.i, c.i + n), to);
    const cs = c.copiers as Copier[];
    for (let k = 0; k < cs.length; k++) cs[k](c.i, to, n);
    c.i += n;
  }

  build(): ColumnBatch {
    const n = this.length;
    const columns: ColumnData[] = this.columns.map((column, k) => ({ column, values: finish(this.outs[k], n), validity: { bitmap: this.valid[k], offset: 0 } }));
    const time = this.time.subarray(0, n);
    return { length: n, time, minTime: time[0], maxTime: time[n - 1], columns };
  }
}

function makeOut(c: StreamColumn, n: number): Out {
  switch (c.type) {
    case 'float8': { const typed = new Float64Array(n); return { kind: 'words', typed, per: 2, words: new Uint32Array(typed.buffer) }; }
    case 'float4': { const typed = new Float32Array(n); return { kind: 'words', typed, per: 1, words: new Uint32Array(typed.buffer) }; }
    case 'int2': return { kind: 'ints', values: new Int16Array(n) };
    case 'int4': return { kind: 'ints', values: new Int32Array(n) };
    case 'int8': case 'timestamptz': return { kind: 'bigint', values: new BigInt64Array(n) };
    case 'bool': return { kind: 'bits', bitmap: new Uint8Array(Math.ceil(n / 8)) };
    default: return { kind: 'strings', values: new Array<string | null>(n).fill(null) };
  }
}

function finish(out: Out, n: number): ColumnValues {
  switch (out.kind) {
    case 'words': return { kind: 'number', values: out.typed.subarray(0, n) };
    case 'ints': return { kind: 'number', values: out.values.subarray(0, n) };
    case 'bigint': return { kind: 'bigint', values: out.values.subarray(0, n) };
    case 'bits': return { kind: 'bits', bitmap: out.bitmap, offset: 0 };
    case 'strings': return { kind: 'strings', values: out.values.slice(0, n) };
  }
}

const setBit = (bitmap: Uint8Array, i: number): void => { bitmap[i >> 3] |= 1 << (i & 7); };
const bitAt = (bitmap: Uint8Array, i: number): boolean => (bitmap[i >> 3] & (1 << (i & 7))) !== 0;

/** Sets bits [at, at + n) of a bitmap. */
function setBits(bitmap: Uint8Array, at: number, n: number): void {
  const end = at + n;
  let i = at;
  for (; i < end && (i & 7) !== 0; i++) setBit(bitmap, i);
  for (; i + 8 <= end; i += 8) bitmap[i >> 3] = 0xff;
  for (; i < end; i++) setBit(bitmap, i);
}

function copier(data: ColumnData, out: Out, valid: Uint8Array): Copier {
  const v = data.validity;
  const bulk = bulkMover(data.values, out);
  if (bulk) {
    // Values in one copy; then the validity, with a NULL's slot left zero as in a fresh column.
    if (!v) return (from, to, n) => { bulk.copy(from, to, n); setBits(valid, to, n); };
    return (from, to, n) => {
      bulk.copy(from, to, n);
      for (let i = 0; i < n; i++) {
        if (bitAt(v.bitmap, v.offset + from + i)) setBit(valid, to + i);
        else bulk.clear(to + i);
      }
    };
  }
  const move = valueMover(data.values, out);
  const isValid = v ? (i: number) => bitAt(v.bitmap, v.offset + i) : () => true;
  return (from, to, n) => {
    for (let i = 0; i < n; i++) if (isValid(from + i) && move(from + i, to + i)) setBit(valid, to + i);
  };
}

/** Copies runs of fixed-width values as they are (floats by their words: NaN payloads and −0 kept); null for other kinds. */
function bulkMover(values: ColumnValues, out: Out): { copy: Copier; clear(at: number): void } | null {
  if (out.kind === 'words' && values.kind === 'number') {
    const src = values.values;
    const dst = out.words;
    const per = out.per;
    const clear = (at: number): void => { dst.fill(0, per * at, per * (at + 1)); };
    if ((per === 2 && src instanceof Float64Array) || (per === 1 && src instanceof Float32Array)) {
      const words = new Uint32Array(src.buffer, src.byteOffset, src.length * per);
      return { copy: (f, t, n) => { dst.set(words.subarray(per * f, per * (f + n)), per * t); }, clear };
    }
    const typed = out.typed;
    return { copy: (f, t, n) => { typed.set(src.subarray(f, f + n), t); }, clear };
  }
  if (out.kind === 'ints' && values.kind === 'number') {
    const src = values.values;
    const dst = out.values;
    return { copy: (f, t, n) => { dst.set(src.subarray(f, f + n), t); }, clear: (at) => { dst[at] = 0; } };
  }
  if (out.kind === 'bigint' && values.kind === 'bigint') {
    const src = values.values;
    const dst = out.values;
    return { copy: (f, t, n) => { dst.set(src.subarray(f, f + n), t); }, clear: (at) => { dst[at] = 0n; } };
  }
  return null;
}

/** Moves one value of the kinds bulkMover does not copy; false when the value is NULL (a dictionary's null entry). */
function valueMover(values: ColumnValues, out: Out): (from: number, to: number) => boolean {
  const decoder = new TextDecoder();
  if (out.kind === 'bits' && values.kind === 'bits') {
    const { bitmap, offset } = values;
    const dst = out.bitmap;
    return (f, t) => { if (bitAt(bitmap, offset + f)) setBit(dst, t); return true; };
  }
  if (out.kind === 'strings') {
    const dst = out.values;
    switch (values.kind) {
      case 'strings': { const src = values.values; return (f, t) => { dst[t] = src[f]; return src[f] !== null; }; }
      case 'utf8': {
        const { offsets, data } = values;
        return (f, t) => { dst[t] = decoder.decode(data.subarray(Number(offsets[f]), Number(offsets[f + 1]))); return true; };
      }
      case 'dictionary': {
        const entries = values.entries.map((e) => (e === null ? null : decoder.decode(e)));
        const idx = values.indices;
        return (f, t) => { const e = entries[Number(idx[f])]; dst[t] = e; return e !== null; };
      }
      default: break;
    }
  }
  throw new Error(`raw rows: a ${values.kind} column cannot be merged into ${out.kind}`);
}

/**
 * The plain batches merged with the compressed rows of the same range and columns, `limit` rows
 * at most. The plain rows' COPY starts first: it holds its chunks until it ends, so a conversion
 * committing from then on waits for it, and one that committed before has its segments found here.
 */
export async function* mergeBatchesWithCompressed(
  q: Queryable, stream: Stream, range: RawRange, columns: readonly StreamColumn[],
  plain: AsyncGenerator<ColumnBatch>, limit: number | null, batchRows: number,
): AsyncGenerator<ColumnBatch> {
  const head = await plain.next();
  let refs: SegmentRef[];
  try {
    refs = await findSegments(q, { streamId: stream.id, from: range.from, to: range.to, tags: range.tags });
  } catch (err) {
    await plain.return(undefined);
    throw err;
  }
  if (refs.length === 0) {
    if (!head.done) yield head.value;
    yield* plain;
    return;
  }
  let builder = new BatchBuilder(columns, batchRows);
  const heap = new CursorHeap();
  let next = 0;
  let sent = 0;
  const cursor = (batch: ColumnBatch, i: number): Cursor => ({ batch, tn: Float64Array.from(batch.time, Number), i, copiers: builder.copiersFor(batch) });
  const open = async (): Promise<void> => {
    const group = refs.slice(next, next + LOAD_AT_ONCE);
    next += group.length;
    for (const seg of await loadSegments(q, stream.id, group)) {
      const { batch } = decodeSegment(seg, columns);
      let i = 0;
      if (range.from !== null) while (i < batch.length && batch.time[i] < range.from) i++;
      if (range.to !== null) {
        let n = batch.length;
        while (n > i && batch.time[n - 1] >= range.to) n--;
        if (n < batch.length) Object.assign(batch, { length: n });
      }
      if (i < batch.length) heap.push(cursor(batch, i));
    }
  };
  let p: Cursor | null = head.done || head.value.length === 0 ? null : cursor(head.value, 0);
  let plainDone = head.done === true;
  try {
    for (;;) {
      if (p === null && !plainDone) {
        const r = await plain.next();
        if (r.done) plainDone = true;
        else if (r.value.length > 0) p = cursor(r.value, 0);
        continue;
      }
      const top = heap.items[0] as Cursor | undefined;
      // Open every segment that may hold a row before the smallest row in hand.
      const smallest = top && p ? (less(top, p) ? top : p) : (top ?? p);
      if (next < refs.length && (smallest === null || refs[next].timeMin <= smallest.batch.time[smallest.i])) {
        await open();
        continue;
      }
      if (smallest === null) break;
      if (limit !== null && sent + builder.length >= limit) break;
      // A run of rows at once: those before every other cursor's row and the next segment's start.
      let room = builder.capacity - builder.length;
      if (limit !== null) room = Math.min(room, limit - sent - builder.length);
      const h = heap.items;
      const others = smallest === p ? [h[0]] : [p, h[1], h[2]];
      const bound = next < refs.length ? refs[next].timeMin : null;
      builder.take(smallest, runLength(smallest, others, bound, room));
      if (smallest === p) { if (p.i >= p.batch.length) p = null; } else heap.fixTop();
      if (builder.full) {
        sent += builder.length;
        yield builder.build();
        builder = new BatchBuilder(columns, batchRows);
        // Cursors copy into the builder they were made for: remake their copiers.
        if (p) p.copiers = builder.copiersFor(p.batch);
        for (const c of heap.items) c.copiers = builder.copiersFor(c.batch);
      }
    }
    if (builder.length > 0) yield builder.build();
  } finally {
    await plain.return(undefined);
  }
}
