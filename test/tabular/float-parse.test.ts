// The CSV reader's decimal parser (Clinger, Eisel–Lemire, Number() beyond 19 digits) against
// Number() on millions of inputs: shortest round-trip strings of random doubles (all exponents,
// subnormals), 16–17-digit renderings, random digit strings with random exponents, exact halfway
// cases between two doubles and their neighbours, and the boundaries (overflow, underflow, the
// largest subnormal, powers of ten). Bit-exact: -0 and 0 differ. FLOAT_CASES scales the count.
import { describe, expect, it } from 'vitest';
import { Kind, classify, parseFloatField } from '../../src/ingest/decoders/csv/values.ts';
import { eiselLemire } from '../../src/ingest/decoders/csv/float.ts';
import { rng } from '../helpers/rollups.ts';

const CASES = Number(process.env.FLOAT_CASES ?? 1_000_000);
const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
let buf = Buffer.alloc(1024);

/** Mismatches, at most a few kept, with the count. */
function check(texts: Iterable<string>): { n: number; bad: string[] } {
  let n = 0;
  const bad: string[] = [];
  for (const t of texts) {
    if (t.length > buf.length) buf = Buffer.alloc(t.length * 2);
    const len = buf.write(t, 0, 'latin1');
    const got = parseFloatField(buf, 0, len, false);
    const want = Number(t);
    n++;
    if (!Object.is(got, want) && bad.length < 10) bad.push(`${t}: ${got} ≠ ${want}`);
    // The inference pass's syntax check agrees with the parser.
    const kind = classify(buf, 0, len, false);
    if ((kind === Kind.Int || kind === Kind.Float) !== (got !== undefined) && bad.length < 10) bad.push(`${t}: classified ${kind}`);
  }
  return { n, bad };
}

function randomDouble(r: () => number, subnormal: boolean): number {
  u32[0] = (r() * 2 ** 32) >>> 0;
  u32[1] = subnormal ? ((r() * 2 ** 20) >>> 0) | (r() < 0.5 ? 0x80000000 : 0) : (r() * 2 ** 32) >>> 0;
  return f64[0];
}

function* randomDoubles(n: number, seed: number): Generator<string> {
  const r = rng(seed);
  for (let i = 0; i < n; i++) {
    const x = randomDouble(r, i % 10 === 0);
    if (!Number.isFinite(x)) continue;
    yield String(x);
    if (i % 4 === 0) yield x.toPrecision(17);
    if (i % 4 === 1) yield x.toPrecision(16);
    if (i % 4 === 2) yield x.toExponential(Math.floor(r() * 21));
    if (i % 4 === 3 && Math.abs(x) < 1e21) yield x.toFixed(Math.floor(r() * 21));
  }
}

/** Lab-like magnitudes: what instruments and pandas/polars write (e.g. sin(t)·k + c). */
function* labDoubles(n: number, seed: number): Generator<string> {
  const r = rng(seed);
  for (let i = 0; i < n; i++) {
    const x = (r() - 0.5) * 10 ** Math.floor(r() * 24 - 12);
    yield String(x);
  }
}

/** Digit strings of 1–25 digits, a point anywhere, an exponent in [-360, 330]. */
function* randomDigits(n: number, seed: number): Generator<string> {
  const r = rng(seed);
  const digits = '0123456789';
  for (let i = 0; i < n; i++) {
    const len = 1 + Math.floor(r() * 25);
    let s = '';
    for (let j = 0; j < len; j++) s += digits[Math.floor(r() * 10)];
    const dot = Math.floor(r() * (len + 1));
    s = `${s.slice(0, dot)}.${s.slice(dot)}`;
    if (s === '.') s = '0';
    if (r() < 0.8) s += `e${Math.floor(r() * 690) - 360}`;
    yield (r() < 0.5 ? '-' : '') + s;
  }
}

const TWO = 2n;
/** The exact decimal of m·2^e (a dyadic rational), e.g. a midpoint between two doubles. */
function dyadicDecimal(m: bigint, e: number): string {
  if (e >= 0) return (m << BigInt(e)).toString();
  const k = -e;
  const scaled = m * 5n ** BigInt(k); // m·2^e = m·5^k / 10^k
  const s = scaled.toString().padStart(k + 1, '0');
  return `${s.slice(0, s.length - k)}.${s.slice(s.length - k)}`.replace(/\.?0+$/, '');
}

/** Exact midpoints between adjacent doubles, and the decimals one unit in their last place away. */
function* halfway(n: number, seed: number): Generator<string> {
  const r = rng(seed);
  for (let i = 0; i < n; i++) {
    // A double with an exponent near 0 (so that the midpoint has few digits), or anywhere.
    const x = i % 3 === 0 ? randomDouble(r, false) : Math.abs((r() * 2 ** 64) * 2 ** Math.floor(r() * 40 - 30));
    if (!Number.isFinite(x) || x === 0) continue;
    f64[0] = x;
    const hi = BigInt(u32[1] & 0x7fffffff);
    const bexp = Number(hi >> 20n);
    const frac = ((hi & 0xfffffn) << 32n) | BigInt(u32[0]);
    const m = bexp === 0 ? frac : frac | (1n << 52n);
    const e = (bexp === 0 ? 1 : bexp) - 1075;
    const mid = dyadicDecimal(TWO * m + 1n, e - 1);
    yield mid;
    // Neighbours: the last digit ± 1 (as integers or decimals).
    const digits = mid.replace('.', '');
    if (digits.length <= 40) {
      const dot = mid.indexOf('.');
      const intLen = dot < 0 ? mid.length : dot;
      for (const delta of [-1n, 1n]) {
        const v = (BigInt(digits) + delta).toString().padStart(digits.length, '0');
        yield dot < 0 ? v : `${v.slice(0, intLen)}.${v.slice(intLen)}`;
      }
    }
  }
}

function* boundaries(): Generator<string> {
  yield* ['0', '-0', '0.0', '-0.0e5', '0e-400', '1e-400', '-1e-400', '1e400', '-1e400', '1e308', '1.7976931348623157e308',
    '1.7976931348623158e308', '1.7976931348623159e308', '1.797693134862315807e308', '2.2250738585072014e-308', '2.2250738585072011e-308',
    '2.2250738585072012e-308', '4.9406564584124654e-324', '2.4703282292062327e-324', '2.4703282292062328e-324', '5e-324', '3e-324',
    '9007199254740993', '9007199254740992', '9007199254740994', '9007199254740995', '18014398509481987', '9223372036854775807',
    '9223372036854775808', '18446744073709551615', '9999999999999999999', '1000000000000000000', '0.1', '0.2', '0.3', '7.0e-10',
    '1e23', '8.589973e9', '1.00000000000000011102230246251565404236316680908203125', '1.0000000000000001110223024625156540423631668090820312',
    '.5', '5.', '+7', '-.0', '1.e5', '00012', '-000.000e-0', '123456789012345678e-20', '1234567890123456789e-330', '1234567890123456789e290', '0.000000000000000000001234567890123456789'];
  for (let q = -345; q <= 310; q++) { yield `1e${q}`; yield `9.999999999999999999e${q}`; yield `5e${q}`; }
}

describe('decimal parsing, bit-exact with Number()', () => {
  it('boundaries: zeros, overflow, underflow, subnormals, 2^53 ± 1, powers of ten', () => {
    const r = check(boundaries());
    expect(r.bad).toEqual([]);
  });

  it(`${CASES} shortest round-trip and 16/17-digit renderings of random doubles (a tenth subnormal)`, () => {
    const r = check(randomDoubles(CASES, 11));
    expect(r.bad).toEqual([]);
    expect(r.n).toBeGreaterThan(CASES);
  });

  it(`${CASES / 2} lab-like magnitudes`, () => {
    expect(check(labDoubles(CASES / 2, 12)).bad).toEqual([]);
  });

  it(`${CASES / 2} random digit strings (1–25 digits, exponents −360 … 330)`, () => {
    expect(check(randomDigits(CASES / 2, 13)).bad).toEqual([]);
  });

  it(`${CASES / 5} exact halfway cases and their neighbours`, () => {
    const r = check(halfway(CASES / 5, 14));
    expect(r.bad).toEqual([]);
    expect(r.n).toBeGreaterThan(CASES / 5);
  });

  it('Eisel–Lemire alone on 19-digit significands with every power of ten', () => {
    const r = rng(15);
    const bad: string[] = [];
    for (let i = 0; i < CASES / 10; i++) {
      const wh = (r() * 2328306436) >>> 0; // w < 10^19
      const wl = (r() * 2 ** 32) >>> 0;
      const q = Math.floor(r() * 660) - 345;
      const w = (BigInt(wh) << 32n) | BigInt(wl);
      const want = Number(`${w}e${q}`);
      const got = eiselLemire(false, wh, wl, q);
      if (!Object.is(got, want) && bad.length < 10) bad.push(`${w}e${q}: ${got} ≠ ${want}`);
    }
    expect(bad).toEqual([]);
  });
});
