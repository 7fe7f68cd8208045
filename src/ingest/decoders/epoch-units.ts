// Epoch numbers without a stated unit: which names mark a time column, which names carry their
// unit (time_ns, timestamp_ms, t_us, epoch_s, time_sec …), and which Unix-epoch unit a range of
// values is in, judged by magnitude against a plausible window of instants. Pure functions of
// names and numbers, shared by every decoder that meets bare epoch numbers (HDF5, netCDF, CSV).
//
// The rule: a unit fits when every value, read in that unit, lies in the window (by default
// 1970-01-02 to 2200-01-01, STRATA_TIME_WINDOW). The windows of neighbouring units overlap
// (1.7e9 is 2023 in seconds and 1970-01-20 in milliseconds), so the coarsest unit that fits
// wins: present-day values are then always read right, and only milliseconds from the first
// weeks of 1970 would be mistaken for seconds.
import { parseInstant } from '../../domain/time.ts';

export type EpochUnit = 's' | 'ms' | 'us' | 'ns';

/** Coarsest first: the order in which units are tried. */
export const EPOCH_UNITS: readonly EpochUnit[] = ['s', 'ms', 'us', 'ns'];

/** Microseconds per unit. */
const US_PER: Record<EpochUnit, number> = { s: 1e6, ms: 1e3, us: 1, ns: 1e-3 };

/** Plausible instants for epoch numbers, µs since the Unix epoch, inclusive. */
export interface TimeWindow {
  fromUs: bigint;
  toUs: bigint;
}

export const DEFAULT_TIME_WINDOW: TimeWindow = {
  fromUs: 86_400_000_000n, // 1970-01-02
  toUs: 7_258_118_400_000_000n, // 2200-01-01
};

/** Names that mean "this is the time" (compared without case). */
export const TIME_NAMES: readonly string[] = ['time', 'timestamp', 't', 'epoch', 'datetime'];

const SUFFIX_UNITS: Record<string, EpochUnit> = {
  s: 's', sec: 's', secs: 's', second: 's', seconds: 's',
  ms: 'ms', msec: 'ms', millis: 'ms', millisecond: 'ms', milliseconds: 'ms',
  us: 'us', 'µs': 'us', usec: 'us', micros: 'us', microsecond: 'us', microseconds: 'us',
  ns: 'ns', nsec: 'ns', nanos: 'ns', nanosecond: 'ns', nanoseconds: 'ns',
};

export function isTimeName(name: string): boolean {
  return TIME_NAMES.includes(name.trim().toLowerCase());
}

/**
 * The unit a time name carries: `time_ns`, `timestamp_ms`, `t_us`, `epoch_s`, `time_sec`,
 * `Time-ms`, `timeMs`, `epoch[ms]`, `time (s)`. Null when the name is not a time name with a unit.
 */
export function unitFromName(name: string): EpochUnit | null {
  const n = name.trim();
  const m = /^([A-Za-z]+?)(?:[_\-. ]+|(?=[A-Z]))\(?\[?([A-Za-zµ]+)\]?\)?$/.exec(n)
    ?? /^([A-Za-z]+)\s*[[(]([A-Za-zµ]+)[\])]$/.exec(n);
  if (!m || !isTimeName(m[1])) return null;
  return SUFFIX_UNITS[m[2].toLowerCase()] ?? null;
}

/** A time name, bare or carrying its unit. */
export function isTimeLikeName(name: string): boolean {
  return isTimeName(name) || unitFromName(name) !== null;
}

/** The smallest and largest value of a time column, as read (bigint for 64-bit integers). */
export interface ValueRange {
  min: number | bigint;
  max: number | bigint;
}

function toUs(v: number | bigint, unit: EpochUnit): number {
  return Number(v) * US_PER[unit];
}

/** Whether every value of the range, read in `unit`, lies in the window. */
export function fitsWindow(range: ValueRange, unit: EpochUnit, window: TimeWindow = DEFAULT_TIME_WINDOW): boolean {
  const lo = toUs(range.min, unit);
  const hi = toUs(range.max, unit);
  return Number.isFinite(lo) && Number.isFinite(hi) && lo >= Number(window.fromUs) && hi <= Number(window.toUs);
}

/** The coarsest unit in which every value lies in the window, or null when none does. */
export function inferEpochUnit(range: ValueRange, window: TimeWindow = DEFAULT_TIME_WINDOW): EpochUnit | null {
  for (const unit of EPOCH_UNITS) if (fitsWindow(range, unit, window)) return unit;
  return null;
}

/** Every unit in which the range fits (for messages: "also plausible as …"). */
export function fittingUnits(range: ValueRange, window: TimeWindow = DEFAULT_TIME_WINDOW): EpochUnit[] {
  return EPOCH_UNITS.filter((u) => fitsWindow(range, u, window));
}

/** A time unit given by a client (?time_unit=): s, ms, us (or µs), ns and their long names. */
export function parseEpochUnit(text: string): EpochUnit | null {
  return SUFFIX_UNITS[text.trim().toLowerCase()] ?? null;
}

/**
 * Whether a range looks like time relative to a start (seconds or less since it began): its
 * first values are before the window's start in every unit, so it cannot be an epoch.
 */
export function looksRelative(range: ValueRange, window: TimeWindow = DEFAULT_TIME_WINDOW): boolean {
  return Number(range.min) >= 0 && inferEpochUnit({ min: range.min, max: range.min }, window) === null;
}

/** Dates of the window for messages: 1970-01-02 … 2200-01-01. */
export function describeWindow(window: TimeWindow = DEFAULT_TIME_WINDOW): string {
  const day = (us: bigint): string => new Date(Number(us / 1000n)).toISOString().replace(/T00:00:00\.000Z$/, '').replace(/\.000Z$/, 'Z');
  return `${day(window.fromUs)} … ${day(window.toUs)}`;
}

/**
 * Parses a window setting: two ISO 8601 dates or instants separated by "/" or "..", e.g.
 * "1970-01-02/2200-01-01". A date alone is midnight UTC. Null when it does not parse or is empty.
 */
export function parseTimeWindow(text: string): TimeWindow | null {
  const parts = text.split(/\s*(?:\/|\.\.)\s*/);
  if (parts.length !== 2) return null;
  const at = (s: string): bigint | null => {
    const iso = /^\d{4}-\d{2}-\d{2}$/.test(s.trim()) ? `${s.trim()}T00:00:00Z` : s.trim();
    return parseInstant(iso)?.us ?? null;
  };
  const fromUs = at(parts[0]);
  const toUs = at(parts[1]);
  if (fromUs === null || toUs === null || fromUs >= toUs) return null;
  return { fromUs, toUs };
}

/** How a time unit was decided, as the ingest record reports it. */
export interface UnitChoice {
  unit: EpochUnit;
  /** 'units' (the file said), 'name' (time_ms …), 'magnitude' (inferred), 'request' (?time_unit=). */
  from: 'units' | 'name' | 'magnitude' | 'request' | 'assumed';
  /** For 'magnitude': the range it was judged on and the window. */
  range?: { min: string; max: string };
  window?: string;
  /** Other units the values would also fit (the coarsest was taken). */
  alsoFits?: EpochUnit[];
}

/** Decides the unit of bare epoch numbers: request, then name, then magnitude; null when none fits. */
export function chooseEpochUnit(name: string, range: ValueRange, requested: EpochUnit | null,
  window: TimeWindow = DEFAULT_TIME_WINDOW): UnitChoice | null {
  if (requested) return { unit: requested, from: 'request' };
  const named = unitFromName(name);
  if (named) return { unit: named, from: 'name' };
  const fits = fittingUnits(range, window);
  if (fits.length === 0) return null;
  return {
    unit: fits[0], from: 'magnitude', range: { min: String(range.min), max: String(range.max) }, window: describeWindow(window),
    ...(fits.length > 1 ? { alsoFits: fits.slice(1) } : {}),
  };
}
