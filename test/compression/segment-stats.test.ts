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

  it('bool keeps the count of true', () => {
    const bitmap = new Uint8Array([0b1011]);
    expect(levelStats('bool', { kind: 'bits', bitmap, offset: 0 }, valid(1, 0, 1, 1), times(1, 2, 3, 4), 4)).toEqual({ true: 2 });
  });
});
