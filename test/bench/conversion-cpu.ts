// The compression worker's CPU per row without PostgreSQL: the bench's logger rows (section 5 of
// the compression bench: 20 samples in runs of 1,000 rows, 10 channels with 3 and 4 decimals, a
// counter, a flag) as the binary COPY a chunk's scan returns, pushed through the worker's steps
// (CopyRowParser, RowGrouper with SegmentBuilder and the codecs, segmentCopyRows) in 64 KB
// pieces. `npx tsx test/bench/conversion-cpu.ts` (BENCH_ROWS rows, 1,000,000; BENCH_REPS, 3).
import { createHash } from 'node:crypto';
import { COPY_SIGNATURE, PG_EPOCH_OFFSET_US } from '../../src/copy/binary-format.ts';
import type { StreamColumn } from '../../src/domain/types.ts';
import { CopyRowParser } from '../../src/compression/copy-rows.ts';
import { RowGrouper } from '../../src/compression/group-rows.ts';
import type { EncodedSegment } from '../../src/compression/segment.ts';
import { segmentCopyRows } from '../../src/compression/segment-copy.ts';

const N = Number(process.env.BENCH_ROWS ?? 1_000_000);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const T0 = 1_709_251_200_000_000n;

const col = (name: string, role: 'tag' | 'field', type: StreamColumn['type']): StreamColumn =>
  ({ name, columnName: name, role, type, unit: null, description: null });
const tags = [col('sample', 'tag', 'text')];
const fields = [...Array.from({ length: 10 }, (_, c) => col(`ch${c}`, 'field', 'float8')), col('counter', 'field', 'int4'), col('flag', 'field', 'bool')];

function copyData(n: number): Buffer {
  const rowBytes = 2 + 12 + 12 + 4 + 9 + 10 * 12 + 8 + 5;
  const buf = Buffer.alloc(19 + n * rowBytes + 2);
  COPY_SIGNATURE.copy(buf, 0);
  let p = 19;
  for (let i = 0; i < n; i++) {
    buf.writeInt16BE(2 + tags.length + fields.length, p); p += 2;
    buf.writeInt32BE(8, p); buf.writeBigInt64BE(T0 + BigInt(i) * 10_000n - PG_EPOCH_OFFSET_US, p + 4); p += 12;
    buf.writeInt32BE(8, p); buf.writeBigInt64BE(7n, p + 4); p += 12;
    buf.writeInt32BE(9, p); p += 4; p += buf.write(`sample-${String(Math.floor(i / 1000) % 20).padStart(2, '0')}`, p, 'latin1');
    for (let c = 0; c < 10; c++) {
      const q = c < 5 ? 1e3 : 1e4;
      buf.writeInt32BE(8, p); buf.writeDoubleBE(Math.round((Math.sin(i / (50 + c)) * (c + 1) + c) * q) / q, p + 4); p += 12;
    }
    buf.writeInt32BE(4, p); buf.writeInt32BE(i, p + 4); p += 8;
    buf.writeInt32BE(1, p); buf[p + 4] = i % 20 === 0 ? 1 : 0; p += 5;
  }
  buf.writeInt16BE(-1, p);
  return buf;
}

const data = copyData(N);
const PIECE = 65_536;
const times: number[] = [];
for (let r = 0; r < REPS; r++) {
  const t0 = performance.now();
  let ready: EncodedSegment[] = [];
  let rows = 0;
  let out = 0;
  let id = 0n;
  const hash = createHash('sha256');
  const grouper = new RowGrouper(tags, fields, (s) => { ready.push(s); });
  const parser = new CopyRowParser(2 + tags.length + fields.length, (buf, off, len) => { rows++; grouper.add(buf, off, len); });
  const ship = (): void => {
    if (ready.length === 0) return;
    const ids = ready.map(() => ++id);
    const rows = segmentCopyRows(1, 1, ready, ids);
    out += rows.segments.length + rows.parts.length;
    hash.update(rows.segments).update(rows.parts);
    ready = [];
  };
  for (let at = 0; at < data.length; at += PIECE) {
    // Pieces as the socket hands them over: copies, not views of one buffer.
    parser.push(Buffer.from(data.subarray(at, at + PIECE)));
    if (ready.length >= 50) ship();
  }
  grouper.finish();
  ship();
  const ms = performance.now() - t0;
  if (rows !== N || out === 0) throw new Error(`${rows} rows of ${N}`);
  times.push(ms);
  console.log(`rep ${r + 1}: ${N} rows in ${(ms / 1000).toFixed(2)} s, ${(ms * 1000 / N).toFixed(3)} µs a row; output ${out} bytes, ${hash.digest('hex').slice(0, 16)}`);
}
times.sort((a, b) => a - b);
console.log(`median ${(times[times.length >> 1] * 1000 / N).toFixed(3)} µs a row, fastest ${(times[0] * 1000 / N).toFixed(3)}`);
