// Fixed-length intervals ("1 day", "6 hours", "15m", "90s", "1 week") as microseconds.
// Months and years are not fixed-length and are refused.

const UNITS: Record<string, bigint> = {
  us: 1n, microsecond: 1n, microseconds: 1n,
  ms: 1_000n, millisecond: 1_000n, milliseconds: 1_000n,
  s: 1_000_000n, sec: 1_000_000n, secs: 1_000_000n, second: 1_000_000n, seconds: 1_000_000n,
  m: 60_000_000n, min: 60_000_000n, mins: 60_000_000n, minute: 60_000_000n, minutes: 60_000_000n,
  h: 3_600_000_000n, hr: 3_600_000_000n, hour: 3_600_000_000n, hours: 3_600_000_000n,
  d: 86_400_000_000n, day: 86_400_000_000n, days: 86_400_000_000n,
  w: 604_800_000_000n, week: 604_800_000_000n, weeks: 604_800_000_000n,
};

/**
 * Parses an interval; returns null when it is not a positive fixed-length interval. A bare `M`
 * is refused rather than read as minutes: pandas and others mean a month by it.
 */
export function parseInterval(text: string): bigint | null {
  if (/^\s*\d*\s*M\s*$/.test(text)) return null;
  const parts = text.trim().toLowerCase().match(/^(\d+)\s*([a-z]+)$/);
  if (!parts) return null;
  const unit = UNITS[parts[2]];
  if (unit === undefined) return null;
  const value = BigInt(parts[1]) * unit;
  return value > 0n ? value : null;
}

/** The shortest exact rendering: 86400000000 → "1 day", 5400000000 → "90 minutes". */
export function formatInterval(us: bigint): string {
  const named: [bigint, string][] = [
    [604_800_000_000n, 'week'], [86_400_000_000n, 'day'], [3_600_000_000n, 'hour'],
    [60_000_000n, 'minute'], [1_000_000n, 'second'], [1_000n, 'millisecond'], [1n, 'microsecond'],
  ];
  for (const [size, name] of named) {
    if (us % size === 0n) {
      const n = us / size;
      return `${n} ${name}${n === 1n ? '' : 's'}`;
    }
  }
  return `${us} microseconds`;
}

/** Floor division for bigint (rounds toward −∞). */
export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return (a % b !== 0n && (a < 0n) !== (b < 0n)) ? q - 1n : q;
}
