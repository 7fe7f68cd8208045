// Integers as a smooth curve plus noise (decimal floats' layout 3, since segment format 3). A
// sensor's readings are a slow signal plus noise a few units wide: the curve is a continuous chain
// of quadratic pieces, one per block of 128 values, through knots every 64 values (each knot shared
// by the blocks on either side), and each value is stored as its distance from the curve. The
// knots, rounded to multiples of 2^shift, go as second differences, bit-packed; each block's
// residuals go as a mixed-radix number in base (their span + 1), in groups of k digits that fit
// in 52 bits, so a span of 130 costs log2(131) = 7.03 bits a value where bit-packing takes 8.
// Everything is exact integer arithmetic: values and knots below 2^37.
import { packUnsigned, unpackUnsigned } from './bitpack.ts';
import { type ByteReader, type ByteWriter, CorruptSegment } from './bytes.ts';

const BLOCK = 128;
const HALF = 64;
/** Values, knots and residual spans stay below this, so that 8192·curve is exact in a double. */
const LIMIT = 2 ** 37;
const GROUP_LIMIT = 2 ** 52;
const MAX_SHIFT = 32;

// 8192 × the quadratic Lagrange weights of the knots at 0, 64 and 128, at t = 0 … 127.
const W0 = Int32Array.from({ length: BLOCK }, (_, t) => (t - HALF) * (t - BLOCK));
const W1 = Int32Array.from({ length: BLOCK }, (_, t) => -2 * t * (t - BLOCK));
const W2 = Int32Array.from({ length: BLOCK }, (_, t) => t * (t - HALF));

const zz = (d: number): number => (d < 0 ? -2 * d - 1 : 2 * d);
const unzz = (z: number): number => (z % 2 === 1 ? -(z + 1) / 2 : z / 2);

/** The curve at t (0 … 127) of a block whose knots are a, b, c: exact, |a|, |b|, |c| < 2^37. */
const curveAt = (a: number, b: number, c: number, t: number): number => Math.floor((a * W0[t] + b * W1[t] + c * W2[t] + 4096) / 8192);

function bitLength(v: number): number {
  if (v === 0) return 0;
  if (v < 4294967296) return 32 - Math.clz32(v);
  return 32 + (32 - Math.clz32(Math.floor(v / 4294967296)));
}

interface Grouping { k: number; width: number }
const groupings = new Map<number, Grouping>();

/** How many base-`base` digits go in one group, and its width in bits: the fewest bits a digit. */
function groupingOf(base: number): Grouping {
  let g = groupings.get(base);
  if (g) return g;
  g = { k: 1, width: bitLength(base - 1) };
  let pow = base;
  for (let k = 2; pow * base <= GROUP_LIMIT && k <= 16; k++) {
    pow *= base;
    const width = bitLength(pow - 1);
    if (width * g.k < g.width * k) g = { k, width };
  }
  if (groupings.size < 4096) groupings.set(base, g);
  return g;
}

/** Bits of a group of k < 16 digits in base `base` (base^k ≤ 2^52, multiplied out exactly). */
function widthFor(base: number, k: number): number {
  let pow = 1;
  for (let j = 0; j < k; j++) pow *= base;
  return bitLength(pow - 1);
}

/** A stream of bit fields of up to 52 bits, least significant first. */
class BitWriter {
  private bytes = new Uint8Array(1024);
  private len = 0;
  private acc = 0;
  private bits = 0;

  private push(v: number, width: number): void {
    // width ≤ 24: the accumulator holds at most 7 + 24 bits.
    this.acc |= v << this.bits;
    this.bits += width;
    while (this.bits >= 8) {
      if (this.len === this.bytes.length) { const next = new Uint8Array(this.len * 2); next.set(this.bytes); this.bytes = next; }
      this.bytes[this.len++] = this.acc & 0xff;
      this.acc >>>= 8;
      this.bits -= 8;
    }
  }

  write(v: number, width: number): void {
    while (width > 24) {
      const low = v % 16777216;
      this.push(low, 24);
      v = (v - low) / 16777216;
      width -= 24;
    }
    if (width > 0) this.push(v, width);
  }

  finish(): Uint8Array {
    if (this.bits > 0) this.write(0, 8 - this.bits);
    return this.bytes.subarray(0, this.len);
  }
}

class BitReader {
  private p = 0;
  private acc = 0;
  private bits = 0;
  constructor(private readonly bytes: Uint8Array) {}

  private pull(width: number): number {
    while (this.bits < width) {
      if (this.p >= this.bytes.length) throw new CorruptSegment(`curve residuals run past their ${this.bytes.length} bytes`);
      this.acc |= this.bytes[this.p++] << this.bits;
      this.bits += 8;
    }
    const v = this.acc & ((1 << width) - 1);
    this.acc >>>= width;
    this.bits -= width;
    return v;
  }

  read(width: number): number {
    let v = 0;
    let mul = 1;
    while (width > 24) {
      v += this.pull(24) * mul;
      mul *= 16777216;
      width -= 24;
    }
    return width > 0 ? v + this.pull(width) * mul : v;
  }
}

const F0 = Float64Array.from(W0, (w) => w / 8192);
const F1 = Float64Array.from(W1, (w) => w / 8192);
const F2 = Float64Array.from(W2, (w) => w / 8192);
/** Sums of products of the weights over t < n, for n = 0 … 128: the normal equations' matrix. */
const GRAM = ((): Float64Array[] => {
  const out = [new Float64Array(6)];
  for (let t = 0; t < BLOCK; t++) {
    const g = out[t].slice();
    g[0] += F0[t] * F0[t]; g[1] += F0[t] * F1[t]; g[2] += F0[t] * F2[t]; g[3] += F1[t] * F1[t]; g[4] += F1[t] * F2[t]; g[5] += F2[t] * F2[t];
    out.push(g);
  }
  return out;
})();

/** Least-squares knots of a block given its first knot a (or all three when a is null); not exact, need not be. */
function fitBlock(y: Float64Array, a: number | null): [number, number, number] {
  const n = y.length;
  const [s00, s01, s02, s11, s12, s22] = GRAM[n];
  let r0 = 0; let r1 = 0; let r2 = 0;
  for (let t = 0; t < n; t++) {
    const v = y[t];
    r0 += F0[t] * v; r1 += F1[t] * v; r2 += F2[t] * v;
  }
  if (a !== null) {
    // The block's values less the first knot's part.
    r1 -= a * s01; r2 -= a * s02;
    const det = s11 * s22 - s12 * s12;
    if (n < 8 || !(Math.abs(det) > 1e-9)) return [a, a, a];
    return [a, (r1 * s22 - r2 * s12) / det, (s11 * r2 - s12 * r1) / det];
  }
  // Three knots: Cramer's rule on the 3×3 normal equations.
  const det = s00 * (s11 * s22 - s12 * s12) - s01 * (s01 * s22 - s12 * s02) + s02 * (s01 * s12 - s11 * s02);
  if (n < 8 || !(Math.abs(det) > 1e-9)) return [y[0], y[0], y[0]];
  const d0 = r0 * (s11 * s22 - s12 * s12) - s01 * (r1 * s22 - s12 * r2) + s02 * (r1 * s12 - s11 * r2);
  const d1 = s00 * (r1 * s22 - s12 * r2) - r0 * (s01 * s22 - s12 * s02) + s02 * (s01 * r2 - r1 * s02);
  const d2 = s00 * (s11 * r2 - r1 * s12) - s01 * (s01 * r2 - r1 * s02) + r0 * (s01 * s12 - s11 * s02);
  return [d0 / det, d1 / det, d2 / det];
}

export interface CurvePlan {
  shift: number;
  /** Where a new piece starts (the values jump there): its first block's knots are its own. */
  cuts: number[];
  /** Knots of each block, in units of 2^shift. */
  ka: Float64Array;
  kb: Float64Array;
  kc: Float64Array;
  mins: Float64Array;
  spans: Float64Array;
  /** Each value less the curve (writeCurve takes its block's minimum off). */
  residuals: Float64Array;
  /** Bytes writeCurve writes. */
  size: number;
}

interface Block { start: number; end: number; fresh: boolean }

/** Blocks of up to 128 values from the start of each piece. */
function blocksOf(n: number, cuts: readonly number[]): Block[] {
  const out: Block[] = [];
  const edges = [...cuts, n];
  let start = 0;
  for (const edge of edges) {
    for (let s = start; s < edge; s += BLOCK) out.push({ start: s, end: Math.min(edge, s + BLOCK), fresh: s === start });
    start = edge;
  }
  return out;
}

/**
 * Where the values jump far beyond their step-to-step noise (a segment that joins runs of one tag
 * set recorded at different times): more than 8 times the median step, at most one in 64 values.
 */
function findCuts(values: Float64Array): { cuts: number[]; step: number } {
  const n = values.length;
  if (n < 2) return { cuts: [], step: 0 };
  const stride = Math.max(1, Math.floor(n / 512));
  const sample = new Float64Array(Math.ceil((n - 1) / stride));
  for (let i = 1, k = 0; i < n; i += stride) sample[k++] = Math.abs(values[i] - values[i - 1]);
  const step = kth(sample, sample.length >> 1);
  const limit = 8 * step + 8;
  const cuts: number[] = [];
  for (let i = 1; i < n; i++) if (Math.abs(values[i] - values[i - 1]) > limit) cuts.push(i);
  return { cuts: cuts.length <= n / 64 ? cuts : [], step };
}

/** The k-th smallest of a (as a[k] after sorting it; a is reordered), by Hoare's selection. */
export function kth(a: Float64Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    const pivot = a[(lo + hi) >> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) { const t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

/** The knot stream: (first knot less the last, second less first) per piece, and second differences. */
function knotStreams(blocks: readonly Block[], ka: Float64Array, kb: Float64Array, kc: Float64Array): { resets: number[]; diffs: Float64Array } {
  const resets: number[] = [];
  const diffs: number[] = [];
  let last = 0;
  blocks.forEach((blk, b) => {
    if (blk.fresh) {
      resets.push(zz(ka[b] - last), zz(kb[b] - ka[b]));
      diffs.push(zz(kc[b] - 2 * kb[b] + ka[b]));
    } else {
      diffs.push(zz(kb[b] - 2 * kc[b - 1] + kb[b - 1]), zz(kc[b] - 2 * kb[b] + kc[b - 1]));
    }
    last = kc[b];
  });
  return { resets, diffs: Float64Array.from(diffs) };
}

/** Knots rounded to multiples of 2^shift, and the residuals about them; null when out of range. */
function plan(values: Float64Array, shift: number, cuts: number[]): CurvePlan | null {
  const n = values.length;
  const blocks = blocksOf(n, cuts);
  const q = 2 ** shift;
  const m = blocks.length;
  const ka = new Float64Array(m); const kb = new Float64Array(m); const kc = new Float64Array(m);
  const mins = new Float64Array(m);
  const spans = new Float64Array(m);
  const residuals = new Float64Array(n);
  const round = (v: number): number => Math.round(v / q);
  let bits = 0;
  for (let b = 0; b < m; b++) {
    const { start, end, fresh } = blocks[b];
    const y = values.subarray(start, end);
    const [fa, fb, fc] = fitBlock(y, fresh ? null : kc[b - 1] * q);
    ka[b] = fresh ? round(fa) : kc[b - 1];
    kb[b] = round(fb);
    kc[b] = round(fc);
    const a = ka[b] * q; const bb = kb[b] * q; const c = kc[b] * q;
    if (!(Math.abs(a) < LIMIT && Math.abs(bb) < LIMIT && Math.abs(c) < LIMIT)) return null;
    let min = Infinity; let max = -Infinity;
    for (let t = 0; t < y.length; t++) {
      const r = y[t] - curveAt(a, bb, c, t);
      residuals[start + t] = r;
      if (r < min) min = r;
      if (r > max) max = r;
    }
    if (!(max - min < LIMIT)) return null;
    mins[b] = min;
    spans[b] = max - min;
    if (max > min) {
      const g = groupingOf(max - min + 1);
      const full = Math.floor(y.length / g.k);
      const rest = y.length - full * g.k;
      bits += full * g.width + (rest > 0 ? widthFor(max - min + 1, rest) : 0);
    }
  }
  const { resets, diffs } = knotStreams(blocks, ka, kb, kc);
  const bytes = Math.ceil(bits / 8);
  let size = 1 + varintLength(cuts.length) + bytes + varintLength(bytes);
  cuts.forEach((c, i) => { size += varintLength(c - (i === 0 ? 0 : cuts[i - 1])); });
  for (const r of resets) size += varintLength(r);
  size += packedSize(diffs) + packedSize(firstDiffs(mins)) + packedSize(firstDiffs(spans));
  return { shift, cuts, ka, kb, kc, mins, spans, residuals, size };
}

function firstDiffs(v: Float64Array): Float64Array {
  return v.map((x, i) => zz(i === 0 ? x : x - v[i - 1]));
}

/** Writes a plan of planCurve. */
export function writeCurve(w: ByteWriter, p: CurvePlan): void {
  const n = p.residuals.length;
  const blocks = blocksOf(n, p.cuts);
  w.u8(p.shift);
  w.varint(p.cuts.length);
  p.cuts.forEach((c, i) => w.varint(c - (i === 0 ? 0 : p.cuts[i - 1])));
  const { resets, diffs } = knotStreams(blocks, p.ka, p.kb, p.kc);
  for (const r of resets) w.varint(r);
  packUnsigned(w, diffs);
  packUnsigned(w, firstDiffs(p.mins));
  packUnsigned(w, firstDiffs(p.spans));
  const bw = new BitWriter();
  blocks.forEach(({ start, end }, b) => {
    const base = p.spans[b] + 1;
    if (base === 1) return;
    const min = p.mins[b];
    const { k, width } = groupingOf(base);
    for (let i = start; i < end; i += k) {
      const cnt = Math.min(k, end - i);
      let g = 0;
      for (let j = cnt - 1; j >= 0; j--) g = g * base + (p.residuals[i + j] - min);
      bw.write(g, cnt === k ? width : widthFor(base, cnt));
    }
  });
  w.block(bw.finish());
}

/** How `values` would be written as a curve, and its size in bytes; null when they are out of range. */
export function planCurve(values: Float64Array): CurvePlan | null {
  for (let i = 0; i < values.length; i++) if (!(Math.abs(values[i]) < LIMIT)) return null;
  const { cuts, step } = findCuts(values);
  // Knots need be no finer than a fraction of the noise, whose span is about 3.5 median steps:
  // rounded to the power of two nearest 1/16 of it. On the bench's logger channels that packs
  // within 0.02 % of the better of 1/16 and 1/32 (which this planned both of, at twice the cost),
  // and about 0.1 % smaller than 1/32 or 1/8 alone (test/bench/README.md).
  const shift = Math.max(0, Math.min(MAX_SHIFT, bitLength(Math.round(3.5 * step)) - 4));
  return plan(values, shift, cuts);
}

function packedSize(values: Float64Array): number {
  let size = 0;
  for (let start = 0; start < values.length; start += BLOCK) {
    const end = Math.min(values.length, start + BLOCK);
    let max = 0;
    for (let i = start; i < end; i++) if (values[i] > max) max = values[i];
    size += 1 + Math.ceil(((end - start) * bitLength(max)) / 8);
  }
  return size;
}

function varintLength(v: number): number {
  let size = 1;
  while (v >= 0x80) { v = Math.floor(v / 0x80); size++; }
  return size;
}

export function unpackCurve(r: ByteReader, n: number): Float64Array {
  const shift = r.u8();
  if (shift > MAX_SHIFT) throw new CorruptSegment(`curve knot shift ${shift}`);
  const q = 2 ** shift;
  const cuts: number[] = new Array<number>(r.varint());
  if (cuts.length > n) throw new CorruptSegment(`${cuts.length} curve pieces for ${n} values`);
  for (let i = 0; i < cuts.length; i++) {
    cuts[i] = r.varint() + (i === 0 ? 0 : cuts[i - 1]);
    if (cuts[i] <= (i === 0 ? 0 : cuts[i - 1]) || cuts[i] >= n) throw new CorruptSegment(`curve piece at ${cuts[i]} of ${n}`);
  }
  const blocks = blocksOf(n, cuts);
  const resets = new Float64Array(2 * (cuts.length + (n > 0 ? 1 : 0)));
  for (let i = 0; i < resets.length; i++) resets[i] = unzz(r.varint());
  let diffCount = 0;
  for (const blk of blocks) diffCount += blk.fresh ? 1 : 2;
  const diffs = unpackUnsigned(r, diffCount);
  const md = unpackUnsigned(r, blocks.length);
  const sd = unpackUnsigned(r, blocks.length);
  const bits = new BitReader(r.block());
  const out = new Float64Array(n);
  let ka = 0; let kb = 0; let kc = 0; let min = 0; let span = 0; let reset = 0; let diff = 0;
  blocks.forEach(({ start, end, fresh }, b) => {
    if (fresh) {
      ka = kc + resets[reset++];
      kb = ka + resets[reset++];
      kc = unzz(diffs[diff++]) + 2 * kb - ka;
    } else {
      const pb = kb;
      ka = kc;
      kb = unzz(diffs[diff++]) + 2 * kc - pb;
      kc = unzz(diffs[diff++]) + 2 * kb - ka;
    }
    min += unzz(md[b]);
    span += unzz(sd[b]);
    const a = ka * q; const bb = kb * q; const c = kc * q;
    if (!(Math.abs(a) < LIMIT && Math.abs(bb) < LIMIT && Math.abs(c) < LIMIT) || !(span >= 0 && span < LIMIT) || !(Math.abs(min) < LIMIT)) {
      throw new CorruptSegment(`curve block ${b} out of range`);
    }
    const base = span + 1;
    if (base === 1) {
      for (let i = start; i < end; i++) out[i] = curveAt(a, bb, c, i - start) + min;
      return;
    }
    const { k, width } = groupingOf(base);
    for (let i = start; i < end; i += k) {
      const cnt = Math.min(k, end - i);
      let g = bits.read(cnt === k ? width : widthFor(base, cnt));
      for (let j = 0; j < cnt; j++) {
        let d = Math.floor(g / base);
        let digit = g - d * base;
        if (digit < 0) { d--; digit += base; } else if (digit >= base) { d++; digit -= base; }
        out[i + j] = curveAt(a, bb, c, i + j - start) + min + digit;
        g = d;
      }
      if (g !== 0) throw new CorruptSegment(`curve residuals out of range in block ${b}`);
    }
  });
  return out;
}
