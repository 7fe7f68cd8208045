// Retention policies: the stream setting "retention", how long each level of a stream is kept —
// {"raw": "30 days", "1h": null} — where null (or a level left out) means forever. Level names
// are checked against the stream's rollup levels (through the rollups' coverage port) in the
// transaction that changes the stream; the change is audited with the stream ('stream.update').
import type { Db, Pool, PoolClient } from '../db/pool.ts';
import { formatInterval, parseInterval } from '../domain/interval.ts';
import { AppError } from '../errors/index.ts';
import { rollupCoverage } from '../rollups/coverage.ts';
import type { Stream } from '../streams/catalog.ts';
import { registerStreamSetting } from '../streams/settings.ts';

/** Level → how long it is kept ("30 days"), or null for forever. Normalised text. */
export type RetentionPolicy = Record<string, string | null>;

export const RAW_LEVEL = 'raw';
const LEVEL_NAME = /^[A-Za-z0-9_]{1,32}$/;
/** Shorter than this is almost certainly a mistake (drops whole chunks as soon as they close). */
const MIN_KEEP_US = 60_000_000n;

function invalid(stream: string, message: string): AppError {
  return new AppError(400, 'invalid_body', `stream ${JSON.stringify(stream)}: retention ${message}`);
}

export function parseRetention(value: unknown, stream: Pick<Stream, 'name'>): RetentionPolicy {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(stream.name, 'must be an object of level → interval or null, e.g. {"raw": "30 days", "1h": null}');
  }
  const out: RetentionPolicy = {};
  for (const [level, keep] of Object.entries(value as Record<string, unknown>)) {
    if (!LEVEL_NAME.test(level)) throw invalid(stream.name, `names level ${JSON.stringify(level)}; level names are "raw" or rollup level names such as "1h"`);
    if (keep === null) {
      out[level] = null;
      continue;
    }
    const us = typeof keep === 'string' ? parseInterval(keep) : null;
    if (us === null || us < MIN_KEEP_US) {
      throw invalid(stream.name, `for ${JSON.stringify(level)} is ${JSON.stringify(keep)}; give a fixed interval of at least 1 minute such as "30 days", "52 weeks" or "36 hours" (months and years vary in length: use days), or null to keep it forever`);
    }
    out[level] = formatInterval(us);
  }
  return out;
}

/** How long a level is kept, in µs; null when forever (no policy, or null for the level). */
export function keepUs(policy: RetentionPolicy | null | undefined, level: string): bigint | null {
  const v = policy?.[level];
  return typeof v === 'string' ? parseInterval(v) : null;
}

/** A Db view of the stream's transaction, so that the port sees rollup levels set in the same request. */
function txDb(tx: PoolClient): Db {
  const pool = {
    query: tx.query.bind(tx),
    connect: () => { throw new Error('the rollup coverage port may only query here'); },
  } as unknown as Pool;
  return { pool, url: '' };
}

async function checkLevels(tx: PoolClient, stream: Stream, policy: RetentionPolicy): Promise<void> {
  const coverage = rollupCoverage();
  const levels = coverage ? await coverage.levels(txDb(tx), stream) : [];
  const allowed = [RAW_LEVEL, ...levels];
  for (const level of Object.keys(policy)) {
    if (!allowed.includes(level)) {
      throw new AppError(422, 'invalid_body',
        `stream ${JSON.stringify(stream.name)}: retention names level ${JSON.stringify(level)}, but the stream's levels are ${allowed.map((l) => JSON.stringify(l)).join(', ')}; set "rollups" first to add rollup levels`);
    }
  }
}

registerStreamSetting<RetentionPolicy>({
  key: 'retention',
  defaultValue: () => null,
  parse: (value, stream) => parseRetention(value, stream),
  async apply(tx, stream, _previous, next) {
    if (next) await checkLevels(tx, stream, next);
  },
  show: (value) => value,
});
