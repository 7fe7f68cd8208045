// Decimal to double, correctly rounded, for decimals of at most 19 significant digits: the
// Eisel–Lemire algorithm (D. Lemire, "Number Parsing at a Gigabyte per Second", 2021, as in
// fast_float), with the 64 × 128-bit product done in 32-bit limbs held in doubles. With an exact
// significand of ≤ 19 digits its product is always sufficient (N. Mushtak and D. Lemire, "Fast
// Number Parsing Without Fallback", 2023), so it never needs a slow path. Bit-exact with Number()
// (test/tabular/float-parse.test.ts checks it against Number() on millions of inputs).

const TWO32 = 4294967296;
const SMALLEST_POWER = -342;
const LARGEST_POWER = 308;

/** 5^q for q in [-342, 308] as 128-bit values, normalized (top bit set), 4 limbs each, high first. */
const POW5 = buildPowersOfFive();

function buildPowersOfFive(): Uint32Array {
  const out = new Uint32Array((LARGEST_POWER - SMALLEST_POWER + 1) * 4);
  const top = 1n << 128n;
  const half = 1n << 127n;
  for (let q = SMALLEST_POWER; q <= LARGEST_POWER; q++) {
    let c: bigint;
    if (q < 0) {
      const p5 = 5n ** BigInt(-q);
      let z = 0n;
      while ((1n << z) < p5) z++;
      const b = q >= -27 ? z + 127n : 2n * z + 128n;
      c = (1n << b) / p5 + 1n;
      while (c >= top) c >>= 1n;
    } else {
      c = 5n ** BigInt(q);
      while (c < half) c <<= 1n;
      while (c >= top) c >>= 1n;
    }
    const at = (q - SMALLEST_POWER) * 4;
    for (let i = 3; i >= 0; i--) {
      out[at + i] = Number(c & 0xffffffffn);
      c >>= 32n;
    }
  }
  return out;
}

// The 32 × 32-bit products below are written out (no helper returning two values: a double
// stored outside the function is a heap allocation each time). Each partial product stays below
// 2^53, so doubles hold it exactly; `>>> 0` and `& 0xffff` take the low bits of an exact integer
// (`%` on doubles is a runtime call in V8).
const INV16 = 1 / 65536;
const INV32 = 1 / TWO32;

const bits = new Float64Array(1);
const words = new Uint32Array(bits.buffer);
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LO_WORD = LITTLE ? 0 : 1;
const HI_WORD = LITTLE ? 1 : 0;

function fromBits(neg: boolean, hi: number, lo: number): number {
  words[HI_WORD] = (neg ? 0x80000000 : 0) | hi;
  words[LO_WORD] = lo;
  return bits[0];
}

/**
 * The double nearest to w × 10^q (ties to even), w = wh·2^32 + wl < 10^19 (the exact significand),
 * negated when `neg`.
 */
export function eiselLemire(neg: boolean, wh: number, wl: number, q: number): number {
  if ((wh === 0 && wl === 0) || q < SMALLEST_POWER) return neg ? -0 : 0;
  if (q > LARGEST_POWER) return neg ? -Infinity : Infinity;
  // Normalize w so that its top bit is set.
  const lz = wh !== 0 ? Math.clz32(wh) : 32 + Math.clz32(wl);
  if (lz >= 32) {
    wh = (wl << (lz - 32)) >>> 0;
    wl = 0;
  } else if (lz > 0) {
    wh = ((wh << lz) | (wl >>> (32 - lz))) >>> 0;
    wl = (wl << lz) >>> 0;
  }
  const at = (q - SMALLEST_POWER) * 4;
  const t3 = POW5[at];
  const t2 = POW5[at + 1];
  // The first product, w × the high 64 bits of 5^q, as limbs r3 r2 r1 r0.
  const t2h = t2 >>> 16; const t2l = t2 & 0xffff; const t3h = t3 >>> 16; const t3l = t3 & 0xffff;
  let p = wl * t2h; let pl = p & 0xffff; let lw = pl * 65536 + wl * t2l;
  const r0 = lw >>> 0; const a1 = (p - pl) * INV16 + (lw - r0) * INV32;
  p = wl * t3h; pl = p & 0xffff; lw = pl * 65536 + wl * t3l;
  const b0 = lw >>> 0; const b1 = (p - pl) * INV16 + (lw - b0) * INV32;
  p = wh * t2h; pl = p & 0xffff; lw = pl * 65536 + wh * t2l;
  const c0 = lw >>> 0; const c1 = (p - pl) * INV16 + (lw - c0) * INV32;
  p = wh * t3h; pl = p & 0xffff; lw = pl * 65536 + wh * t3l;
  const d0 = lw >>> 0; const d1 = (p - pl) * INV16 + (lw - d0) * INV32;
  let mid = a1 + b0 + c0;
  let r1 = mid >>> 0;
  mid = b1 + c1 + d0 + (mid - r1) * INV32;
  let r2 = mid >>> 0;
  let r3 = d1 + (mid - r2) * INV32;
  let low0 = r0;
  if ((r2 & 0x1ff) === 0x1ff) {
    // The high 64 bits of w × the low 64 bits of 5^q, added to the first product's low half.
    const u1 = POW5[at + 2];
    const u0 = POW5[at + 3];
    const u1h = u1 >>> 16; const u1l = u1 & 0xffff; const u0h = u0 >>> 16; const u0l = u0 & 0xffff;
    p = wl * u0h; pl = p & 0xffff; lw = pl * 65536 + wl * u0l;
    const e1 = (p - pl) * INV16 + (lw - (lw >>> 0)) * INV32;
    p = wl * u1h; pl = p & 0xffff; lw = pl * 65536 + wl * u1l;
    const f0 = lw >>> 0; const f1 = (p - pl) * INV16 + (lw - f0) * INV32;
    p = wh * u0h; pl = p & 0xffff; lw = pl * 65536 + wh * u0l;
    const g0 = lw >>> 0; const g1 = (p - pl) * INV16 + (lw - g0) * INV32;
    p = wh * u1h; pl = p & 0xffff; lw = pl * 65536 + wh * u1l;
    const h0 = lw >>> 0; const h1 = (p - pl) * INV16 + (lw - h0) * INV32;
    let m = e1 + f0 + g0;
    m = f1 + g1 + h0 + (m - (m >>> 0)) * INV32;
    const s2 = m >>> 0;
    const s3 = h1 + (m - s2) * INV32;
    // (r1, r0) += (s3, s2)
    let x = low0 + s2;
    low0 = x >>> 0;
    x = r1 + s3 + (x - low0) * INV32;
    r1 = x >>> 0;
    if (x >= TWO32) {
      let y = r2 + 1;
      if (y === TWO32) { y = 0; r3 += 1; }
      r2 = y;
    }
  }
  const upper = r3 >>> 31;
  const shift = upper + 9;
  // mantissa = high >> shift, as mh:ml (54 bits).
  let mh = r3 >>> shift;
  let ml = ((r2 >>> shift) | (r3 << (32 - shift))) >>> 0;
  let power2 = (((152170 + 65536) * q) >> 16) + 63 + upper - lz + 1023;
  if (power2 <= 0) {
    const sh = -power2 + 1;
    if (sh >= 64) return neg ? -0 : 0;
    if (sh >= 32) {
      ml = sh === 32 ? mh : mh >>> (sh - 32);
      mh = 0;
    } else {
      ml = ((ml >>> sh) | (sh === 0 ? 0 : mh << (32 - sh))) >>> 0;
      mh = mh >>> sh;
    }
    // Round up (no ties can reach here with ≤ 19 digits), then drop the rounding bit.
    ml += ml & 1;
    if (ml === TWO32) { ml = 0; mh += 1; }
    ml = ((ml >>> 1) | ((mh & 1) << 31)) >>> 0;
    mh >>>= 1;
    power2 = mh < 0x100000 ? 0 : 1;
    return fromBits(neg, (power2 << 20) | (mh & 0xfffff), ml);
  }
  // Exactly halfway between two doubles: round to even rather than up.
  if (r1 === 0 && low0 <= 1 && q >= -4 && q <= 23 && (ml & 3) === 1 && (r2 & ((1 << shift) - 1)) === 0) ml -= 1;
  ml += ml & 1;
  if (ml === TWO32) { ml = 0; mh += 1; }
  ml = ((ml >>> 1) | ((mh & 1) << 31)) >>> 0;
  mh >>>= 1;
  if (mh >= 0x200000) { mh = 0x100000; ml = 0; power2++; }
  if (power2 >= 0x7ff) return neg ? -Infinity : Infinity;
  return fromBits(neg, ((power2 << 20) | (mh & 0xfffff)) >>> 0, ml);
}

const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/**
 * The double for ±(hi·10^extDigits + ext)·10^exp, where hi < 10^15 holds the first significant
 * digits and ext < 10^extDigits (extDigits ≤ 4) the ones after them: 19 digits at most.
 */
export function decimalToDouble(neg: boolean, hi: number, ext: number, extDigits: number, exp: number): number {
  if (extDigits === 0) {
    // Clinger's fast path: an exact significand below 2^53 and an exact power of ten.
    if (exp >= -22 && exp <= 22) {
      const v = exp >= 0 ? hi * POW10[exp] : hi / POW10[-exp];
      return neg ? -v : v;
    }
    const wh = Math.floor(hi / TWO32);
    return eiselLemire(neg, wh, hi - wh * TWO32, exp);
  }
  const p = POW10[extDigits];
  const hiH = Math.floor(hi / TWO32);
  const lo = (hi - hiH * TWO32) * p + ext; // < 2^46
  const carry = Math.floor(lo / TWO32);
  return eiselLemire(neg, hiH * p + carry, lo - carry * TWO32, exp);
}
