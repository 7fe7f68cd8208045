// What readers of a stream's raw rows call to see compressed chunks too. Two routes:
//
// - compressedRows / mergeWithCompressed: the raw query path. Segments overlapping the range are
//   decoded (ColumnBatch) a few at a time and merged, in time order, with the plain rows the
//   table yields — memory stays bounded by the segments open at once.
// - rawSource: SQL readers (aggregates, rollup refresh, trace). When segments overlap the range,
//   the stream table is replaced in their FROM by the table UNION ALL the decoded rows, passed as
//   arrays; when none do (the common case), by the table itself, at no cost.
import type { Queryable } from '../db/pool.ts';
import { ident } from '../db/sql.ts';
import { pgTimestamp } from '../domain/time.ts';
import type { ColumnBatch, Stream, StreamColumn } from '../domain/types.ts';
import { streamTable } from '../streams/catalog.ts';
import { cellReader, float4Text, float8Text, rowCells } from './cells.ts';
import { decodeOrder, decodeSegment } from './segment.ts';
import { type SegmentFilter, type SegmentRef, findSegments, loadSegments } from './store.ts';

type Cell = string | null;
const LOAD_AT_ONCE = 8;

export interface RawRange {
  from: bigint | null;
  to: bigint | null;
  tags?: ReadonlyMap<StreamColumn, readonly string[]>;
}

const filterOf = (stream: Stream, r: RawRange): SegmentFilter => ({ streamId: stream.id, from: r.from, to: r.to, tags: r.tags });

/** Decoded segments overlapping the range, in order of their first time, as ColumnBatches of `columns`. */
export async function* compressedBatches(q: Queryable, stream: Stream, range: RawRange, columns: readonly StreamColumn[]): AsyncGenerator<{ ingestId: bigint; batch: ColumnBatch }> {
  const refs = await findSegments(q, filterOf(stream, range));
  for (let i = 0; i < refs.length; i += LOAD_AT_ONCE) {
    const group = refs.slice(i, i + LOAD_AT_ONCE);
    for (const seg of await loadSegments(q, stream.id, group)) yield decodeSegment(seg, columns);
  }
}

/** A decoded segment being read; `tn` holds its times as doubles, compared first (no BigInt made). */
interface Cursor { batch: ColumnBatch; tn: Float64Array; readers: ((i: number) => Cell)[]; i: number }

class Heap {
  items: Cursor[] = [];
  // Number() of a bigint is monotonic: unequal doubles order the times; equal ones are compared exactly.
  private less = (a: Cursor, b: Cursor): boolean => {
    const x = a.tn[a.i];
    const y = b.tn[b.i];
    return x < y || (x === y && a.batch.time[a.i] < b.batch.time[b.i]);
  };
  push(c: Cursor): void {
    const h = this.items;
    h.push(c);
    let k = h.length - 1;
    while (k > 0) {
      const p = (k - 1) >> 1;
      if (!this.less(h[k], h[p])) break;
      [h[k], h[p]] = [h[p], h[k]];
      k = p;
    }
  }
  /** Re-places the top after its cursor moved (or drops it when it is exhausted). */
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
      if (l < h.length && this.less(h[l], h[m])) m = l;
      if (r < h.length && this.less(h[r], h[m])) m = r;
      if (m === k) return;
      [h[k], h[m]] = [h[m], h[k]];
      k = m;
    }
  }
}

/** The rows of segments overlapping [from, to) (tag filters applied), in time order: [time, cells [time µs, ...columns]]. */
export async function* compressedRows(q: Queryable, stream: Stream, range: RawRange, columns: readonly StreamColumn[], refs?: SegmentRef[]): AsyncGenerator<[bigint, Cell[]]> {
  const all = refs ?? await findSegments(q, filterOf(stream, range));
  const heap = new Heap();
  let next = 0;
  const open = async (): Promise<void> => {
    const group = all.slice(next, next + LOAD_AT_ONCE);
    next += group.length;
    for (const seg of await loadSegments(q, stream.id, group)) {
      const { batch } = decodeSegment(seg, columns);
      // Skip to the range: a segment is in time order.
      let i = 0;
      if (range.from !== null) while (i < batch.length && batch.time[i] < range.from) i++;
      if (i < batch.length) heap.push({ batch, tn: Float64Array.from(batch.time, Number), readers: batch.columns.map(cellReader), i });
    }
  };
  for (;;) {
    // Open every segment that may hold a row before the heap's smallest.
    while (next < all.length && (heap.items.length === 0 || all[next].timeMin <= heap.items[0].batch.time[heap.items[0].i])) await open();
    if (heap.items.length === 0) return;
    const top = heap.items[0];
    const t = top.batch.time[top.i];
    if (range.to !== null && t >= range.to) {
      // Past the range in this segment: nothing more from it.
      top.i = top.batch.length;
      heap.fixTop();
      continue;
    }
    yield [t, rowCells(top.batch, top.readers, top.i)];
    top.i++;
    heap.fixTop();
  }
}

/**
 * Merges pages of plain rows [time µs, ...] (ordered by time) with the compressed rows of the
 * same range and columns; `limit` caps the merged rows.
 */
export async function* mergeWithCompressed(
  q: Queryable, stream: Stream, range: RawRange, columns: readonly StreamColumn[], plain: AsyncGenerator<Cell[][]>, limit: number | null, pageRows = 5000,
): AsyncGenerator<Cell[][]> {
  // The plain rows' query starts first: it holds its chunks until it ends, so a conversion that
  // commits from here on waits for it, and one that committed before has its segments found below.
  const head = await plain.next();
  const refs = await findSegments(q, filterOf(stream, range));
  const rest = async function* (): AsyncGenerator<Cell[][]> {
    if (!head.done) yield head.value;
    yield* plain;
  };
  if (refs.length === 0) {
    yield* rest();
    return;
  }
  const packed = compressedRows(q, stream, range, columns, refs);
  let c = await packed.next();
  let page: Cell[][] = [];
  let sent = 0;
  const full = (): boolean => limit !== null && sent + page.length >= limit;
  try {
    for await (const rows of rest()) {
      for (const row of rows) {
        const t = BigInt(row[0] as string);
        while (!c.done && c.value[0] < t && !full()) {
          page.push(c.value[1]);
          c = await packed.next();
          if (page.length >= pageRows) { sent += page.length; yield page; page = []; }
        }
        if (full()) break;
        page.push(row);
        if (page.length >= pageRows) { sent += page.length; yield page; page = []; }
      }
      if (full()) break;
    }
    while (!c.done && !full()) {
      page.push(c.value[1]);
      c = await packed.next();
      if (page.length >= pageRows) { sent += page.length; yield page; page = []; }
    }
    if (page.length > 0) yield page;
  } finally {
    await packed.return(undefined);
    await plain.return(undefined);
  }
}

/** Compressed rows per ingest within [from, to): whole segments from their metadata, the others by their times. */
export async function countCompressedPerIngest(q: Queryable, stream: Stream, range: RawRange): Promise<Map<string, number>> {
  const refs = await findSegments(q, filterOf(stream, range));
  const out = new Map<string, number>();
  const add = (id: string, n: number): void => { if (n > 0) out.set(id, (out.get(id) ?? 0) + n); };
  const partial: SegmentRef[] = [];
  for (const r of refs) {
    const inside = (range.from === null || r.timeMin >= range.from) && (range.to === null || r.timeMax < range.to);
    if (inside) add(r.ingestId, r.rowCount);
    else partial.push(r);
  }
  for (let i = 0; i < partial.length; i += LOAD_AT_ONCE) {
    for (const seg of await loadSegments(q, stream.id, partial.slice(i, i + LOAD_AT_ONCE))) {
      const { batch } = decodeSegment(seg, []);
      let n = 0;
      for (let k = 0; k < batch.length; k++) {
        const t = batch.time[k];
        if ((range.from === null || t >= range.from) && (range.to === null || t < range.to)) n++;
      }
      add(seg.ingestId, n);
    }
  }
  return out;
}

/** How many compressed rows [from, to) holds. */
export async function countCompressed(q: Queryable, stream: Stream, range: RawRange): Promise<number> {
  let n = 0;
  for (const v of (await countCompressedPerIngest(q, stream, range)).values()) n += v;
  return n;
}

/** SQL that keeps conversions of the stream's chunks out until the transaction ends (see rawSource). */
export function lockRawRows(stream: Stream): string {
  return `LOCK TABLE ${streamTable(stream)} IN ACCESS SHARE MODE`;
}

/** A FROM item standing for the stream's raw rows (the table, plus decoded segments if any). */
export interface RawSource {
  /** SQL for the FROM item; pushes its parameters onto `params`. */
  relation(params: unknown[]): string;
  /** Rows decoded from segments (0: the table alone). */
  decodedRows: number;
}

const SQL_TYPE: Record<string, string> = {
  float8: 'float8', float4: 'float4', int2: 'int2', int4: 'int4', int8: 'int8', bool: 'bool', text: 'text', timestamptz: 'timestamptz',
};

/** Text PostgreSQL parses back to the same value (payloads of NaN aside, which no aggregate sees). */
function arrayValue(c: StreamColumn, cell: Cell): Cell {
  if (cell === null) return null;
  if (c.type === 'timestamptz') return pgTimestamp(BigInt(cell));
  return cell;
}

/**
 * `q` must be in a transaction that has locked the stream table (lockRawRows) before its first
 * snapshot: a conversion then either committed before (its segments are found) or waits for it.
 */
export async function rawSource(q: Queryable, stream: Stream, range: RawRange): Promise<RawSource> {
  const refs = await findSegments(q, filterOf(stream, range));
  const table = streamTable(stream);
  if (refs.length === 0) return { relation: () => table, decodedRows: 0 };
  const cols = stream.columns;
  // Rows in the order the chunks' tables held them (chunk by chunk, then ingest, then place), so
  // that float sums add up in the same order as before compression.
  const chunkRank = new Map<number, bigint>();
  for (const r of refs) if (!chunkRank.has(r.chunkId) || r.timeMin < (chunkRank.get(r.chunkId) as bigint)) chunkRank.set(r.chunkId, r.timeMin);
  const picked: { rank: bigint; ingest: bigint; place: bigint; time: bigint; cells: Cell[]; ingestText: string }[] = [];
  for (let i = 0; i < refs.length; i += LOAD_AT_ONCE) {
    for (const seg of await loadSegments(q, stream.id, refs.slice(i, i + LOAD_AT_ONCE))) {
      const { batch, ingestId } = decodeSegment(seg, cols);
      const places = decodeOrder(seg);
      const readers = batch.columns.map(cellReader);
      const rank = chunkRank.get(seg.chunkId) as bigint;
      for (let r = 0; r < batch.length; r++) {
        const t = batch.time[r];
        if ((range.from !== null && t < range.from) || (range.to !== null && t >= range.to)) continue;
        picked.push({ rank, ingest: ingestId, place: places[r], time: t, cells: readers.map((read, k) => arrayValue(cols[k], read(r))), ingestText: seg.ingestId });
      }
    }
  }
  const cmp = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
  picked.sort((a, b) => cmp(a.rank, b.rank) || cmp(a.ingest, b.ingest) || cmp(a.place, b.place));
  const time = picked.map((p) => pgTimestamp(p.time));
  const ingest = picked.map((p) => p.ingestText);
  const values = cols.map((_, k) => picked.map((p) => p.cells[k]));
  const names = ['"time"', 'ingest_id', ...cols.map((c) => ident(c.columnName))];
  return {
    decodedRows: picked.length,
    relation(params: unknown[]): string {
      const arrays = [[time, 'timestamptz'], [ingest, 'int8'], ...cols.map((c, k) => [values[k], SQL_TYPE[c.type]] as const)] as const;
      const args = arrays.map(([arr, type]) => { params.push(arr); return `$${params.length}::${type}[]`; });
      // The decoded rows first: rows that came late into a compressed chunk were stored after them.
      return `(SELECT * FROM unnest(${args.join(', ')}) AS u(${names.join(', ')}) UNION ALL SELECT ${names.join(', ')} FROM ${table})`;
    },
  };
}

export { float4Text, float8Text };
