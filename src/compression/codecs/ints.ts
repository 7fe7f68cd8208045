// Integers: differences of order 1 (delta) or 2 (delta of delta, for timestamps), zigzagged and
// bit-packed; or the differences of order 1 as runs (difference, length), for regular series cut
// by a few jumps (a segment's times, rows' places, counters) where one jump would widen a whole
// packed block; whichever is smaller is kept. int8 and timestamps go through BigInt so that
// values beyond 2^53 round-trip; when a difference does not fit in 53 bits the column is stored
// as plain 8-byte values instead.
import { packUnsigned, packedSize, unpackUnsigned } from './bitpack.ts';
import { ByteReader, ByteWriter, CorruptSegment } from './bytes.ts';

const PACKED = 0;
const PLAIN64 = 1;
/** Since format 2; segments written before use PACKED and PLAIN64 only, and still decode. */
const RUNS = 2;
const LIMIT = 2n ** 53n;

const zigzag = (d: number): number => (d < 0 ? -2 * d - 1 : 2 * d);
const unzigzag = (z: number): number => (z % 2 === 1 ? -(z + 1) / 2 : z / 2);

function diffs(values: ArrayLike<number>, order: number): Float64Array {
  const n = values.length;
  const out = new Float64Array(n);
  let prev = 0;
  let prevDelta = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const delta = v - prev;
    out[i] = zigzag(order === 1 || i === 0 ? delta : delta - prevDelta);
    prevDelta = delta;
    prev = v;
  }
  return out;
}

const varintSize = (v: number): number => {
  let size = 1;
  while (v >= 0x80) { v = Math.floor(v / 0x80); size++; }
  return size;
};

/** Bytes of `d` as runs: the count, then (value, length) varints per run. */
function runsSize(d: Float64Array): number {
  let size = 0;
  let runs = 0;
  for (let i = 0; i < d.length;) {
    let j = i + 1;
    while (j < d.length && d[j] === d[i]) j++;
    size += varintSize(d[i]) + varintSize(j - i);
    runs++;
    i = j;
  }
  return size + varintSize(runs);
}

function packBest(w: ByteWriter, make: (order: number) => Float64Array): void {
  const one = make(1);
  const two = make(2);
  const sizeOne = packedSize(one, 1) + varintSize(one[0] ?? 0);
  const sizeTwo = packedSize(two, 2) + varintSize(two[0] ?? 0) + varintSize(two[1] ?? 0);
  const sizeRuns = runsSize(one);
  if (sizeRuns < Math.min(sizeOne, sizeTwo)) {
    w.u8(RUNS);
    let runs = 0;
    for (let i = 0; i < one.length; runs++) { let j = i + 1; while (j < one.length && one[j] === one[i]) j++; i = j; }
    w.varint(runs);
    for (let i = 0; i < one.length;) {
      let j = i + 1;
      while (j < one.length && one[j] === one[i]) j++;
      w.varint(one[i]);
      w.varint(j - i);
      i = j;
    }
    return;
  }
  const order = sizeOne <= sizeTwo ? 1 : 2;
  w.u8(PACKED);
  w.u8(order);
  packFrom(w, order === 1 ? one : two, order);
}

/** The zigzagged differences of order 1 written as runs. */
function unpackRuns(r: ByteReader, n: number): Float64Array {
  const out = new Float64Array(n);
  const runs = r.varint();
  let at = 0;
  for (let k = 0; k < runs; k++) {
    const v = r.varint();
    const len = r.varint();
    if (len === 0 || at + len > n) throw new CorruptSegment(`run of ${len} at row ${at} of ${n}`);
    out.fill(v, at, at + len);
    at += len;
  }
  if (at !== n) throw new CorruptSegment(`runs hold ${at} rows of ${n}`);
  return out;
}

/** The mode and order of a packed or run-length column, and its zigzagged differences. */
function readDiffs(r: ByteReader, n: number, mode: number): { order: number; z: Float64Array } {
  if (mode === RUNS) return { order: 1, z: unpackRuns(r, n) };
  if (mode !== PACKED) throw new CorruptSegment(`integer mode ${mode}`);
  const order = r.u8();
  if (order !== 1 && order !== 2) throw new CorruptSegment(`difference order ${order}`);
  return { order, z: unpackFrom(r, n, order) };
}

/** The first `order` differences (a start value far from the rest) as varints, the rest packed. */
function packFrom(w: ByteWriter, d: Float64Array, order: number): void {
  const head = Math.min(order, d.length);
  for (let i = 0; i < head; i++) w.varint(d[i]);
  packUnsigned(w, d.subarray(head));
}

function unpackFrom(r: ByteReader, n: number, order: number): Float64Array {
  const out = new Float64Array(n);
  const head = Math.min(order, n);
  for (let i = 0; i < head; i++) out[i] = r.varint();
  unpackUnsigned(r, n - head, out.subarray(head));
  return out;
}

/** int2 / int4 values (every difference of order 2 fits in 35 bits). */
export function encodeInts(w: ByteWriter, values: ArrayLike<number>): void {
  packBest(w, (order) => diffs(values, order));
}

export function decodeInts(r: ByteReader, n: number): Float64Array {
  const { order, z: out } = readDiffs(r, n, r.u8());
  let prev = 0;
  let prevDelta = 0;
  for (let i = 0; i < n; i++) {
    const d = unzigzag(out[i]);
    const delta = order === 1 || i === 0 ? d : d + prevDelta;
    prev += delta;
    prevDelta = delta;
    out[i] = prev;
  }
  return out;
}

/**
 * bigDiffs without a BigInt per value, for values of magnitude below 2^53 (read as two 32-bit
 * words, exact as Numbers) whose differences of order 1 are below 2^53 (so exact): a difference
 * of order 2 is then exact below 2^53 and rounds to 2^53 or beyond above, so the test against
 * LIMIT comes out as with BigInts, and a zigzagged one that passes is exact. Undefined when the
 * values are out of that range (bigDiffs takes BigInts then).
 */
function smallDiffs(values: BigInt64Array, order: number): Float64Array | null | undefined {
  const n = values.length;
  const w = new Int32Array(values.buffer, values.byteOffset, 2 * n);
  const out = new Float64Array(n);
  let prev = 0;
  let prevDelta = 0;
  for (let i = 0; i < n; i++) {
    const hi = w[2 * i + 1];
    if (hi >= 0x20_0000 || hi < -0x20_0000) return undefined;
    const v = hi * 0x1_0000_0000 + (w[2 * i] >>> 0);
    const delta = v - prev;
    // A difference of order 1 rounded (2^53 or more): the BigInts decide.
    if (delta >= 0x20_0000_0000_0000 || delta <= -0x20_0000_0000_0000) return undefined;
    const d = order === 1 || i === 0 ? delta : delta - prevDelta;
    // z = zigzag(d) ≥ 2^53 exactly when d ≥ 2^52 or d < −2^52.
    if (d >= 0x10_0000_0000_0000 || d < -0x10_0000_0000_0000) return null;
    out[i] = d < 0 ? -2 * d - 1 : 2 * d;
    prevDelta = delta;
    prev = v;
  }
  return out;
}

function bigDiffs(values: BigInt64Array, order: number): Float64Array | null {
  const small = smallDiffs(values, order);
  if (small !== undefined) return small;
  const n = values.length;
  const out = new Float64Array(n);
  let prev = 0n;
  let prevDelta = 0n;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const delta = v - prev;
    const d = order === 1 || i === 0 ? delta : delta - prevDelta;
    const z = d < 0n ? -2n * d - 1n : 2n * d;
    if (z >= LIMIT) return null;
    out[i] = Number(z);
    prevDelta = delta;
    prev = v;
  }
  return out;
}

/** int8 values and timestamps (µs), exact over the whole int64 range. */
export function encodeBigInts(w: ByteWriter, values: BigInt64Array): void {
  const one = bigDiffs(values, 1);
  const two = one && bigDiffs(values, 2);
  if (!one || !two) {
    w.u8(PLAIN64);
    w.bytes(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return;
  }
  packBest(w, (order) => (order === 1 ? one : two));
}

export function decodeBigInts(r: ByteReader, n: number): BigInt64Array {
  const mode = r.u8();
  if (mode === PLAIN64) {
    const out = new BigInt64Array(n);
    new Uint8Array(out.buffer).set(r.bytes(n * 8));
    return out;
  }
  const { order, z } = readDiffs(r, n, mode);
  const out = new BigInt64Array(n);
  let prev = 0n;
  let prevDelta = 0n;
  // Differences are exact as Numbers (< 2^53); only the running sum needs BigInt.
  for (let i = 0; i < n; i++) {
    const d = BigInt(unzigzag(z[i]));
    const delta = order === 1 || i === 0 ? d : d + prevDelta;
    prev += delta;
    prevDelta = delta;
    out[i] = prev;
  }
  return out;
}
