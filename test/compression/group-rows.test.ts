// Grouping a chunk's rows in scan order (group-rows.ts): rows of one tag set and ingest become
// segments in time order, whatever order the scan returned them in, each row keeping its place in
// the scan; groups interleaved in the scan come out apart; a group cut at SEGMENT_ROWS; NULLs kept.
import { describe, expect, it } from 'vitest';
import type { StreamColumn } from '../../src/domain/types.ts';
import { PG_EPOCH_OFFSET_US } from '../../src/copy/binary-format.ts';
import { RowGrouper } from '../../src/compression/group-rows.ts';
import { type EncodedSegment, SEGMENT_ROWS, decodeOrder, decodeSegment } from '../../src/compression/segment.ts';

const col = (name: string, role: 'tag' | 'field', type: StreamColumn['type']): StreamColumn =>
  ({ name, columnName: name, role, type, unit: null, description: null });
const tags = [col('sample', 'tag', 'text')];
const fields = [col('v', 'field', 'float8')];

/** One COPY tuple ["time", ingest_id, sample, v] and its fields' offsets and lengths. */
function tuple(timeUs: bigint, ingest: bigint, sample: string, v: number | null): [Buffer, Int32Array, Int32Array] {
  const s = Buffer.from(sample);
  const buf = Buffer.alloc(2 + 12 + 12 + 4 + s.length + 12);
  const off = new Int32Array(4);
  const len = new Int32Array(4);
  let p = 0;
  buf.writeInt16BE(4, p); p += 2;
  const field = (k: number, l: number, write: (at: number) => void): void => { buf.writeInt32BE(l, p); p += 4; off[k] = p; len[k] = l; write(p); p += l; };
  field(0, 8, (at) => buf.writeBigInt64BE(timeUs - PG_EPOCH_OFFSET_US, at));
  field(1, 8, (at) => buf.writeBigInt64BE(ingest, at));
  field(2, s.length, (at) => s.copy(buf, at));
  if (v === null) { buf.writeInt32BE(-1, p); off[3] = p + 4; len[3] = -1; } else field(3, 8, (at) => buf.writeDoubleBE(v, at));
  return [buf, off, len];
}

function decoded(s: EncodedSegment): { sample: string | null; ingest: string; time: bigint[]; place: bigint[]; v: (number | null)[] } {
  const stored = { ingestId: s.ingestId, chunkId: 1, tags: s.tags, rowCount: s.rowCount, timeData: s.timeData, orderData: s.orderData, columns: s.columns, data: s.data };
  const { batch } = decodeSegment(stored, fields);
  const { values, validity } = batch.columns[0];
  const v = values.kind === 'number' ? [...values.values].map((x, i) => (validity && !((validity.bitmap[i >> 3] >> (i & 7)) & 1) ? null : x)) : [];
  return { sample: s.tags.sample, ingest: s.ingestId, time: [...batch.time], place: [...decodeOrder(stored)], v };
}

describe('grouping rows in scan order', () => {
  it('sorts a group whose rows came out of time order, keeps each row\'s place, and keeps interleaved groups apart', () => {
    const out: EncodedSegment[] = [];
    const g = new RowGrouper(tags, fields, (s) => out.push(s));
    const rows: [bigint, bigint, string, number][] = [
      [50n, 7n, 'A', 5], [10n, 7n, 'B', 1], [30n, 7n, 'A', 3], [40n, 7n, 'A', 4], [20n, 7n, 'B', 2], [10n, 7n, 'A', 1], [20n, 8n, 'A', 9], [20n, 7n, 'A', 2],
    ];
    for (const r of rows) g.add(...tuple(...r));
    g.finish();
    const segs = out.map(decoded).sort((a, b) => `${a.sample}${a.ingest}`.localeCompare(`${b.sample}${b.ingest}`));
    expect(segs).toEqual([
      { sample: 'A', ingest: '7', time: [10n, 20n, 30n, 40n, 50n], place: [6n, 8n, 3n, 4n, 1n], v: [1, 2, 3, 4, 5] },
      { sample: 'A', ingest: '8', time: [20n], place: [7n], v: [9] },
      { sample: 'B', ingest: '7', time: [10n, 20n], place: [2n, 5n], v: [1, 2] },
    ]);
  });

  it('cuts a group in time order at SEGMENT_ROWS as its rows come', () => {
    const out: EncodedSegment[] = [];
    const g = new RowGrouper(tags, fields, (s) => out.push(s));
    const n = SEGMENT_ROWS + 10;
    for (let i = 0; i < n; i++) g.add(...tuple(BigInt(i) * 1000n, 1n, i % 2 === 0 ? 'A' : 'B', i));
    expect(out.map((s) => s.rowCount)).toEqual([]);
    for (let i = n; i < 2 * SEGMENT_ROWS; i++) g.add(...tuple(BigInt(i) * 1000n, 1n, i % 2 === 0 ? 'A' : 'B', i));
    expect(out.map((s) => [s.tags.sample, s.rowCount])).toEqual([['A', SEGMENT_ROWS], ['B', SEGMENT_ROWS]]);
    g.finish();
    expect(out.length).toBe(2);
  });

  it('keeps NULLs where they were, in a group whose columns are reused after a cut', () => {
    const out: EncodedSegment[] = [];
    const g = new RowGrouper(tags, fields, (s) => out.push(s));
    const n = 2 * SEGMENT_ROWS + 5;
    // NULLs in the first segment only, then none, then NULLs again in the last rows.
    const value = (i: number): number | null => ((i < SEGMENT_ROWS && i % 7 === 0) || i === n - 2 ? null : i / 4);
    for (let i = 0; i < n; i++) g.add(...tuple(BigInt(i) * 1000n, 1n, 'A', value(i)));
    g.finish();
    const segs = out.map(decoded);
    expect(segs.map((s) => s.v.length)).toEqual([SEGMENT_ROWS, SEGMENT_ROWS, 5]);
    expect(segs.flatMap((s) => s.v)).toEqual(Array.from({ length: n }, (_, i) => value(i)));
  });
});
