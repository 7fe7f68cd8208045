// A stream's rollup levels, as provenance needs them (which rollup buckets derive from an
// ingest's rows). Asked of the rollups module through its port when it is present; otherwise read
// from the stream's "rollups" setting, whatever shape it has: a list of level names
// (["1m", "1h"]), a list of objects naming them ({"level"|"name"|"interval": "1m"}), or an object
// holding such a list under "levels".
import type { Db } from '../db/pool.ts';
import { parseInterval } from '../domain/interval.ts';
import { rollupCoverage } from '../rollups/coverage.ts';
import type { Stream } from '../streams/catalog.ts';

export function levelsFromSetting(value: unknown): string[] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'levels' in value) {
    return levelsFromSetting((value as { levels: unknown }).levels);
  }
  if (!Array.isArray(value)) return [];
  const names: string[] = [];
  for (const item of value) {
    if (typeof item === 'string') names.push(item);
    else if (item !== null && typeof item === 'object') {
      const o = item as Record<string, unknown>;
      const name = [o.level, o.name, o.interval, o.resolution].find((x) => typeof x === 'string');
      if (typeof name === 'string') names.push(name);
    }
  }
  // Finest first; names that are not fixed intervals keep their given order after those that are.
  const size = (n: string): bigint => parseInterval(n) ?? 2n ** 62n;
  return [...new Set(names)].sort((a, b) => (size(a) < size(b) ? -1 : size(a) > size(b) ? 1 : 0));
}

export async function rollupLevelsOf(db: Db, stream: Stream): Promise<string[]> {
  const port = rollupCoverage();
  if (port) return port.levels(db, stream);
  return levelsFromSetting(stream.settings.rollups);
}
