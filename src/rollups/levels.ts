// Rollup levels of a stream: the stream setting "rollups" (["1m", "1h", "1d"] by default) and the
// catalog rows in strata.rollup_levels, each naming one partitioned table (level-tables.ts makes
// them). Each level must be a whole multiple of the next finer one, so that it is built from that
// level and its buckets are unions of the finer buckets.
import type { Queryable } from '../db/pool.ts';
import { DATA_SCHEMA, qualified } from '../db/sql.ts';
import { formatInterval, parseInterval } from '../domain/interval.ts';
import { AppError } from '../errors/index.ts';
import type { Stream } from '../streams/catalog.ts';
import { micros } from './layout.ts';

export const DEFAULT_LEVELS = ['1m', '1h', '1d'];
const MAX_LEVELS = 8;
const MIN_LEVEL_US = 1_000_000n;
const MAX_LEVEL_US = 366n * 86_400_000_000n;
const LEVEL_NAME = /^[0-9]{1,6}(s|m|h|d|w)$/;

export interface Level {
  name: string;
  intervalUs: bigint;
  tableName: string;
  chunkUs: bigint;
  /** Buckets starting before it are materialised (except where invalidated); null: none yet. */
  watermarkUs: bigint | null;
  /**
   * The finest level only: from here on, every upload's rows at or above the watermark are in the
   * stream's pending table as partial aggregates (pending.ts); null: not kept.
   */
  pendingFromUs: bigint | null;
}

function invalid(stream: string, message: string): AppError {
  return new AppError(400, 'invalid_body', `stream ${JSON.stringify(stream)}: rollups ${message}`);
}

/** Checks a "rollups" setting: level names such as "1m", finest first after sorting. */
export function parseLevels(value: unknown, stream: Pick<Stream, 'name'>): string[] {
  if (!Array.isArray(value)) throw invalid(stream.name, 'must be a list of level intervals such as ["1m", "1h", "1d"], or null for none');
  if (value.length > MAX_LEVELS) throw invalid(stream.name, `has ${value.length} levels; at most ${MAX_LEVELS} are allowed`);
  const levels: { name: string; us: bigint }[] = [];
  for (const v of value) {
    const us = typeof v === 'string' && LEVEL_NAME.test(v) ? parseInterval(v) : null;
    if (us === null) throw invalid(stream.name, `level ${JSON.stringify(v)} is not an interval such as "15s", "1m", "1h", "1d" or "1w" (a number and one of s, m, h, d, w)`);
    if (us < MIN_LEVEL_US || us > MAX_LEVEL_US) throw invalid(stream.name, `level ${JSON.stringify(v)} must be between 1 second and 366 days`);
    if (levels.some((l) => l.us === us)) throw invalid(stream.name, `level ${JSON.stringify(v)} is given twice (or as another name for the same interval)`);
    levels.push({ name: v as string, us });
  }
  levels.sort((a, b) => (a.us < b.us ? -1 : 1));
  for (let i = 1; i < levels.length; i++) {
    if (levels[i].us % levels[i - 1].us !== 0n) {
      throw invalid(stream.name, `level ${JSON.stringify(levels[i].name)} is not a whole multiple of ${JSON.stringify(levels[i - 1].name)}; each level is built from the next finer one, so its interval must divide evenly`);
    }
  }
  return levels.map((l) => l.name);
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** Chunk interval of a level table: about 1,440 buckets per chunk, whole multiples of the stream's chunks. */
export function levelChunkUs(intervalUs: bigint, streamChunkUs: bigint): bigint {
  const lcm = (intervalUs / gcd(intervalUs, streamChunkUs)) * streamChunkUs;
  const k = (intervalUs * 1440n) / lcm;
  return lcm * (k > 1n ? k : 1n);
}

export function levelTableName(stream: Pick<Stream, 'tableName'>, level: string): string {
  return `${stream.tableName.slice(0, 36)}_r${level.toLowerCase()}`;
}

interface LevelRow { level: string; iv: string; table_name: string; ck: string; watermark_us: string | null; pending_us: string | null }

const LEVEL_SELECT = `SELECT level, interval_us::text AS iv, table_name, chunk_us::text AS ck,
    ${micros('watermark')}::text AS watermark_us, ${micros('pending_from')}::text AS pending_us FROM strata.rollup_levels`;

function toLevel(r: LevelRow): Level {
  return {
    name: r.level, intervalUs: BigInt(r.iv), tableName: r.table_name, chunkUs: BigInt(r.ck),
    watermarkUs: r.watermark_us === null ? null : BigInt(r.watermark_us),
    pendingFromUs: r.pending_us === null ? null : BigInt(r.pending_us),
  };
}

/** A stream's levels, finest first. `lock` reads them FOR SHARE (ingests, before commit). */
export async function loadLevels(q: Queryable, streamId: number, lock: '' | 'FOR SHARE' | 'FOR UPDATE' = ''): Promise<Level[]> {
  const { rows } = await q.query<LevelRow>(`${LEVEL_SELECT} WHERE stream_id = $1 ORDER BY interval_us ${lock}`, [streamId]);
  return rows.map(toLevel);
}

export function levelTable(level: Pick<Level, 'tableName'>): string {
  return qualified(DATA_SCHEMA, level.tableName);
}

/** Advisory lock space of a stream's refresh (one refresh of a stream at a time). */
export const REFRESH_LOCK_SPACE = 7_310_004; // its own space: job locks (7_310_005) key on hashtext(job)

export function describeLevel(l: Level): Record<string, unknown> {
  return { level: l.name, interval: formatInterval(l.intervalUs), table: l.tableName };
}
