// Microsecond timestamps (bigint, since the Unix epoch) to and from text.

/** PostgreSQL timestamptz range: 4713-11-24 BC .. 294276-12-31 AD, in µs since the Unix epoch. */
export const MIN_TIMESTAMP_US = -211_813_488_000_000_000n + 946_684_800_000_000n;
export const MAX_TIMESTAMP_US = 9_224_318_016_000_000_000n - 1n;

/** RFC 3339 UTC with exactly six fractional digits: 2024-03-01T12:00:00.000001Z. */
export function formatMicros(us: bigint): string {
  const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n);
  const micro = Number(us - ms * 1000n);
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return `${us}us`;
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ or ±YYYYYY-…
  return `${iso.slice(0, -1)}${String(micro).padStart(3, '0')}Z`;
}

/**
 * Parses RFC 3339 / ISO 8601 instants with up to nine fractional digits (an offset or Z is
 * required unless `assumeUtc`), or an integer of microseconds since the epoch.
 * Returns µs since the Unix epoch, or null. `subMicro` receives true when digits beyond µs were
 * non-zero.
 */
export function parseInstant(text: string, opts: { assumeUtc?: boolean } = {}): { us: bigint; subMicro: boolean } | null {
  const m = /^([+-]?\d{4,6})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone] = m;
  if (zone === undefined && !opts.assumeUtc && m[4] !== undefined) return null;
  const year = Number(y);
  const base = Date.UTC(year, Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(base)) return null;
  const check = new Date(base);
  if (check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) return null;
  let fixedBase = base;
  if (year >= 0 && year < 100) {
    // Date.UTC maps years 0–99 to 1900–1999
    const dt = new Date(base);
    dt.setUTCFullYear(year);
    fixedBase = dt.getTime();
  }
  const digits = frac.padEnd(9, '0');
  const micros = BigInt(digits.slice(0, 6));
  const subMicro = /[1-9]/.test(digits.slice(6));
  let offsetMin = 0;
  if (zone && zone !== 'Z' && zone !== 'z') {
    const zm = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone);
    if (!zm) return null;
    offsetMin = (Number(zm[2]) * 60 + Number(zm[3] ?? '0')) * (zm[1] === '-' ? -1 : 1);
  }
  const us = BigInt(fixedBase) * 1000n + micros - BigInt(offsetMin) * 60_000_000n;
  return { us, subMicro };
}

/**
 * A timestamp as PostgreSQL reads it without ambiguity, for every instant JavaScript dates can
 * hold: "2024-03-01 12:00:00.000001+00", "10000-01-01 00:00:00+00", "0044-03-15 00:00:00+00 BC".
 */
export function pgTimestamp(us: bigint): string {
  const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n);
  const micro = Number(us - ms * 1000n);
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) throw new RangeError(`timestamp ${us}µs is outside the supported range`);
  const year = d.getUTCFullYear();
  const bc = year <= 0;
  const y = String(bc ? 1 - year : year).padStart(4, '0');
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const frac = `${String(d.getUTCMilliseconds()).padStart(3, '0')}${String(micro).padStart(3, '0')}`;
  return `${y}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}.${frac}+00${bc ? ' BC' : ''}`;
}

/** Earliest and latest instants Strata stores: PostgreSQL's lower bound, JavaScript's upper. */
export const SUPPORTED_MIN_US = MIN_TIMESTAMP_US;
export const SUPPORTED_MAX_US = 8_640_000_000_000_000_000n - 1n;
