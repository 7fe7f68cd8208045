// What an upload held that is not a number, per column, for its ingest record: NULL (an Arrow or
// Parquet null, a CSV empty cell, an HDF5 fill value or a mapping's null_values) and NaN (float
// columns). Counted from the batches every decoder yields, so every format reports the same.
import type { ColumnBatch, ColumnData } from '../domain/types.ts';

export interface FieldCounts { nan?: number; null: number }

function nulls(col: ColumnData, n: number): number {
  const v = col.validity;
  if (v === null) return 0;
  let set = 0;
  const { bitmap, offset } = v;
  let i = 0;
  // Whole bytes at a byte boundary: a popcount per byte.
  for (; i < n && ((offset + i) & 7) !== 0; i++) set += (bitmap[(offset + i) >> 3] >> ((offset + i) & 7)) & 1;
  for (; i + 8 <= n; i += 8) {
    let b = bitmap[(offset + i) >> 3];
    b -= (b >> 1) & 0x55;
    b = (b & 0x33) + ((b >> 2) & 0x33);
    set += (b + (b >> 4)) & 0x0f;
  }
  for (; i < n; i++) set += (bitmap[(offset + i) >> 3] >> ((offset + i) & 7)) & 1;
  return n - set;
}

/** NaN among the valid values of a float column. */
function nans(col: ColumnData, n: number): number {
  if (col.values.kind !== 'number') return 0;
  const a = col.values.values;
  if (!(a instanceof Float64Array || a instanceof Float32Array)) return 0;
  const v = col.validity;
  const nanAt = (i: number): number => (a[i] !== a[i] && (v === null || ((v.bitmap[(v.offset + i) >> 3] >> ((v.offset + i) & 7)) & 1) === 1) ? 1 : 0);
  let count = 0;
  let i = 0;
  // Four at a time: NaN is rare, and one test of four values almost always says none.
  for (; i + 4 <= n; i += 4) {
    const x0 = a[i]; const x1 = a[i + 1]; const x2 = a[i + 2]; const x3 = a[i + 3];
    if (x0 !== x0 || x1 !== x1 || x2 !== x2 || x3 !== x3) count += nanAt(i) + nanAt(i + 1) + nanAt(i + 2) + nanAt(i + 3);
  }
  for (; i < n; i++) count += nanAt(i);
  return count;
}

/** Counts an upload's NULL and NaN per column (by its name in the stream). */
export class FieldStats {
  private readonly counts = new Map<string, FieldCounts>();

  add(batch: ColumnBatch): void {
    const n = batch.length;
    for (const col of batch.columns) {
      const { name, type } = col.column;
      let c = this.counts.get(name);
      if (c === undefined) {
        c = type === 'float8' || type === 'float4' ? { nan: 0, null: 0 } : { null: 0 };
        this.counts.set(name, c);
      }
      c.null += nulls(col, n);
      if (c.nan !== undefined) c.nan += nans(col, n);
    }
  }

  /** { column: { nan, null } } for every column the upload held (nan for float columns only). */
  toJSON(): Record<string, FieldCounts> {
    return Object.fromEntries(this.counts);
  }
}
