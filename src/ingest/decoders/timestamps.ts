// Arrow timestamps to microseconds, exactly: int64 values are moved as two int32 halves, so a
// nanosecond value is floor-divided by 1,000 without rounding through a double and without a
// BigInt per row. Sub-microsecond remainders are counted, never dropped silently.
import { AppError } from '../../errors/index.ts';
import type { Validity } from '../../domain/types.ts';
import { SUPPORTED_MAX_US, SUPPORTED_MIN_US, formatMicros } from '../../domain/time.ts';

const TWO32 = 4294967296;
const INT32_MAX = 2147483647;
const INT32_MIN = -2147483648;

export type TimeUnitName = 's' | 'ms' | 'us' | 'ns';

export interface MicrosResult {
  micros: BigInt64Array;
  min: bigint;
  max: bigint;
  /** Values whose nanosecond part was not a whole microsecond (floored). */
  subMicro: number;
}

function isValid(v: Validity | null, i: number): boolean {
  if (v === null) return true;
  const bit = v.offset + i;
  return ((v.bitmap[bit >> 3] >> (bit & 7)) & 1) === 1;
}

/**
 * Converts int64 timestamps in `unit` to µs since the epoch. Null rows are an error when
 * `column` is the time column (`requireValues`), and are left as 0 otherwise.
 */
export function toMicros(
  values: BigInt64Array, unit: TimeUnitName, validity: Validity | null, column: string, requireValues: boolean,
): MicrosResult {
  const n = values.length;
  const src = new Int32Array(values.buffer, values.byteOffset, n * 2);
  const out = new BigInt64Array(n);
  const dst = new Int32Array(out.buffer);
  const mul = unit === 's' ? 1_000_000 : unit === 'ms' ? 1000 : 1;
  let subMicro = 0;
  let minI = -1;
  let maxI = -1;
  let minHi = 0, minLo = 0, maxHi = 0, maxLo = 0;
  for (let i = 0; i < n; i++) {
    if (!isValid(validity, i)) {
      if (requireValues) {
        throw new AppError(422, 'invalid_timestamp', `time column ${JSON.stringify(column)} is null at row ${i}; every row needs a time`,
          { detail: { column, row: i } });
      }
      continue;
    }
    let lo = src[2 * i] >>> 0;
    let hi = src[2 * i + 1];
    if (unit === 'ns') {
      const hq = Math.floor(hi / 1000);
      const rest = (hi - hq * 1000) * TWO32 + lo;
      const rq = Math.floor(rest / 1000);
      if (rest - rq * 1000 !== 0) subMicro++;
      hi = hq;
      lo = rq;
    } else if (mul !== 1) {
      const loM = lo * mul;
      const carry = Math.floor(loM / TWO32);
      lo = loM - carry * TWO32;
      hi = hi * mul + carry;
      if (hi > INT32_MAX || hi < INT32_MIN) {
        throw new AppError(422, 'invalid_timestamp',
          `column ${JSON.stringify(column)}: value ${values[i]} ${unit} at row ${i} is outside the representable range`, { detail: { column, row: i } });
      }
    }
    dst[2 * i] = lo | 0;
    dst[2 * i + 1] = hi;
    if (minI < 0 || hi < minHi || (hi === minHi && lo < minLo)) { minI = i; minHi = hi; minLo = lo; }
    if (maxI < 0 || hi > maxHi || (hi === maxHi && lo > maxLo)) { maxI = i; maxHi = hi; maxLo = lo; }
  }
  const min = minI < 0 ? 0n : out[minI];
  const max = maxI < 0 ? 0n : out[maxI];
  if (minI >= 0) checkRange(min, minI, column);
  if (maxI >= 0) checkRange(max, maxI, column);
  return { micros: out, min, max, subMicro };
}

function checkRange(us: bigint, row: number, column: string): void {
  if (us < SUPPORTED_MIN_US || us > SUPPORTED_MAX_US) {
    throw new AppError(422, 'invalid_timestamp',
      `column ${JSON.stringify(column)}: timestamp ${us}µs at row ${row} is outside the supported range (4713 BC to ${formatMicros(SUPPORTED_MAX_US).slice(0, 7)})`,
      { detail: { column, row } });
  }
}
