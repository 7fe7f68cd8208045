// HDF5 time conversion: CF unit strings as netCDF producers write them, exact 64-bit integer
// conversion, rounding of float times, and errors naming the dataset and row.
import { describe, expect, it } from 'vitest';
import { convertTimes, parseEpoch, parseSinceUnits, type TimeEncoding } from '../../src/ingest/decoders/hdf5/time.ts';
import { isAppError } from '../../src/errors/index.ts';

const naive = { count: 0 };
const enc = (unit: TimeEncoding['unit'], epochUs = 0n, scale = 1): TimeEncoding => ({ encoding: 'number', unit, epochUs, scale });

describe('CF units', () => {
  it.each([
    ['seconds since 2024-03-01T00:00:00Z', 's', 1709251200000000n],
    ['minutes since 2024-01-01 00:00:00', 'min', 1704067200000000n],
    ['days since 1970-1-1', 'd', 0n],
    ['hours since 2000-01-01 00:00:00 +1:00', 'h', 946681200000000n],
    ['microseconds since 1970-01-01T00:00:00.0Z', 'us', 0n],
    ['milliseconds since 2024-03-01 12:00:00 UTC', 'ms', 1709294400000000n],
    ['nanoseconds since 1970-01-01T00:00:00Z', 'ns', 0n],
  ])('%s', (text, unit, epochUs) => {
    expect(parseSinceUnits(text)).toEqual({ unit, epochUs, epochSubNs: 0 });
  });

  it('keeps the nanoseconds of an epoch finer than a microsecond (as xarray writes it)', () => {
    expect(parseSinceUnits('nanoseconds since 2024-03-01 00:00:00.123456789')).toEqual({ unit: 'ns', epochUs: 1709251200123456n, epochSubNs: 789 });
    const enc: TimeEncoding = { encoding: 'number', unit: 'ns', epochUs: 1709251200123456n, epochSubNs: 789, scale: 1 };
    const r = convertTimes(BigInt64Array.of(0n, 210n, 211n, 1_000_000_000n), enc, '/time', 0, { count: 0 });
    expect(Array.from(r.micros)).toEqual([1709251200123456n, 1709251200123456n, 1709251200123457n, 1709251201123456n]);
  });

  it('refuses what is not "<unit> since <instant>"', () => {
    expect(parseSinceUnits('degC')).toBeNull();
    expect(parseSinceUnits('fortnights since 2024-01-01')).toBeNull();
    expect(parseSinceUnits('seconds since the big bang')).toBeNull();
    expect(parseEpoch('2024-02-30')).toBeNull();
  });
});

describe('conversion', () => {
  it('converts int64 nanoseconds exactly, floors negatives, and counts sub-microsecond parts', () => {
    const ns = BigInt64Array.of(1709368200000000001n, -1n, 9007199254740993123n);
    const r = convertTimes(ns, enc('ns'), '/t', 0, naive);
    expect(Array.from(r.micros)).toEqual([1709368200000000n, -1n, 9007199254740993n]);
    expect(r.subMicro).toBe(3);
    expect(r.min).toBe(-1n);
    expect(r.max).toBe(9007199254740993n);
  });

  it('adds the epoch to int64 seconds exactly', () => {
    const r = convertTimes(BigInt64Array.of(0n, 86400n), enc('s', 1704067200000000n), '/t', 0, naive);
    expect(Array.from(r.micros)).toEqual([1704067200000000n, 1704153600000000n]);
  });

  it('rounds float seconds to the microsecond and applies a scaling factor', () => {
    const r = convertTimes(Float64Array.of(0.1234565, 2500), enc('s', 0n, 0.001), '/t', 0, naive);
    expect(Array.from(r.micros)).toEqual([123n, 2500000n]);
  });

  it('names the dataset and row of a value that is not a time', () => {
    try {
      convertTimes(Float64Array.of(1, Number.NaN), enc('s'), '/data/time', 100, naive);
      expect.unreachable();
    } catch (err) {
      expect(isAppError(err) && err.code).toBe('invalid_timestamp');
      expect((err as Error).message).toMatch(/dataset \/data\/time: time value "NaN" at row 101/);
    }
  });

  it('reads ISO 8601 strings with offsets, and strings without one as UTC', () => {
    const n = { count: 0 };
    const r = convertTimes(['2024-03-06T00:59:01.217207+01:00', '2024-03-05T18:59:04.873570-05:00', '2024-03-05 23:59:05.5'], { encoding: 'iso8601', unit: 'us', epochUs: 0n, scale: 1 }, '/t', 0, n);
    expect(Array.from(r.micros)).toEqual([1709683141217207n, 1709683144873570n, 1709683145500000n]);
    expect(n.count).toBe(1);
  });

  it('refuses an impossible date in a string', () => {
    expect(() => convertTimes(['2024-13-45T25:61:00Z'], { encoding: 'iso8601', unit: 'us', epochUs: 0n, scale: 1 }, '/t', 0, naive)).toThrow(/row 0 is not an ISO 8601 instant/);
  });
});
