// The level parts a segment keeps in its statistics (segment-stats.ts), on the cases where the
// rules of a level row decide: ties at one instant, NaN, −0, NULL, text compared as UTF-8 bytes.
import { describe, expect, it } from 'vitest';
import { levelStats } from '../../src/compression/segment-stats.ts';
import { fieldStats } from '../../src/compression/segment.ts';

const times = (...t: number[]): BigInt64Array => BigInt64Array.from(t.map(BigInt));
const valid = (...bits: number[]): { bitmap: Uint8Array; offset: number } => {
  const bitmap = new Uint8Array(Math.ceil(bits.length / 8));
  bits.forEach((b, i) => { if (b) bitmap[i >> 3] |= 1 << (i & 7); });
  return { bitmap, offset: 0 };
};

describe('segment statistics for rollup levels', () => {
  it('first is the smallest value at the earliest time, last the largest at the latest; NaN apart', () => {
    const v = Float64Array.from([5, 3, NaN, 7, 9, NaN, 2, 8]);
    const t = times(10, 10, 11, 12, 13, 14, 15, 15);
    expect(levelStats('float8', { kind: 'number', values: v }, null, t, 8)).toEqual({ first: '3', last: '8', nanFirst: '11', nanLast: '14' });
  });

  it('times are kept only where they are not the segment\'s first and last', () => {
    const v = Float64Array.from([NaN, 1, 2, NaN]);
    const s = levelStats('float8', { kind: 'number', values: v }, null, times(1, 2, 3, 4), 4);
    expect(s).toEqual({ first: '1', firstAt: '2', last: '2', lastAt: '3', nanFirst: '1', nanLast: '4' });
  });

  it('NULLs are skipped; all NaN has neither first nor last', () => {
    const v = Float64Array.from([NaN, 0, NaN]);
    expect(levelStats('float8', { kind: 'number', values: v }, valid(1, 0, 1), times(1, 2, 3), 3)).toEqual({ first: null, last: null, nanFirst: '1', nanLast: '3' });
    expect(fieldStats('float8', { kind: 'number', values: v }, valid(1, 0, 1), 3)).toEqual({ count: 0, nan: 2, min: null, max: null, sum: null });
  });

  it('−0 stays −0 in min, max, sum, first and last', () => {
    const v = Float64Array.from([-0, -0]);
    expect(fieldStats('float8', { kind: 'number', values: v }, null, 2)).toEqual({ count: 2, nan: 0, min: '-0', max: '-0', sum: '-0' });
    expect(levelStats('float8', { kind: 'number', values: v }, null, times(1, 2), 2)).toEqual({ first: '-0', last: '-0' });
  });

  it('int8 and times keep exact integers, and times their sum', () => {
    const big = BigInt64Array.from([2n ** 62n, -(2n ** 62n), 2n ** 53n + 1n]);
    expect(levelStats('int8', { kind: 'bigint', values: big }, null, times(1, 1, 2), 3)).toEqual({ first: String(-(2n ** 62n)), last: String(2n ** 53n + 1n) });
    const ts = BigInt64Array.from([1_709_251_200_000_000n, 1_709_251_200_000_001n]);
    expect(fieldStats('timestamptz', { kind: 'bigint', values: ts }, null, 2).sum).toBe('3418502400000001');
  });

  it('text ties compare as UTF-8 bytes (COLLATE "C"), and long values are not kept', () => {
    // U+FF5E sorts below U+1F600 in UTF-8 bytes, above it in UTF-16 code units.
    const v = ['\u{1F600}', '\uFF5E', 'b', 'a'];
    expect(levelStats('text', { kind: 'strings', values: v }, null, times(1, 1, 2, 2), 4)).toEqual({ first: '\uFF5E', last: 'b' });
    expect(levelStats('text', { kind: 'strings', values: ['x'.repeat(65), 'y'] }, null, times(1, 2), 2)).toEqual({});
  });

  it('rows in time order (each time later than the one before) give what the rule gives', () => {
    // The rule, row by row: first is the earliest non-NULL, non-NaN value (the smallest on a tie),
    // last the latest (the largest on a tie), and the earliest and latest NaN.
    const rule = (v: Float64Array, ok: boolean[], t: BigInt64Array): Record<string, string | null> => {
      const rows = [...v.keys()].filter((i) => ok[i]);
      const nums = rows.filter((i) => !Number.isNaN(v[i]));
      const nans = rows.filter((i) => Number.isNaN(v[i]));
      const byTime = (a: number, b: number): number => Number(t[a] - t[b]) || v[a] - v[b];
      const f = [...nums].sort(byTime)[0];
      const l = [...nums].sort(byTime).at(-1);
      const out: Record<string, string | null> = { first: f === undefined ? null : String(v[f]), last: l === undefined ? null : String(v[l]) };
      if (f !== undefined && t[f] !== t[0]) out.firstAt = String(t[f]);
      if (l !== undefined && t[l] !== t[t.length - 1]) out.lastAt = String(t[l]);
      if (nans.length > 0) { out.nanFirst = String(t[nans[0]]); out.nanLast = String(t[nans[nans.length - 1]]); }
      return out;
    };
    let seed = 7;
    const rand = (): number => { seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31; return seed / 2 ** 31; };
    for (let k = 0; k < 300; k++) {
      const n = 1 + Math.floor(rand() * 12);
      const v = Float64Array.from({ length: n }, () => (rand() < 0.3 ? NaN : Math.floor(rand() * 5)));
      const ok = Array.from({ length: n }, () => rand() > 0.25);
      const t = BigInt64Array.from({ length: n }, (_, i) => BigInt(100 + 3 * i));
      const bits = valid(...ok.map(Number));
      expect(levelStats('float8', { kind: 'number', values: v }, bits, t, n)).toEqual(rule(v, ok, t));
      const ints = Int32Array.from(v, (x) => (Number.isNaN(x) ? 9 : x));
      expect(levelStats('int4', { kind: 'number', values: ints }, bits, t, n)).toEqual(rule(Float64Array.from(ints), ok, t));
    }
  });

  it('bool keeps the count of true', () => {
    const bitmap = new Uint8Array([0b1011]);
    expect(levelStats('bool', { kind: 'bits', bitmap, offset: 0 }, valid(1, 0, 1, 1), times(1, 2, 3, 4), 4)).toEqual({ true: 2 });
  });
});
