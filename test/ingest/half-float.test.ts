// Float16 values (no producer we have writes them) are widened to float4 by bit pattern.
import { describe, expect, it } from 'vitest';
import { halfToFloat } from '../../src/ingest/decoders/arrow-types.ts';

describe('Float16 → float4', () => {
  it.each([
    [0x3c00, 1], [0xc000, -2], [0x3555, 0.333251953125], [0x7bff, 65504], [0x0001, 2 ** -24], [0x0400, 2 ** -14],
    [0x0000, 0], [0x8000, -0], [0x7c00, Infinity], [0xfc00, -Infinity],
  ])('0x%s', (bits, value) => {
    expect(Object.is(halfToFloat(bits), value)).toBe(true);
  });
  it('reads NaN patterns as NaN', () => {
    expect(halfToFloat(0x7e00)).toBeNaN();
    expect(halfToFloat(0xfe01)).toBeNaN();
  });
});
