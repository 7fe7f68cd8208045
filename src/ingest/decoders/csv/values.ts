// CSV values from their bytes, without a string per field on the common paths: what kind of value
// a field holds (for type inference), and exact parsers for integers, decimals, booleans, ISO 8601
// instants and epoch numbers. Decimal numbers go through the correctly rounded fast path of
// Clinger (≤ 15 significant digits, small exponents) and Eisel–Lemire (≤ 19 digits, csv/float.ts),
// and through Number() beyond 19 significant digits.

import { decimalToDouble } from './float.ts';

export const enum Kind { Null = 0, Int = 1, Float = 2, Bool = 3, Iso = 4, IsoNaive = 5, Text = 6 }

const ZERO = 0x30;
const NINE = 0x39;
const isDigit = (c: number): boolean => c >= ZERO && c <= NINE;

/** Markers read as NULL in numeric, boolean and time columns (an empty field always is). */
const NULL_WORDS = new Set(['NA', 'N/A', '#N/A', 'null', 'NULL', 'None', 'nil']);
const NAN_WORDS = new Set(['NaN', 'nan', 'NAN']);
const INF_WORDS = new Map([['inf', Infinity], ['Inf', Infinity], ['INF', Infinity], ['Infinity', Infinity], ['+inf', Infinity],
  ['+Inf', Infinity], ['+Infinity', Infinity], ['-inf', -Infinity], ['-Inf', -Infinity], ['-INF', -Infinity], ['-Infinity', -Infinity]]);

const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;

/** The bytes as a string, one char per byte (the fields parsed as text here are ASCII). */
function latin1(b: Uint8Array, s: number, e: number): string {
  return latin1Slice.call(b, s, e);
}

function word(b: Uint8Array, s: number, e: number): string {
  return e - s > 12 ? '' : latin1(b, s, e);
}

export function isNullField(b: Uint8Array, s: number, e: number): boolean {
  if (s === e) return true;
  const c = b[s];
  // Every null word starts with N, n or #: numbers never build a string here.
  return e - s <= 4 && (c === 0x4e || c === 0x6e || c === 0x23) && NULL_WORDS.has(word(b, s, e));
}

/**
 * A decimal's shape: sign, significand, exponent. The first 15 significant digits are in `mant`,
 * the next (up to 4) in `ext` (`extDigits` of them): the value is ±(mant·10^extDigits + ext)·10^exp
 * when `digits` ≤ 19 (beyond, mant and ext are 0: read the text). Null when not a decimal.
 */
interface Decimal { neg: boolean; mant: number; ext: number; extDigits: number; digits: number; exp: number; intOnly: boolean }

const scratch: Decimal = { neg: false, mant: 0, ext: 0, extDigits: 0, digits: 0, exp: 0, intOnly: true };

/** Scans a decimal number; `comma`: ',' is accepted as the decimal separator besides '.'. */
function scanDecimal(b: Uint8Array, s: number, e: number, comma: boolean): Decimal | null {
  // The extents first (integer digits, fraction digits, exponent), then the significand.
  let p = s;
  let neg = false;
  if (p < e && (b[p] === 0x2d || b[p] === 0x2b)) { neg = b[p] === 0x2d; p++; }
  const i0 = p;
  while (p < e && isDigit(b[p])) p++;
  const i1 = p;
  let f0 = p;
  let f1 = p;
  let intOnly = true;
  if (p < e && (b[p] === 0x2e || (comma && b[p] === 0x2c))) {
    intOnly = false;
    p++;
    f0 = p;
    while (p < e && isDigit(b[p])) p++;
    f1 = p;
  }
  if (i1 === i0 && f1 === f0) return null;
  let exp = 0;
  if (p < e && (b[p] === 0x65 || b[p] === 0x45)) {
    intOnly = false;
    p++;
    let eneg = false;
    if (p < e && (b[p] === 0x2d || b[p] === 0x2b)) { eneg = b[p] === 0x2d; p++; }
    let ev = 0;
    const x0 = p;
    while (p < e && isDigit(b[p])) { if (ev < 100000) ev = ev * 10 + (b[p] - ZERO); p++; }
    if (p === x0) return null;
    exp = eneg ? -ev : ev;
  }
  if (p !== e) return null;
  // The significant digits: from the first non-zero one, through the fraction.
  let q = i0;
  while (q < i1 && b[q] === ZERO) q++;
  let from = f0;
  if (q === i1) {
    from = f0;
    while (from < f1 && b[from] === ZERO) from++;
  }
  const digits = (i1 - q) + (f1 - from);
  let mant = 0;
  let ext = 0;
  let extDigits = 0;
  if (digits <= 19) {
    let k = 0;
    for (let r = q; r < i1; r++, k++) {
      if (k < 15) mant = mant * 10 + (b[r] - ZERO); else ext = ext * 10 + (b[r] - ZERO);
    }
    for (let r = from; r < f1; r++, k++) {
      if (k < 15) mant = mant * 10 + (b[r] - ZERO); else ext = ext * 10 + (b[r] - ZERO);
    }
    extDigits = digits > 15 ? digits - 15 : 0;
  }
  scratch.neg = neg; scratch.mant = mant; scratch.ext = ext; scratch.extDigits = extDigits; scratch.digits = digits;
  scratch.exp = exp - (f1 - f0); scratch.intOnly = intOnly;
  return scratch;
}

/**
 * Int or Float when the field is a decimal (the grammar of scanDecimal), Null when it is not: its
 * syntax alone, without computing its value (the inference pass reads every field).
 */
function numberKind(b: Uint8Array, s: number, e: number, comma: boolean): Kind {
  let p = s;
  if (b[p] === 0x2d || b[p] === 0x2b) p++;
  const i0 = p;
  while (p < e && isDigit(b[p])) p++;
  const intEnd = p;
  let any = intEnd > i0;
  let int = true;
  if (p < e && (b[p] === 0x2e || (comma && b[p] === 0x2c))) {
    int = false;
    p++;
    const f0 = p;
    while (p < e && isDigit(b[p])) p++;
    any ||= p > f0;
  }
  if (!any) return Kind.Null;
  if (p < e && (b[p] === 0x65 || b[p] === 0x45)) {
    int = false;
    p++;
    if (p < e && (b[p] === 0x2d || b[p] === 0x2b)) p++;
    const x0 = p;
    while (p < e && isDigit(b[p])) p++;
    if (p === x0) return Kind.Null;
  }
  if (p !== e) return Kind.Null;
  if (!int) return Kind.Float;
  let z = i0;
  while (z < intEnd && b[z] === ZERO) z++;
  return intEnd - z <= 18 ? Kind.Int : Kind.Float;
}

/** What a field holds, for inference. */
export function classify(b: Uint8Array, s: number, e: number, comma: boolean): Kind {
  if (isNullField(b, s, e)) return Kind.Null;
  const c = b[s];
  if (isDigit(c) || c === 0x2d || c === 0x2b || c === 0x2e) {
    const k = numberKind(b, s, e, comma);
    if (k !== Kind.Null) return k;
    if (e - s >= 10 && isDigit(c)) {
      const t = parseIso(b, s, e);
      if (t) return t.zoned ? Kind.Iso : Kind.IsoNaive;
    }
  }
  if (e - s <= 9) {
    if (boolOf(b, s, e) !== -1) return Kind.Bool;
    const w = word(b, s, e);
    if (NAN_WORDS.has(w) || INF_WORDS.has(w)) return Kind.Float;
  }
  return Kind.Text;
}

/** Whether bytes [s, e) spell `word` (lower case ASCII) in lower, Capitalized or UPPER case. */
function spells(b: Uint8Array, s: number, e: number, word: string): boolean {
  if (e - s !== word.length) return false;
  const first = b[s];
  const lowerFirst = first === word.charCodeAt(0);
  if (!lowerFirst && first !== word.charCodeAt(0) - 32) return false;
  // lower: all lower; Capitalized: the rest lower; UPPER: the rest upper (first already upper)
  const upperRest = !lowerFirst && e - s > 1 && b[s + 1] === word.charCodeAt(1) - 32;
  for (let i = 1; i < word.length; i++) {
    if (b[s + i] !== word.charCodeAt(i) - (upperRest ? 32 : 0)) return false;
  }
  return true;
}

/** 1 for true/True/TRUE, 0 for false/False/FALSE, -1 otherwise (no string made). */
function boolOf(b: Uint8Array, s: number, e: number): number {
  const c = b[s] | 0x20;
  if (c === 0x74) return spells(b, s, e, 'true') ? 1 : -1;
  if (c === 0x66) return spells(b, s, e, 'false') ? 0 : -1;
  return -1;
}

/** A float, or undefined when the field is not a number. */
export function parseFloatField(b: Uint8Array, s: number, e: number, comma: boolean): number | undefined {
  const d = scanDecimal(b, s, e, comma);
  if (d) {
    if (d.digits <= 19) return decimalToDouble(d.neg, d.mant, d.ext, d.extDigits, d.exp);
    const text = latin1(b, s, e);
    return Number(comma ? text.replace(',', '.') : text);
  }
  const w = word(b, s, e);
  if (NAN_WORDS.has(w)) return NaN;
  return INF_WORDS.get(w);
}

/** An integer (as a number when exact, else a bigint), or undefined when the field is not one. */
export function parseIntField(b: Uint8Array, s: number, e: number): number | bigint | undefined {
  const d = scanDecimal(b, s, e, false);
  if (!d || !d.intOnly || d.exp !== 0) {
    if (d && d.intOnly) return parseBigInt(b, s, e);
    return undefined;
  }
  if (d.digits <= 15) return d.neg ? -d.mant : d.mant;
  return parseBigInt(b, s, e);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function parseBigInt(b: Uint8Array, s: number, e: number): bigint | undefined {
  const v = BigInt(latin1(b, s, e));
  return v < INT64_MIN || v > INT64_MAX ? undefined : v;
}

export function parseBoolField(b: Uint8Array, s: number, e: number): boolean | undefined {
  const v = boolOf(b, s, e);
  return v === -1 ? undefined : v === 1;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export interface IsoInstant {
  /** µs since the epoch of the text's wall time, minus its offset when it has one. */
  us: number;
  zoned: boolean;
  /** Digits below the microsecond were non-zero (floored). */
  subMicro: boolean;
}

const iso: IsoInstant = { us: 0, zoned: false, subMicro: false };

function num(b: Uint8Array, p: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = b[p + i];
    if (!isDigit(c)) return -1;
    v = v * 10 + (c - ZERO);
  }
  return v;
}

/**
 * ISO 8601 / RFC 3339: YYYY-MM-DD, then optionally [T or space]HH:MM[:SS[.fraction]] and a zone
 * (Z, ±HH:MM, ±HHMM, ±HH). Returns a shared object (copy what you keep), or null.
 */
export function parseIso(b: Uint8Array, s: number, e: number): IsoInstant | null {
  if (e - s < 10 || b[s + 4] !== 0x2d || b[s + 7] !== 0x2d) return null;
  const y = num(b, s, 4);
  const mo = num(b, s + 5, 2);
  const d = num(b, s + 8, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > DAYS_IN_MONTH[mo - 1]) return null;
  if (mo === 2 && d === 29 && !(y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0))) return null;
  let p = s + 10;
  let secs = 0;
  let frac = 0;
  let sub = false;
  let zoned = false;
  let offsetMin = 0;
  if (p < e && (b[p] === 0x54 || b[p] === 0x74 || b[p] === 0x20)) {
    if (e - p < 6 || b[p + 3] !== 0x3a) return null;
    const h = num(b, p + 1, 2);
    const mi = num(b, p + 4, 2);
    if (h < 0 || h > 24 || mi < 0 || mi > 59) return null;
    secs = h * 3600 + mi * 60;
    p += 6;
    if (p < e && b[p] === 0x3a) {
      const se = num(b, p + 1, 2);
      if (se < 0 || se > 60) return null;
      secs += Math.min(se, 59);
      p += 3;
      if (p < e && (b[p] === 0x2e || b[p] === 0x2c)) {
        p++;
        let n = 0;
        while (p < e && isDigit(b[p])) {
          if (n < 6) frac = frac * 10 + (b[p] - ZERO);
          else if (b[p] !== ZERO) sub = true;
          n++;
          p++;
        }
        if (n === 0) return null;
        for (let i = n; i < 6; i++) frac *= 10;
      }
    }
    if (h === 24 && (secs !== 86400 || frac !== 0)) return null;
  }
  if (p < e) {
    const c = b[p];
    if (c === 0x5a || c === 0x7a) { zoned = true; p++; } else if (c === 0x2b || c === 0x2d) {
      const oh = num(b, p + 1, 2);
      if (oh < 0 || oh > 23) return null;
      let om = 0;
      let q = p + 3;
      if (q < e && b[q] === 0x3a) q++;
      if (q < e) { om = num(b, q, 2); if (om < 0 || om > 59) return null; q += 2; }
      offsetMin = (oh * 60 + om) * (c === 0x2d ? -1 : 1);
      zoned = true;
      p = q;
    } else return null;
  }
  if (p !== e) return null;
  iso.us = (daysFromCivil(y, mo, d) * 86400 + secs - offsetMin * 60) * 1e6 + frac;
  iso.zoned = zoned;
  iso.subMicro = sub;
  return iso;
}

/**
 * An epoch number in `unit` as whole µs (floored), read from its digits so that nothing is lost
 * through a double; undefined when the field is not a plain decimal.
 */
export function epochToMicros(b: Uint8Array, s: number, e: number, unit: 's' | 'ms' | 'us' | 'ns'): { us: number; subMicro: boolean } | undefined {
  const shift = unit === 's' ? 6 : unit === 'ms' ? 3 : unit === 'us' ? 0 : -3;
  let p = s;
  let neg = false;
  if (b[p] === 0x2d || b[p] === 0x2b) { neg = b[p] === 0x2d; p++; }
  let v = 0;
  let any = false;
  let sub = false;
  let pending = shift < 0 ? -shift : 0; // integer digits still to drop (ns)
  const intStart = p;
  while (p < e && isDigit(b[p])) p++;
  const intEnd = p;
  const keep = intEnd - intStart - pending;
  for (let i = intStart; i < intEnd; i++) {
    any = true;
    if (i - intStart < keep) v = v * 10 + (b[i] - ZERO);
    else if (b[i] !== ZERO) sub = true;
  }
  pending = Math.max(0, shift);
  if (p < e && b[p] === 0x2e) {
    p++;
    while (p < e && isDigit(b[p])) {
      any = true;
      if (pending > 0) { v = v * 10 + (b[p] - ZERO); pending--; } else if (b[p] !== ZERO) sub = true;
      p++;
    }
  }
  if (!any || p !== e) {
    const x = Number(latin1(b, s, e));
    if (!Number.isFinite(x)) return undefined;
    const us = x * (shift >= 0 ? POW10[shift] : 1 / POW10[-shift]);
    return { us: Math.floor(us), subMicro: us !== Math.floor(us) };
  }
  for (; pending > 0; pending--) v *= 10;
  if (neg && sub) v += 1; // floor toward −∞
  return { us: neg ? -v : v, subMicro: sub };
}
