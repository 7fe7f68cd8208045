// The ingest record's NULL and NaN counts (src/ingest/field-stats.ts) against counts made value by
// value: validity bitmaps at odd bit offsets, NaN under a null bit (not a NaN: the value is absent),
// lengths that are not multiples of 4 or 8, float4 and non-float columns, several batches.
import { describe, expect, it } from 'vitest';
import { FieldStats } from '../../src/ingest/field-stats.ts';
import type { ColumnBatch, ColumnData, StreamColumn } from '../../src/domain/types.ts';
import { rng } from '../helpers/rollups.ts';

const col = (name: string, type: StreamColumn['type']): StreamColumn => ({ name, columnName: name, role: 'field', type, unit: null, description: null });

function batch(seed: number, n: number, offset: number): { batch: ColumnBatch; want: Record<string, { nan?: number; null: number }> } {
  const r = rng(seed);
  const bitmap = new Uint8Array(Math.ceil((n + offset) / 8) + 1);
  const f8 = new Float64Array(n);
  const f4 = new Float32Array(n);
  const i4 = new Int32Array(n);
  let nulls = 0; let nan8 = 0; let nan4 = 0;
  for (let i = 0; i < n; i++) {
    const valid = r() < 0.9;
    if (valid) bitmap[(offset + i) >> 3] |= 1 << ((offset + i) & 7); else nulls++;
    f8[i] = r() < 0.2 ? NaN : r();
    f4[i] = r() < 0.1 ? NaN : r();
    i4[i] = i;
    if (valid && Number.isNaN(f8[i])) nan8++;
    if (valid && Number.isNaN(f4[i])) nan4++;
  }
  const validity = { bitmap, offset };
  const columns: ColumnData[] = [
    { column: col('a', 'float8'), values: { kind: 'number', values: f8 }, validity },
    { column: col('b', 'float4'), values: { kind: 'number', values: f4 }, validity },
    { column: col('c', 'int4'), values: { kind: 'number', values: i4 }, validity },
    { column: col('d', 'float8'), values: { kind: 'number', values: f8 }, validity: null },
  ];
  const allNaN = f8.reduce((k, x) => k + (Number.isNaN(x) ? 1 : 0), 0);
  return {
    batch: { length: n, time: new BigInt64Array(n), minTime: 0n, maxTime: 0n, columns },
    want: { a: { nan: nan8, null: nulls }, b: { nan: nan4, null: nulls }, c: { null: nulls }, d: { nan: allNaN, null: 0 } },
  };
}

describe('field stats', () => {
  it.each([[1, 1001, 3], [2, 8, 0], [3, 3, 5], [4, 4099, 7]])('seed %i: %i rows at bit offset %i, counted as value by value', (seed, n, offset) => {
    const { batch: b, want } = batch(seed, n, offset);
    const stats = new FieldStats();
    stats.add(b);
    expect(stats.toJSON()).toEqual(want);
  });

  it('adds up over batches', () => {
    const stats = new FieldStats();
    const one = batch(5, 777, 1);
    const two = batch(6, 333, 6);
    stats.add(one.batch);
    stats.add(two.batch);
    const sum = (k: string, p: 'nan' | 'null'): number | undefined => (one.want[k][p] === undefined ? undefined : (one.want[k][p] as number) + (two.want[k][p] as number));
    expect(stats.toJSON()).toEqual(Object.fromEntries(['a', 'b', 'c', 'd'].map((k) => [k, { ...(k === 'c' ? {} : { nan: sum(k, 'nan') }), null: sum(k, 'null') }])));
  });
});
