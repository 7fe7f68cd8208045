// Wall-clock times without a zone, read in the zone given with ?tz= (an IANA name such as
// Europe/Berlin, UTC, or a fixed offset such as +01:00). Offsets of IANA zones come from Intl,
// looked up once per hour of wall time.
import { AppError } from '../../../errors/index.ts';

export type WallToUtc = (wallUs: number) => number;

const HOUR_US = 3_600_000_000;

export function zoneReader(tz: string): WallToUtc {
  const fixed = /^([+-])(\d{2}):?(\d{2})?$/.exec(tz.trim());
  if (fixed) {
    const min = (Number(fixed[2]) * 60 + Number(fixed[3] ?? 0)) * (fixed[1] === '-' ? -1 : 1);
    if (Math.abs(min) > 18 * 60) throw badZone(tz);
    return (us) => us - min * 60_000_000;
  }
  let fmt: Intl.DateTimeFormat;
  try {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
  } catch {
    throw badZone(tz);
  }
  /** The zone's offset (µs) at a UTC instant. */
  const offsetAt = (utcUs: number): number => {
    const ms = Math.floor(utcUs / 1000);
    const p: Record<string, number> = {};
    for (const part of fmt.formatToParts(new Date(ms))) if (part.type !== 'literal') p[part.type] = Number(part.value);
    const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
    return (wall - Math.floor(ms / 1000) * 1000) * 1000;
  };
  const cache = new Map<number, number>();
  return (wallUs) => {
    const hour = Math.floor(wallUs / HOUR_US);
    let off = cache.get(hour);
    if (off === undefined) {
      const guess = hour * HOUR_US;
      const o1 = offsetAt(guess - offsetAt(guess));
      off = offsetAt(guess - o1) === o1 ? o1 : offsetAt(guess);
      if (cache.size > 100_000) cache.clear();
      cache.set(hour, off);
    }
    return wallUs - off;
  };
}

function badZone(tz: string): AppError {
  return new AppError(400, 'invalid_request', `tz=${JSON.stringify(tz)} is not a time zone; give an IANA name (Europe/Berlin, UTC) or an offset (+01:00)`);
}
