// What readers of a stream's raw rows call to see compressed chunks too. Two routes:
//
// - merge-batches.ts: the raw query path. Segments overlapping the range are decoded
//   (ColumnBatch) a few at a time and merged, in time order, with the plain rows' batches —
//   memory stays bounded by the segments open at once.
// - rawSource: SQL readers (aggregates, rollup refresh, trace). When segments overlap the range,
//   the stream table is replaced in their FROM by the table UNION ALL the decoded rows, passed as
//   arrays; when none do (the common case), by the table itself, at no cost.
import type { Queryable } from '../db/pool.ts';
import { ident } from '../db/sql.ts';
import { pgTimestamp } from '../domain/time.ts';
import type { ColumnBatch, Stream, StreamColumn } from '../domain/types.ts';
import { streamTable } from '../streams/catalog.ts';
import { cellReader, float4Text, float8Text } from './cells.ts';
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
 * `segments`: the segments to decode, when the caller found them (and answers the others itself);
 * by default every segment overlapping the range.
 */
export async function rawSource(q: Queryable, stream: Stream, range: RawRange, segments?: readonly SegmentRef[]): Promise<RawSource> {
  const refs = segments ?? await findSegments(q, filterOf(stream, range));
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
