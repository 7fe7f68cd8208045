// Bit-packing of unsigned integers below 2^53 in blocks of 128, each block with its own width
// (one byte), so that one outlier widens only its block. A block of zeros costs one byte.
import { ByteReader, ByteWriter, CorruptSegment } from './bytes.ts';

const BLOCK = 128;
const TWO32 = 4294967296;

function widthOf(v: number): number {
  if (v === 0) return 0;
  if (v < TWO32) return 32 - Math.clz32(v);
  return 32 + (32 - Math.clz32(Math.floor(v / TWO32)));
}

/** Bytes packUnsigned would write for `values`, without writing them. */
export function packedSize(values: ArrayLike<number>, from = 0): number {
  let size = 0;
  for (let start = from; start < values.length; start += BLOCK) {
    const end = Math.min(values.length, start + BLOCK);
    let max = 0;
    for (let i = start; i < end; i++) if (values[i] > max) max = values[i];
    size += 1 + Math.ceil(((end - start) * widthOf(max)) / 8);
  }
  return size;
}

/** Packs `values` (each an integer in [0, 2^53)); the count is not written. */
export function packUnsigned(w: ByteWriter, values: ArrayLike<number>): void {
  const n = values.length;
  for (let start = 0; start < n; start += BLOCK) {
    const end = Math.min(n, start + BLOCK);
    let max = 0;
    for (let i = start; i < end; i++) if (values[i] > max) max = values[i];
    const width = widthOf(max);
    w.u8(width);
    if (width === 0) continue;
    // The block's bytes are written in place at the writer's end.
    let p = w.extend(Math.ceil(((end - start) * width) / 8));
    const bytes = w.target;
    if (width <= 24) {
      // Fast path: a 32-bit accumulator holds at most 7 + 24 bits.
      let acc = 0;
      let bits = 0;
      for (let i = start; i < end; i++) {
        acc |= values[i] << bits;
        bits += width;
        while (bits >= 8) { bytes[p++] = acc & 0xff; acc >>>= 8; bits -= 8; }
      }
      if (bits > 0) bytes[p] = acc & 0xff;
      continue;
    }
    let bitPos = 8 * p;
    for (let i = start; i < end; i++) {
      let v = values[i];
      let left = width;
      while (left > 0) {
        const byte = bitPos >>> 3;
        const off = bitPos & 7;
        const take = Math.min(8 - off, left);
        const low = v % (1 << take);
        bytes[byte] |= low << off;
        v = (v - low) / (1 << take);
        left -= take;
        bitPos += take;
      }
    }
  }
}

export function unpackUnsigned(r: ByteReader, n: number, out: Float64Array = new Float64Array(n)): Float64Array {
  for (let start = 0; start < n; start += BLOCK) {
    const end = Math.min(n, start + BLOCK);
    const width = r.u8();
    if (width > 53) throw new CorruptSegment(`bit width ${width} at offset ${r.pos - 1}`);
    if (width === 0) {
      out.fill(0, start, end);
      continue;
    }
    const bytes = r.bytes(Math.ceil(((end - start) * width) / 8));
    if (width <= 24) {
      const mask = (1 << width) - 1;
      let acc = 0;
      let bits = 0;
      let p = 0;
      for (let i = start; i < end; i++) {
        while (bits < width) { acc |= bytes[p++] << bits; bits += 8; }
        out[i] = acc & mask;
        acc >>>= width;
        bits -= width;
      }
      continue;
    }
    let bitPos = 0;
    for (let i = start; i < end; i++) {
      let v = 0;
      let mul = 1;
      let left = width;
      while (left > 0) {
        const byte = bitPos >>> 3;
        const off = bitPos & 7;
        const take = Math.min(8 - off, left);
        v += ((bytes[byte] >>> off) & ((1 << take) - 1)) * mul;
        mul *= 1 << take;
        left -= take;
        bitPos += take;
      }
      out[i] = v;
    }
  }
  return out;
}

const zz = (d: number): number => (d < 0 ? -2 * d - 1 : 2 * d);
const unzz = (z: number): number => (z % 2 === 1 ? -(z + 1) / 2 : z / 2);

/**
 * Frame of reference: per block of 128, its smallest value (zigzag varint) and the values less
 * that, bit-packed. For noisy series it beats deltas, which double the noise. |values| < 2^50.
 */
export function packFor(w: ByteWriter, values: Float64Array): void {
  for (let start = 0; start < values.length; start += BLOCK) {
    const block = values.subarray(start, Math.min(values.length, start + BLOCK));
    let min = block[0];
    for (let i = 1; i < block.length; i++) if (block[i] < min) min = block[i];
    w.varint(zz(min));
    packUnsigned(w, block.map((v) => v - min));
  }
}

export function unpackFor(r: ByteReader, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let start = 0; start < n; start += BLOCK) {
    const end = Math.min(n, start + BLOCK);
    const min = unzz(r.varint());
    const block = unpackUnsigned(r, end - start, out.subarray(start, end));
    for (let i = 0; i < block.length; i++) block[i] += min;
  }
  return out;
}

/** Bytes packFor would write (block minimum as a varint of up to 8 bytes, counted exactly). */
export function forSize(values: Float64Array): number {
  let size = 0;
  for (let start = 0; start < values.length; start += BLOCK) {
    const end = Math.min(values.length, start + BLOCK);
    let min = values[start];
    let max = min;
    for (let i = start + 1; i < end; i++) { const v = values[i]; if (v < min) min = v; else if (v > max) max = v; }
    let z = zz(min);
    let varint = 1;
    while (z >= 0x80) { z = Math.floor(z / 0x80); varint++; }
    size += varint + 1 + Math.ceil(((end - start) * widthOf(max - min)) / 8);
  }
  return size;
}

const SLOPE_ONE = 256;
const SLOPE_LIMIT = 2 ** 40;

/**
 * Frame of reference about a line (segment format 2; no longer written, the curve of curve.ts
 * packs smaller): per block of 128, its slope in 1/256ths (zigzag varint), the smallest value
 * less the line (zigzag varint), and each value less the line and that, bit-packed. Exact
 * integer arithmetic: i·k < 2^47, and dividing by 256 is exact in a double.
 */
export function unpackTrend(r: ByteReader, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let start = 0; start < n; start += BLOCK) {
    const end = Math.min(n, start + BLOCK);
    const k = unzz(r.varint());
    if (Math.abs(k) >= SLOPE_LIMIT) throw new CorruptSegment(`slope ${k} at offset ${r.pos}`);
    const min = unzz(r.varint());
    const block = unpackUnsigned(r, end - start, out.subarray(start, end));
    for (let i = 0; i < block.length; i++) block[i] += min + Math.floor((i * k) / SLOPE_ONE);
  }
  return out;
}
