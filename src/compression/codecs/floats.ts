// Floating-point columns, losslessly. Two schemes, chosen per segment and column:
//
// - DECIMAL (after ALP, "adaptive lossless floating point"): instruments report values with a
//   fixed number of decimals (an ADC count times a scale, or 3–4 digits), so x = n / 10^e holds
//   exactly for a small e and an integer n. The n are stored as a smooth curve plus residuals in
//   mixed radix (curve.ts), by frame of reference, or as deltas, whichever is smallest.
//   Values that do not round-trip bit for bit (NaN with any payload, −0, ±Infinity, full-
//   precision doubles) are exceptions, kept as their raw bytes with their positions.
// - SPLIT: byte-stream split (byte k of every value, then byte k+1 …) compressed with LZ4; the
//   sign and exponent bytes of a series are alike and compress, the noisy low bytes do not.
//
// DECIMAL is used when at most a quarter of a segment's values are exceptions; SPLIT otherwise.
// test/bench/compression.bench.ts measures both on lab data and on random doubles.
import { compressSync, uncompressSync } from 'lz4-napi';
import { forSize, packFor, packUnsigned, packedSize, unpackFor, unpackTrend, unpackUnsigned } from './bitpack.ts';
import { ByteReader, ByteWriter, CorruptSegment } from './bytes.ts';
import { planCurve, unpackCurve, writeCurve } from './curve.ts';

export const DECIMAL = 0;
export const SPLIT = 1;
const MAX_EXP = 15;
const POW10 = Array.from({ length: MAX_EXP + 1 }, (_, e) => 10 ** e);
const INT_LIMIT = 2 ** 49;
const INTS_DELTA = 0;
const INTS_FRAME = 1;
/** Since format 2 (frame of reference about each block's line); older segments hold 0 and 1 only. */
const INTS_TREND = 2;
/** Since format 3 (a smooth curve plus mixed-radix residuals, curve.ts). */
const INTS_CURVE = 3;

type Floats = Float64Array | Float32Array;

function roundTrips(x: number, e: number, f32: boolean): boolean {
  const n = Math.round(x * POW10[e]);
  if (!(Math.abs(n) < INT_LIMIT)) return false;
  const back = n / POW10[e];
  return (f32 ? Math.fround(back) : back) === x && !(x === 0 && 1 / x < 0);
}

/** The exponent under which most of a sample of the values round-trip (the smallest on ties). */
function chooseExponent(values: Floats, f32: boolean): number {
  const n = values.length;
  const step = Math.max(1, Math.floor(n / 64));
  let best = 0;
  let bestHits = -1;
  for (let e = 0; e <= MAX_EXP; e++) {
    let hits = 0;
    for (let i = 0; i < n; i += step) if (roundTrips(values[i], e, f32)) hits++;
    if (hits > bestHits) {
      best = e;
      bestHits = hits;
    }
    if (hits * step >= n) break;
  }
  return best;
}

/** Scratch columns of encodeDecimal, grown as needed: nothing keeps them past a call. */
let scratchInts = new Float64Array(0);
let scratchDeltas = new Float64Array(0);

function encodeDecimal(w: ByteWriter, values: Floats, f32: boolean): boolean {
  const n = values.length;
  const e = chooseExponent(values, f32);
  const p = POW10[e];
  if (scratchInts.length < n) { scratchInts = new Float64Array(n); scratchDeltas = new Float64Array(n); }
  const ints = scratchInts.subarray(0, n);
  // The integers as a smooth curve plus residuals, by plain frame of reference, or as deltas
  // (zigzagged; each below 2^51 as the integers are below 2^49), whichever packs smallest: a
  // smooth series with noise favours the first, a flat one the second, a random walk the third.
  const deltas = scratchDeltas.subarray(0, n);
  const exceptions: number[] = [];
  let prev = 0;
  let last = 0;
  for (let i = 0; i < n; i++) {
    // roundTrips(x, e, f32), inline: a value that does not round-trip keeps the one before.
    const x = values[i];
    const m = Math.round(x * p);
    if (Math.abs(m) < INT_LIMIT && (f32 ? Math.fround(m / p) : m / p) === x && (x !== 0 || 1 / x > 0)) {
      prev = m;
    } else {
      exceptions.push(i);
      if (exceptions.length * 4 > n) return false;
    }
    ints[i] = prev;
    const d = prev - last;
    last = prev;
    deltas[i] = d < 0 ? -2 * d - 1 : 2 * d;
  }
  w.u8(DECIMAL);
  w.u8(e);
  // Frame of reference about each block's line (INTS_TREND) is no longer written: the curve, a
  // quadratic per block with residuals in mixed radix, packed smaller on every segment measured.
  const curve = planCurve(ints);
  const sizes = [packedSize(deltas), forSize(ints), Infinity, curve?.size ?? Infinity];
  const layout = sizes.indexOf(Math.min(...sizes));
  w.u8(layout);
  if (layout === INTS_CURVE && curve) writeCurve(w, curve);
  else if (layout === INTS_FRAME) packFor(w, ints);
  else packUnsigned(w, deltas);
  w.varint(exceptions.length);
  const raw = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const size = f32 ? 4 : 8;
  let at = 0;
  for (const i of exceptions) {
    w.varint(i - at);
    at = i;
    w.bytes(raw.subarray(i * size, i * size + size));
  }
  return true;
}

function encodeSplit(w: ByteWriter, values: Floats): void {
  const size = values.BYTES_PER_ELEMENT;
  const n = values.length;
  const raw = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const split = Buffer.allocUnsafe(raw.length);
  for (let k = 0; k < size; k++) {
    const base = k * n;
    for (let i = 0; i < n; i++) split[base + i] = raw[i * size + k];
  }
  w.u8(SPLIT);
  w.block(compressSync(split));
}

export function encodeFloats(w: ByteWriter, values: Floats, scheme?: number): void {
  const f32 = values instanceof Float32Array;
  if (scheme === SPLIT) return encodeSplit(w, values);
  const trial = new ByteWriter();
  if (encodeDecimal(trial, values, f32)) w.bytes(trial.finish());
  else if (scheme === DECIMAL) throw new Error('values are not decimal');
  else encodeSplit(w, values);
}

export function decodeFloats(r: ByteReader, n: number, f32: boolean): Floats {
  const out = f32 ? new Float32Array(n) : new Float64Array(n);
  const size = f32 ? 4 : 8;
  const raw = new Uint8Array(out.buffer);
  const scheme = r.u8();
  if (scheme === SPLIT) {
    const split = uncompressSync(r.block());
    if (split.length !== n * size) throw new CorruptSegment(`split floats hold ${split.length} bytes for ${n} values`);
    for (let k = 0; k < size; k++) {
      const base = k * n;
      for (let i = 0; i < n; i++) raw[i * size + k] = split[base + i];
    }
    return out;
  }
  if (scheme !== DECIMAL) throw new CorruptSegment(`float scheme ${scheme}`);
  const e = r.u8();
  if (e > MAX_EXP) throw new CorruptSegment(`decimal exponent ${e}`);
  const layout = r.u8();
  const p = POW10[e];
  if (layout === INTS_FRAME) {
    const ints = unpackFor(r, n);
    for (let i = 0; i < n; i++) out[i] = ints[i] / p;
  } else if (layout === INTS_TREND) {
    const ints = unpackTrend(r, n);
    for (let i = 0; i < n; i++) out[i] = ints[i] / p;
  } else if (layout === INTS_CURVE) {
    const ints = unpackCurve(r, n);
    for (let i = 0; i < n; i++) out[i] = ints[i] / p;
  } else if (layout === INTS_DELTA) {
    const ints = unpackUnsigned(r, n);
    let acc = 0;
    for (let i = 0; i < n; i++) {
      const z = ints[i];
      acc += z % 2 === 1 ? -(z + 1) / 2 : z / 2;
      out[i] = acc / p;
    }
  } else throw new CorruptSegment(`decimal layout ${layout}`);
  const count = r.varint();
  let at = 0;
  for (let k = 0; k < count; k++) {
    at += r.varint();
    if (at >= n) throw new CorruptSegment(`exception at row ${at} of ${n}`);
    raw.set(r.bytes(size), at * size);
  }
  return out;
}
