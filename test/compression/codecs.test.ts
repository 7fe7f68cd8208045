// Round trips of every codec, bit for bit, on generated and adversarial data: random doubles,
// NaN payloads, −0, ±Infinity, constant runs, monotone and non-monotone times, int8 beyond 2^53,
// all NULL, a single row — and the text the raw path renders decoded floats as, against
// PostgreSQL's own output.
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter } from '../../src/compression/codecs/bytes.ts';
import { DECIMAL, SPLIT, decodeFloats, encodeFloats } from '../../src/compression/codecs/floats.ts';
import { decodeBigInts, decodeInts, encodeBigInts, encodeInts } from '../../src/compression/codecs/ints.ts';
import { decodeColumn, encodeColumn } from '../../src/compression/codecs/columns.ts';
import { float4Text, float8Text } from '../../src/compression/cells.ts';
import { rng } from '../helpers/rollups.ts';
import { createTestDb } from '../helpers/db.ts';
import { kth, planCurve, unpackCurve, writeCurve } from '../../src/compression/codecs/curve.ts';
import format1 from '../../fixtures/compression/format1.json' with { type: 'json' };
import { counter as f1Counter, noisy as f1Noisy, ramp as f1Ramp, times as f1Times } from '../../fixtures/compression/format1-cases.ts';
import format2 from '../../fixtures/compression/format2.json' with { type: 'json' };
import * as f2 from '../../fixtures/compression/format2-cases.ts';

const SIZES = [1, 2, 3, 127, 128, 129, 1000, 10_000];

function bitsOf(a: Float64Array | Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function nanWithPayload(payload: number, negative = false): number {
  const a = new Float64Array(1);
  const u = new Uint32Array(a.buffer);
  u[1] = (negative ? 0xfff00000 : 0x7ff00000) | ((payload >>> 20) & 0xfffff) | 0x80000;
  u[0] = payload >>> 0;
  return a[0];
}

/** Float arrays built bit by bit (NaN payloads survive only in typed arrays). */
function floatCases(n: number, seed: number): Record<string, Float64Array> {
  const r = rng(seed);
  const make = (f: (i: number) => number): Float64Array => Float64Array.from({ length: n }, (_, i) => f(i));
  const cases: Record<string, Float64Array> = {
    random: new Float64Array(n),
    adc: make(() => Math.round(r() * 65535) * (20 / 65535) - 10),
    decimals3: make((i) => Math.round((20 * Math.sin(i / 500) + (r() - 0.5)) * 1000) / 1000),
    decimals4: make(() => Math.round(r() * 1e8) / 1e4),
    constant: make(() => 21.5),
    integers: make((i) => i * 3 - 1000),
    extremes: make((i) => [0, -0, Infinity, -Infinity, NaN, Number.MAX_VALUE, -Number.MIN_VALUE, 5e-324, 1e300, 1e-300][i % 10]),
    mostlyDecimalWithSpecials: make((i) => (i % 17 === 0 ? -0 : i % 29 === 0 ? Infinity : Math.round(r() * 1e5) / 100)),
  };
  // Random bit patterns: every double there is, NaN payloads included.
  const u = new Uint32Array(cases.random.buffer);
  for (let i = 0; i < u.length; i++) u[i] = Math.floor(r() * 2 ** 32);
  const payloads = new Float64Array(n);
  const pu = new Uint32Array(payloads.buffer);
  for (let i = 0; i < n; i++) {
    const one = new Uint32Array(new Float64Array([nanWithPayload(Math.floor(r() * 2 ** 32), i % 2 === 1)]).buffer);
    if (i % 3 === 0) { pu[2 * i] = one[0]; pu[2 * i + 1] = one[1]; } else payloads[i] = Math.round(r() * 1000) / 10;
  }
  cases.nanPayloads = payloads;
  return cases;
}

function roundTripFloats(values: Float64Array | Float32Array, scheme?: number): Float64Array | Float32Array {
  const w = new ByteWriter();
  encodeFloats(w, values, scheme);
  return decodeFloats(new ByteReader(w.finish()), values.length, values instanceof Float32Array);
}

describe('float codecs', () => {
  it('round-trips every case bit for bit, float8 and float4, under either scheme', () => {
    for (const n of SIZES) {
      for (const [name, values] of Object.entries(floatCases(n, n))) {
        const back = roundTripFloats(values);
        expect(Buffer.from(bitsOf(back)).equals(Buffer.from(bitsOf(values))), `${name} n=${n}`).toBe(true);
        const split = roundTripFloats(values, SPLIT);
        expect(Buffer.from(bitsOf(split)).equals(Buffer.from(bitsOf(values))), `${name} n=${n} split`).toBe(true);
        const f32 = new Float32Array(n);
        new Uint32Array(f32.buffer).set(new Uint32Array(values.buffer).filter((_, i) => i % 2 === 1));
        const back32 = roundTripFloats(f32);
        expect(Buffer.from(bitsOf(back32)).equals(Buffer.from(bitsOf(f32))), `${name} n=${n} float4`).toBe(true);
        const dec32 = new Float32Array(values.map((v) => Math.fround(v)));
        expect(Buffer.from(bitsOf(roundTripFloats(dec32))).equals(Buffer.from(bitsOf(dec32))), `${name} n=${n} fround`).toBe(true);
      }
    }
  });

  it('uses the decimal scheme for instrument-like values, and it is several times smaller than 8 bytes a value', () => {
    const values = floatCases(10_000, 7).decimals3;
    const w = new ByteWriter();
    encodeFloats(w, values);
    const bytes = w.finish();
    expect(bytes[0]).toBe(DECIMAL);
    expect(bytes.length / values.length).toBeLessThan(2.5);
  });

  it('packs a smooth channel with noise as a curve plus residuals: smaller than frame of reference or deltas, exact at the limits', () => {
    const r = rng(21);
    // A 3-decimal sine with noise of ±0.05: within a block of 128 the drift is wider than the noise.
    const smooth = Float64Array.from({ length: 10_000 }, (_, i) => Math.round((20 * Math.sin(i / 1000) + (r() - 0.5) * 0.1) * 1000) / 1000);
    const w = new ByteWriter();
    encodeFloats(w, smooth);
    const bytes = w.finish();
    expect([bytes[0], bytes[2]]).toEqual([DECIMAL, 3]);
    expect(bitsOf(decodeFloats(new ByteReader(bytes), smooth.length, false))).toEqual(bitsOf(smooth));
    // Noise is 100 steps: log2(101) = 6.7 bits a value, where bit-packing takes 7, deltas 8 and the frame 9+.
    expect(bytes.length / smooth.length).toBeLessThan(0.9);
    // Steep lines near the integer limit (2^49), descending and ascending, and with exceptions.
    for (const [name, f] of Object.entries({
      steepUp: (i: number) => -(2 ** 48) + i * 2 ** 38,
      steepDown: (i: number) => 2 ** 48 - i * 2 ** 38 - (i % 3),
      lineWithSpecials: (i: number) => (i % 50 === 7 ? -0 : i % 61 === 3 ? NaN : (i * 37 + (i % 5)) / 100),
    })) {
      const v = Float64Array.from({ length: 1000 }, (_, i) => f(i));
      expect(bitsOf(roundTripFloats(v)), name).toEqual(bitsOf(v));
    }
  });

  it('decodes columns written by format 1 (before runs and lines) bit for bit', () => {
    const read = (h: string): ByteReader => new ByteReader(new Uint8Array(Buffer.from(h, 'hex')));
    expect(Buffer.from(format1.noisy, 'hex')[2]).toBe(1); // frame of reference
    expect(Buffer.from(format1.ramp, 'hex')[2]).toBe(0); // deltas, with exceptions
    expect(bitsOf(decodeFloats(read(format1.noisy), f1Noisy.length, false))).toEqual(bitsOf(f1Noisy));
    expect(bitsOf(decodeFloats(read(format1.ramp), f1Ramp.length, false))).toEqual(bitsOf(f1Ramp));
    expect(Array.from(decodeBigInts(read(format1.times), f1Times.length))).toEqual(Array.from(f1Times));
    expect(Array.from(decodeInts(read(format1.counter), f1Counter.length))).toEqual(f1Counter);
  });

  it('decodes columns written by format 2 (runs, lines, boolean bitmaps) bit for bit, and format 3 packs them smaller', () => {
    const col = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
    expect(Array.from(col(format2.wave).subarray(0, 4))).toEqual([0, DECIMAL, 3, 2]); // no NULLs, decimal, 3 digits, line
    expect([col(format2.times)[1], col(format2.counter)[1]]).toEqual([2, 2]); // runs
    const wave = decodeColumn('float8', col(format2.wave), f2.N);
    expect(bitsOf((wave.values as { values: Float64Array }).values)).toEqual(bitsOf(f2.wave));
    expect(Array.from((decodeColumn('timestamptz', col(format2.times), f2.N).values as { values: BigInt64Array }).values)).toEqual(Array.from(f2.times));
    expect(Array.from((decodeColumn('int4', col(format2.counter), f2.N).values as { values: Int32Array }).values)).toEqual(Array.from(f2.counter));
    const flags = decodeColumn('bool', col(format2.flags), f2.N);
    expect(Array.from((flags.values as { bitmap: Uint8Array }).bitmap)).toEqual(Array.from(f2.flags));
    const nulls = decodeColumn('float8', col(format2.withNulls), f2.N);
    expect(Array.from(nulls.validity?.bitmap ?? [])).toEqual(Array.from(f2.nullsValid));
    const got = (nulls.values as { values: Float64Array }).values;
    for (let i = 0; i < f2.N; i++) if ((f2.nullsValid[i >> 3] >> (i & 7)) & 1) expect(got[i], `row ${i}`).toBe(f2.withNulls[i]);
    expect(encodeColumn('float8', { kind: 'number', values: f2.wave }, null, f2.N).length).toBeLessThan(col(format2.wave).length);
    expect(encodeColumn('bool', { kind: 'bits', bitmap: f2.flags, offset: 0 }, null, f2.N).length).toBeLessThan(col(format2.flags).length);
  });

  it('falls back to the split scheme for random doubles', () => {
    const w = new ByteWriter();
    encodeFloats(w, floatCases(1000, 3).random);
    expect(w.finish()[0]).toBe(SPLIT);
  });
});

describe('integer codecs', () => {
  it('round-trips int2/int4 values: constant, monotone, random, extremes', () => {
    const r = rng(11);
    for (const n of SIZES) {
      const cases: Record<string, number[]> = {
        constant: Array(n).fill(-7),
        counter: Array.from({ length: n }, (_, i) => i),
        random: Array.from({ length: n }, () => Math.floor(r() * 2 ** 32) - 2 ** 31),
        extremes: Array.from({ length: n }, (_, i) => (i % 2 ? 2 ** 31 - 1 : -(2 ** 31))),
      };
      for (const [name, v] of Object.entries(cases)) {
        const w = new ByteWriter();
        encodeInts(w, v);
        expect(Array.from(decodeInts(new ByteReader(w.finish()), n)), `${name} n=${n}`).toEqual(v);
      }
    }
  });

  it('round-trips int8 and µs timestamps: regular, irregular, non-monotone, beyond 2^53, the whole int64 range', () => {
    const r = rng(12);
    const MAX = 2n ** 63n - 1n;
    const MIN = -(2n ** 63n);
    for (const n of SIZES) {
      const cases: Record<string, bigint[]> = {
        regular: Array.from({ length: n }, (_, i) => 1_704_067_200_000_000n + BigInt(i) * 432_000n),
        irregular: Array.from({ length: n }, (_, i) => 1_704_067_200_000_001n + BigInt(i * 1000 + Math.floor(r() * 999))),
        shuffled: Array.from({ length: n }, () => 1_704_067_200_000_000n + BigInt(Math.floor(r() * 1e12))),
        beyond53: Array.from({ length: n }, (_, i) => 2n ** 53n + BigInt(i) * 3n + (i % 2 ? 1n : 0n)),
        extremes: Array.from({ length: n }, (_, i) => [MAX, MIN, 0n, -1n, 1n][i % 5]),
        negativeTimes: Array.from({ length: n }, (_, i) => -62_135_596_800_000_000n + BigInt(i)),
      };
      for (const [name, v] of Object.entries(cases)) {
        const w = new ByteWriter();
        encodeBigInts(w, BigInt64Array.from(v));
        expect(Array.from(decodeBigInts(new ByteReader(w.finish()), n)), `${name} n=${n}`).toEqual(v);
      }
    }
  });

  it('packs regular timestamps in well under a byte each', () => {
    const w = new ByteWriter();
    encodeBigInts(w, BigInt64Array.from({ length: 10_000 }, (_, i) => 1_704_067_200_000_000n + BigInt(i) * 432_000n));
    expect(w.length).toBeLessThan(200);
  });

  it('stores regular series cut by a few jumps as runs: a few bytes for thousands of rows, exact, corruption rejected', () => {
    // One sample's rows in a day: runs of 1,000 regular times with gaps between them.
    const times = BigInt64Array.from({ length: 5000 }, (_, i) => 1_704_067_200_000_000n + BigInt(i) * 864_000n + BigInt(Math.floor(i / 1000)) * 17_280_000_000n);
    const w = new ByteWriter();
    encodeBigInts(w, times);
    const bytes = w.finish();
    expect(bytes[0]).toBe(2);
    expect(bytes.length).toBeLessThan(100); // bit-packed: over 3,000
    expect(Array.from(decodeBigInts(new ByteReader(bytes), times.length))).toEqual(Array.from(times));
    const counter = Array.from({ length: 5000 }, (_, i) => i + 9000 * Math.floor(i / 1000) - 2 ** 31);
    const wi = new ByteWriter();
    encodeInts(wi, counter);
    expect(wi.length).toBeLessThan(100);
    expect(Array.from(decodeInts(new ByteReader(wi.finish()), counter.length))).toEqual(counter);
    // Runs that hold more or fewer rows than the segment are corrupt.
    expect(() => decodeBigInts(new ByteReader(bytes), times.length - 1)).toThrow(/cannot decode/);
    expect(() => decodeBigInts(new ByteReader(bytes), times.length + 1)).toThrow(/cannot decode/);
  });
});

describe('curve codec (integers as a smooth curve plus mixed-radix residuals)', () => {
  const LIMIT = 2 ** 37;
  const roundTrip = (v: Float64Array): Uint8Array => {
    const plan = planCurve(v);
    expect(plan, 'in range').not.toBeNull();
    const w = new ByteWriter();
    writeCurve(w, plan as NonNullable<typeof plan>);
    const bytes = w.finish();
    expect(bytes.length, 'size as planned').toBe(plan?.size);
    expect(Array.from(unpackCurve(new ByteReader(bytes), v.length))).toEqual(Array.from(v));
    return bytes;
  };

  it('finds the median step by selection as a sort would (ties, runs, every position)', () => {
    const r = rng(5);
    for (let k = 0; k < 400; k++) {
      const n = 1 + Math.floor(r() * 40);
      const levels = 1 + Math.floor(r() * (k % 3 === 0 ? 3 : 1000));
      const a = Float64Array.from({ length: n }, () => Math.floor(r() * levels));
      const at = Math.floor(r() * n);
      const sorted = a.slice().sort();
      expect(kth(a.slice(), at)).toBe(sorted[at]);
    }
    expect(kth(Float64Array.from([3, 3, 3, 3]), 2)).toBe(3);
    expect(kth(Float64Array.from([9, 8, 7, 6, 5, 4, 3, 2, 1]), 4)).toBe(5);
  });

  it('round-trips generated and adversarial integers of every length', () => {
    const r = rng(31);
    for (const n of [...SIZES, 63, 64, 65, 255, 256, 257]) {
      const cases: Record<string, (i: number) => number> = {
        smoothNoise: (i) => Math.round(5000 * Math.sin(i / 300) + (r() - 0.5) * 200),
        jumps: (i) => Math.round(1000 * Math.floor(i / 97) * (i % 2 ? 1 : -1) + 300 * Math.cos(i / 50) + r() * 40),
        constant: () => -17,
        zero: () => 0,
        randomWalk: (() => { let x = 0; return () => (x += Math.round((r() - 0.5) * 1000)); })(),
        random: () => Math.floor((r() - 0.5) * 2 ** 34),
        limits: (i) => [LIMIT - 1, -(LIMIT - 1), 0, LIMIT - 1, -(LIMIT - 1)][i % 5],
        steep: (i) => -(LIMIT / 2) + i * 2 ** 22,
        spikes: (i) => (i % 37 === 0 ? 2 ** 36 : i % 41 === 0 ? -(2 ** 36) : i),
      };
      for (const [name, f] of Object.entries(cases)) {
        const v = Float64Array.from({ length: n }, (_, i) => f(i));
        // Residuals spanning 2^37 or more are declined (frame of reference or deltas take them):
        // only values spread over 2^35 or more come near.
        if (planCurve(v) === null) { expect(Math.max(...v) - Math.min(...v), `${name} n=${n} declined`).toBeGreaterThanOrEqual(2 ** 35); continue; }
        try { roundTrip(v); } catch (e) { throw new Error(`${name} n=${n}: ${String(e)}`, { cause: e }); }
      }
    }
  });

  it('declines values at or beyond 2^37 (the other layouts take them)', () => {
    expect(planCurve(Float64Array.from([0, 1, LIMIT]))).toBeNull();
    expect(planCurve(Float64Array.from([-LIMIT, 1]))).toBeNull();
  });

  it('costs about the noise alone: log2(span + 1) bits a value, across jumps between runs', () => {
    const r = rng(5);
    // Runs of 1,000 values from different stretches of one slow signal (one tag's rows of a day), noise of 131 steps.
    const v = Float64Array.from({ length: 5000 }, (_, i) => Math.round(20_000 * Math.sin((i + 7000 * Math.floor(i / 1000)) / 2000) + Math.floor(r() * 131)));
    const bytes = roundTrip(v);
    expect((bytes.length * 8) / v.length).toBeLessThan(Math.log2(131) + 0.4);
  });

  it('rejects a corrupt or truncated curve with an error', () => {
    const v = Float64Array.from({ length: 300 }, (_, i) => Math.round(100 * Math.sin(i / 30)) + (i % 7));
    const plan = planCurve(v);
    const w = new ByteWriter();
    writeCurve(w, plan as NonNullable<typeof plan>);
    const good = w.finish();
    for (let cut = 0; cut < good.length; cut++) expect(() => unpackCurve(new ByteReader(good.subarray(0, cut)), v.length)).toThrow();
    const bad = good.slice();
    bad[0] = 200; // knot shift
    expect(() => unpackCurve(new ByteReader(bad), v.length)).toThrow(/shift/);
  });
});

describe('boolean columns', () => {
  it('store a rare value as positions, smaller than the bitmap, and round-trip every pattern', () => {
    const r = rng(17);
    for (const n of [1, 7, 8, 9, 100, 1000, 10_000]) {
      for (const p of [0, 0.001, 0.05, 0.3, 0.5, 0.95, 0.999, 1]) {
        const bitmap = new Uint8Array(Math.ceil(n / 8));
        for (let i = 0; i < n; i++) if (r() < p) bitmap[i >> 3] |= 1 << (i & 7);
        for (const withNulls of [false, true]) {
          const validity = withNulls ? { bitmap: Uint8Array.from(bitmap, (_, k) => 0xff ^ (1 << (k % 8))), offset: 0 } : null;
          const bytes = encodeColumn('bool', { kind: 'bits', bitmap, offset: 0 }, validity, n);
          const d = decodeColumn('bool', bytes, n);
          for (let i = 0; i < n; i++) {
            const valid = validity === null || ((validity.bitmap[i >> 3] >> (i & 7)) & 1) === 1;
            if (valid) expect((((d.values as { bitmap: Uint8Array }).bitmap[i >> 3] >> (i & 7)) & 1), `n=${n} p=${p} row ${i}`).toBe((bitmap[i >> 3] >> (i & 7)) & 1);
          }
          if (!withNulls && n >= 1000 && (p <= 0.05 || p >= 0.95)) {
            expect(bytes[0] & 0x10, `n=${n} p=${p} as positions`).toBe(0x10);
            expect(bytes.length, `n=${n} p=${p}`).toBeLessThan(n / 8 / 2);
          }
        }
      }
    }
  });
});

describe('columns with NULLs', () => {
  const bitmapOf = (valid: boolean[]): Uint8Array => {
    const b = new Uint8Array(Math.ceil(valid.length / 8));
    valid.forEach((v, i) => { if (v) b[i >> 3] |= 1 << (i & 7); });
    return b;
  };

  it('round-trips every type with some NULLs, all NULL and none', () => {
    const r = rng(13);
    for (const n of [1, 9, 1000]) {
      for (const pattern of ['none', 'some', 'all']) {
        const valid = Array.from({ length: n }, () => (pattern === 'none' ? true : pattern === 'all' ? false : r() < 0.7));
        const validity = pattern === 'none' ? null : { bitmap: bitmapOf(valid), offset: 0 };
        const f8 = Float64Array.from({ length: n }, (_, i) => (i % 5 === 0 ? -0 : Math.round(r() * 1e6) / 1e3));
        const i4 = Int32Array.from({ length: n }, () => Math.floor(r() * 2000) - 1000);
        const i8 = BigInt64Array.from({ length: n }, () => 2n ** 60n + BigInt(Math.floor(r() * 1e9)));
        const bools = bitmapOf(Array.from({ length: n }, () => r() < 0.5));
        const texts = Array.from({ length: n }, (_, i) => (valid[i] ? `ünïcode ${Math.floor(r() * 100)} ☃` : null));
        const check = <T>(type: Parameters<typeof encodeColumn>[0], data: Parameters<typeof encodeColumn>[1], read: (d: ReturnType<typeof decodeColumn>, i: number) => T, want: (i: number) => T): void => {
          const d = decodeColumn(type, encodeColumn(type, data, validity, n), n);
          for (let i = 0; i < n; i++) {
            const isValid = d.validity === null || ((d.validity.bitmap[i >> 3] >> (i & 7)) & 1) === 1;
            expect(isValid, `${type} ${pattern} row ${i} validity`).toBe(valid[i]);
            if (valid[i]) expect(read(d, i), `${type} ${pattern} row ${i}`).toEqual(want(i));
          }
        };
        check('float8', { kind: 'number', values: f8 }, (d, i) => Object.is((d.values as { values: Float64Array }).values[i], f8[i]), () => true);
        check('int4', { kind: 'number', values: i4 }, (d, i) => (d.values as { values: Int32Array }).values[i], (i) => i4[i]);
        check('int8', { kind: 'bigint', values: i8 }, (d, i) => (d.values as { values: BigInt64Array }).values[i], (i) => i8[i]);
        check('bool', { kind: 'bits', bitmap: bools, offset: 0 }, (d, i) => ((d.values as { bitmap: Uint8Array }).bitmap[i >> 3] >> (i & 7)) & 1, (i) => (bools[i >> 3] >> (i & 7)) & 1);
        check('text', { kind: 'strings', values: texts }, (d, i) => (d.values as { values: readonly (string | null)[] }).values[i], (i) => texts[i]);
      }
    }
  });

  it('rejects a corrupt column with an error, never a wrong value or an out-of-bounds read', () => {
    const good = encodeColumn('float8', { kind: 'number', values: Float64Array.from([1.5, 2.25, 3]) }, null, 3);
    for (let cut = 0; cut < good.length; cut++) {
      expect(() => decodeColumn('float8', good.subarray(0, cut), 3)).toThrow();
    }
  });
});

describe('float text', () => {
  it('renders decoded floats exactly as PostgreSQL prints them', async () => {
    const db = await createTestDb();
    try {
      const r = rng(14);
      const f8 = [0, -0, 1, -1, 0.1, 1e15, 1e14, 123456789012345.6, 1e-4, 1e-5, 0.00012345, 1.5e-7, 1e21, 1e22, 5e-324, Number.MAX_VALUE, 1 / 3, NaN, Infinity, -Infinity,
        ...Array.from({ length: 20_000 }, () => (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20)), 266975032398477184];
      const f4 = [...f8.map((x) => Math.fround(x)), 123456, 1234567, 0.0001, 1e-5, 3.4028234663852886e38, 1e-45];
      const { rows } = await db.pool.query<{ a: string[]; b: string[] }>(
        'SELECT $1::float8[]::text[] AS a, $2::float4[]::text[] AS b', [f8.map(float8Text), f4.map((x) => float4Text(x))]);
      expect(rows[0].a).toEqual(f8.map(float8Text));
      expect(rows[0].b).toEqual(f4.map(float4Text));
    } finally {
      await db.drop();
    }
  });
});
