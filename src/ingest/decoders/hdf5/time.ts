// Time in HDF5 files to µs since the Unix epoch: CF-style "<unit> since <instant>" units, NeXus
// `start` + `units` + `scaling_factor`, and ISO 8601 strings. Integer times in s/ms/µs/ns are
// converted exactly (no rounding through a double); float times are rounded to the nearest µs.
// Every bad value is reported with its dataset path and row.
import { AppError } from '../../../errors/index.ts';
import { SUPPORTED_MAX_US, SUPPORTED_MIN_US, formatMicros, parseInstant } from '../../../domain/time.ts';
import { toMicros } from '../timestamps.ts';

export type TimeUnit = 'ns' | 'us' | 'ms' | 's' | 'min' | 'h' | 'd';
export const timeUnits: readonly TimeUnit[] = ['ns', 'us', 'ms', 's', 'min', 'h', 'd'];

/** Microseconds per unit (ns is 1/1000). */
export const US_PER_UNIT: Record<TimeUnit, number> = { ns: 0.001, us: 1, ms: 1e3, s: 1e6, min: 60e6, h: 3600e6, d: 86400e6 };

const UNIT_WORDS: Record<string, TimeUnit> = {
  ns: 'ns', nsec: 'ns', nanosecond: 'ns', nanoseconds: 'ns',
  us: 'us', 'µs': 'us', usec: 'us', microsecond: 'us', microseconds: 'us',
  ms: 'ms', msec: 'ms', millisecond: 'ms', milliseconds: 'ms',
  s: 's', sec: 's', secs: 's', second: 's', seconds: 's',
  min: 'min', mins: 'min', minute: 'min', minutes: 'min',
  h: 'h', hr: 'h', hrs: 'h', hour: 'h', hours: 'h',
  d: 'd', day: 'd', days: 'd',
};

export function parseTimeUnit(word: string): TimeUnit | null {
  return UNIT_WORDS[word.trim().toLowerCase()] ?? null;
}

/**
 * Parses an instant as CF and NeXus write them: ISO 8601 with T or a space, one- or two-digit
 * month/day/hour, an optional offset or "UTC"; no offset means UTC (the CF convention).
 */
export function parseEpoch(text: string): bigint | null {
  let s = text.trim().replace(/\s*(UTC|GMT)$/i, 'Z');
  const m = /^([+-]?\d{4,6})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:[.,]\d+)?))?)?\s*(Z|z|[+-]\d{1,2}(?::?\d{2})?)?$/.exec(s);
  if (!m) return null;
  const p2 = (x: string | undefined, d = '00'): string => (x ?? d).padStart(2, '0');
  const [whole, frac = ''] = (m[6] ?? '00').split(/[.,]/);
  let zone = m[7] ?? 'Z';
  const zm = /^([+-])(\d{1,2})(?::?(\d{2}))?$/.exec(zone);
  if (zm) zone = `${zm[1]}${zm[2].padStart(2, '0')}:${zm[3] ?? '00'}`;
  s = `${m[1]}-${p2(m[2])}-${p2(m[3])}T${p2(m[4])}:${p2(m[5])}:${p2(whole)}${frac ? `.${frac.slice(0, 9)}` : ''}${zone}`;
  return parseInstant(s)?.us ?? null;
}

/** Nanoseconds past the microsecond in an instant's fraction (…00.123456789 → 789). */
function subMicroNs(text: string): number {
  const frac = /[.,](\d+)/.exec(text.replace(/^[^T ]*[T ]?/, ''))?.[1] ?? '';
  return Number(frac.padEnd(9, '0').slice(6, 9));
}

/**
 * "seconds since 2024-03-01T00:00:00Z" → unit and epoch; null when the text is not of that form.
 * An epoch finer than a microsecond (xarray: "nanoseconds since 2024-03-01 00:00:00.123456789")
 * keeps its nanoseconds in epochSubNs.
 */
export function parseSinceUnits(units: string): { unit: TimeUnit; epochUs: bigint; epochSubNs: number } | null {
  const m = /^\s*(\S+)\s+since\s+(.+?)\s*$/i.exec(units);
  if (!m) return null;
  const unit = parseTimeUnit(m[1]);
  const epochUs = parseEpoch(m[2]);
  if (!unit || epochUs === null) return null;
  return { unit, epochUs, epochSubNs: subMicroNs(m[2]) };
}

/** How one dataset's (or member's) values become instants. */
export interface TimeEncoding {
  encoding: 'number' | 'iso8601';
  unit: TimeUnit;
  epochUs: bigint;
  /** Multiplies values before the unit applies (NeXus scaling_factor). */
  scale: number;
  /** Nanoseconds of the epoch past epochUs (0–999), added to nanosecond values before they are floored to µs. */
  epochSubNs?: number;
  /** Set while the unit or epoch still depends on the values (time-inference.ts decides). */
  pending?: PendingTime;
  /** How an undeclared unit or epoch was decided, as the ingest record reports it. */
  inferred?: TimeInference;
}

/** What the file and request say about a time whose unit or epoch it does not declare. */
export interface PendingTime {
  /** The dataset or member name (time_ms carries its unit). */
  name: string;
  /** A unit from the units attribute ("s" without "since"), the mapping or ?time_unit=. */
  unit: TimeUnit | null;
  unitFrom: 'units' | 'mapping' | 'request' | null;
  /** A start instant from an attribute (start, start_time, t0) of the dataset, its group or the root. */
  start: { text: string; epochUs: bigint; attribute: string } | null;
}

export interface TimeInference {
  unit_from: 'units' | 'mapping' | 'request' | 'name' | 'magnitude' | 'assumed';
  epoch_from: 'unix' | 'start';
  /** The attribute the start instant came from, e.g. "/data/time@start". */
  start_attribute?: string;
  /** For magnitude: the smallest and largest value, and the window they were judged by. */
  values?: { min: string; max: string };
  window?: string;
  also_fits?: string[];
}

export interface TimeBlock {
  micros: BigInt64Array;
  min: bigint;
  max: bigint;
  subMicro: number;
}

const TWO32 = 4294967296;

function badTime(path: string, row: number, value: unknown, why: string): AppError {
  return new AppError(422, 'invalid_timestamp', `dataset ${path}: time value ${JSON.stringify(String(value))} at row ${row} ${why}`,
    { detail: { dataset: path, row } });
}

function checkRange(us: number | bigint, path: string, row: number, value: unknown): void {
  const b = typeof us === 'bigint' ? us : BigInt(us);
  if (b < SUPPORTED_MIN_US || b > SUPPORTED_MAX_US) {
    throw badTime(path, row, value, `is outside the supported range (4713 BC to ${formatMicros(SUPPORTED_MAX_US).slice(0, 7)})`);
  }
}

/** Float or 32-bit integer times: us = epoch + round(v × scale × unit). */
function fromNumbers(values: ArrayLike<number>, enc: TimeEncoding, path: string, firstRow: number): TimeBlock {
  const n = values.length;
  const out = new BigInt64Array(n);
  const halves = new Int32Array(out.buffer);
  const factor = enc.scale * US_PER_UNIT[enc.unit];
  const epoch = Number(enc.epochUs);
  if (!Number.isSafeInteger(epoch)) throw new AppError(422, 'invalid_timestamp', `dataset ${path}: the time epoch ${formatMicros(enc.epochUs)} is too far from 1970 for numeric times`);
  let min = Infinity;
  let max = -Infinity;
  let subMicro = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const exact = v * factor;
    if (!Number.isFinite(exact)) throw badTime(path, firstRow + i, v, 'is not a finite number');
    const rel = Math.round(exact);
    if (enc.unit === 'ns' && rel !== exact) subMicro++;
    const us = epoch + rel;
    if (!Number.isSafeInteger(us)) throw badTime(path, firstRow + i, v, 'is too large to be an instant');
    const hi = Math.floor(us / TWO32);
    halves[2 * i] = (us - hi * TWO32) | 0;
    halves[2 * i + 1] = hi;
    if (us < min) min = us;
    if (us > max) max = us;
  }
  if (n > 0) {
    checkRange(min, path, firstRow, min);
    checkRange(max, path, firstRow, max);
  }
  return { micros: out, min: n > 0 ? BigInt(min) : 0n, max: n > 0 ? BigInt(max) : 0n, subMicro };
}

/** 64-bit integer times: exact for s/ms/µs/ns without scaling; otherwise through a safe double. */
function fromBigInts(values: BigInt64Array, enc: TimeEncoding, path: string, firstRow: number): TimeBlock {
  if (enc.scale === 1 && (enc.unit === 's' || enc.unit === 'ms' || enc.unit === 'us' || enc.unit === 'ns')) {
    if (enc.unit === 'ns' && enc.epochSubNs) {
      const sub = BigInt(enc.epochSubNs);
      const shifted = new BigInt64Array(values.length);
      for (let i = 0; i < values.length; i++) shifted[i] = values[i] + sub;
      values = shifted;
    }
    let r;
    try {
      r = toMicros(values, enc.unit, null, path, true);
    } catch (err) {
      const row = ((err as AppError).detail?.row as number | undefined) ?? 0;
      throw badTime(path, firstRow + row, values[row], 'is outside the supported range');
    }
    if (enc.epochUs !== 0n) {
      for (let i = 0; i < r.micros.length; i++) r.micros[i] += enc.epochUs;
      r.min += enc.epochUs;
      r.max += enc.epochUs;
    }
    if (values.length > 0) {
      checkRange(r.min, path, firstRow, r.min);
      checkRange(r.max, path, firstRow, r.max);
    }
    return { micros: r.micros, min: r.min, max: r.max, subMicro: r.subMicro };
  }
  const nums = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v > 9007199254740991n || v < -9007199254740991n) throw badTime(path, firstRow + i, v, `is too large for unit ${enc.unit} with scale ${enc.scale}`);
    nums[i] = Number(v);
  }
  return fromNumbers(nums, enc, path, firstRow);
}

/** ISO 8601 strings; an instant without an offset is read as UTC (counted in `naive`). */
function fromStrings(values: readonly (string | null)[], path: string, firstRow: number, naive: { count: number }): TimeBlock {
  const n = values.length;
  const out = new BigInt64Array(n);
  let min = 0n;
  let max = 0n;
  let subMicro = 0;
  for (let i = 0; i < n; i++) {
    const s = values[i];
    if (s === null || s === '') throw badTime(path, firstRow + i, s ?? '', 'is empty; every row needs a time');
    let p = parseInstant(s);
    if (!p) {
      p = parseInstant(s, { assumeUtc: true });
      if (p) naive.count++;
    }
    if (!p) throw badTime(path, firstRow + i, s, 'is not an ISO 8601 instant (e.g. 2024-03-01T12:00:00.5+01:00)');
    if (p.subMicro) subMicro++;
    checkRange(p.us, path, firstRow + i, s);
    out[i] = p.us;
    if (i === 0 || p.us < min) min = p.us;
    if (i === 0 || p.us > max) max = p.us;
  }
  return { micros: out, min, max, subMicro };
}

export type RawTimes = ArrayLike<number> | BigInt64Array | readonly (string | null)[];

/** Converts one slice of time values; `firstRow` is the slice's offset for messages. */
export function convertTimes(values: RawTimes, enc: TimeEncoding, path: string, firstRow: number, naive: { count: number }): TimeBlock {
  if (values instanceof BigInt64Array) return fromBigInts(values, enc, path, firstRow);
  if (Array.isArray(values) && (values.length === 0 || typeof values[0] !== 'number')) {
    if (enc.encoding !== 'iso8601') throw new AppError(422, 'mapping_failed', `dataset ${path} holds strings, but the mapping reads it as numbers`);
    return fromStrings(values as (string | null)[], path, firstRow, naive);
  }
  if (enc.encoding === 'iso8601') throw new AppError(422, 'mapping_failed', `dataset ${path} holds numbers, but the mapping reads it as ISO 8601 strings`);
  return fromNumbers(values as ArrayLike<number>, enc, path, firstRow);
}
