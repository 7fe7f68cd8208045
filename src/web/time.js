// Instants as the server writes them (RFC 3339 with microseconds, UTC) <-> microseconds (BigInt).
export function isoToUs(s) {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) return BigInt(Date.parse(s)) * 1000n;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  return BigInt(ms) * 1000n + BigInt((m[2] ?? '').slice(0, 6).padEnd(6, '0'));
}

export function usToIso(us) {
  const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n);
  const micro = us - ms * 1000n;
  const base = new Date(Number(ms)).toISOString().slice(0, 23);
  return `${base}${String(micro).padStart(3, '0')}Z`;
}

const UNIT_US = { s: 1_000_000n, m: 60_000_000n, min: 60_000_000n, h: 3_600_000_000n, d: 86_400_000_000n, w: 604_800_000_000n };

/** A rollup level's or interval's length in µs ("1m", "15min", "1h", "1d"), or null. */
export function intervalUs(name) {
  const m = /^(\d+)\s*(s|m|min|h|d|w)$/.exec(name ?? '');
  return m ? BigInt(m[1]) * UNIT_US[m[2]] : null;
}

export const PRESETS = [
  ['1h', 3600], ['6h', 6 * 3600], ['1d', 86400], ['7d', 7 * 86400], ['30d', 30 * 86400], ['90d', 90 * 86400], ['1y', 365 * 86400],
];
