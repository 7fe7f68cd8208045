// Legal holds: a stream and a time range that retention must not touch, at any level, until the
// hold is released. Creating and releasing are audited. Both take the stream's hold lock, which a
// chunk drop holds from its last hold check to its commit, so a hold placed while a chunk is
// being dropped either waits for that drop or stops it.
import type { Db, PoolClient, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { type Actor, appendAudit } from '../audit/log.ts';
import { formatMicros, pgTimestamp } from '../domain/time.ts';
import { AppError } from '../errors/index.ts';
import { getStream } from '../streams/catalog.ts';

export const HOLD_LOCK_SPACE = 7_310_006;

/** A hold as the API shows it. */
export interface Hold {
  id: number;
  stream: string;
  from: string | null;
  to: string | null;
  reason: string;
  active: boolean;
  created_by: number | null;
  created_role: string | null;
  created_at: string;
  released_at: string | null;
  released_by: number | null;
  release_reason: string | null;
}

export interface HoldRow {
  id: string; stream_name: string; from_us: string | null; to_us: string | null; reason: string;
  created_by: string | null; created_role: string | null; created_at: Date; released_at: Date | null;
  released_by: string | null; release_reason: string | null;
}

const HOLD_COLUMNS = `h.*,
  (extract(epoch FROM h.range_start) * 1000000)::bigint::text AS from_us,
  (extract(epoch FROM h.range_end) * 1000000)::bigint::text AS to_us`;

export function toHold(r: HoldRow): Hold {
  return {
    id: Number(r.id), stream: r.stream_name,
    from: r.from_us === null ? null : formatMicros(BigInt(r.from_us)),
    to: r.to_us === null ? null : formatMicros(BigInt(r.to_us)),
    reason: r.reason, active: r.released_at === null,
    created_by: r.created_by === null ? null : Number(r.created_by), created_role: r.created_role,
    created_at: r.created_at.toISOString(), released_at: r.released_at?.toISOString() ?? null,
    released_by: r.released_by === null ? null : Number(r.released_by), release_reason: r.release_reason,
  };
}

export interface NewHold {
  stream: string;
  fromUs: bigint | null;
  toUs: bigint | null;
  reason: string;
}

export async function createHold(db: Db, h: NewHold, actor: Actor): Promise<Hold> {
  if (h.fromUs !== null && h.toUs !== null && h.toUs <= h.fromUs) {
    throw new AppError(400, 'invalid_body', `the hold's "to" (${formatMicros(h.toUs)}) must be after its "from" (${formatMicros(h.fromUs)})`);
  }
  return withTransaction(db, async (tx) => {
    const stream = await getStream(tx, h.stream);
    if (!stream) throw new AppError(404, 'not_found', `stream ${JSON.stringify(h.stream)} does not exist`);
    await tx.query('SELECT pg_advisory_xact_lock($1, $2)', [HOLD_LOCK_SPACE, stream.id]);
    const { rows } = await tx.query<{ id: string }>(
      `INSERT INTO strata.holds (stream_id, stream_name, range_start, range_end, reason, created_by, created_role)
       VALUES ($1, $2, $3::timestamptz, $4::timestamptz, $5, $6, $7) RETURNING id`,
      [stream.id, stream.name, h.fromUs === null ? null : pgTimestamp(h.fromUs), h.toUs === null ? null : pgTimestamp(h.toUs),
        h.reason, actor.keyId, actor.role]);
    const hold = (await getHold(tx, Number(rows[0].id))) as Hold;
    await appendAudit(tx, actor, 'hold.create', `hold:${hold.id}`, { stream: hold.stream, from: hold.from, to: hold.to, reason: hold.reason });
    return hold;
  });
}

export async function releaseHold(db: Db, id: number, reason: string | null, actor: Actor): Promise<Hold> {
  return withTransaction(db, async (tx) => {
    const held = await lockedHold(tx, id);
    if (held.released_at !== null) {
      throw new AppError(409, 'hold_released', `hold ${id} was released already, at ${held.released_at}`);
    }
    await tx.query(
      `UPDATE strata.holds SET released_at = now(), released_by = $2, release_reason = $3 WHERE id = $1`,
      [id, actor.keyId, reason]);
    const hold = (await getHold(tx, id)) as Hold;
    await appendAudit(tx, actor, 'hold.release', `hold:${id}`, { stream: hold.stream, from: hold.from, to: hold.to, reason: hold.reason, release_reason: reason });
    return hold;
  });
}

async function lockedHold(tx: PoolClient, id: number): Promise<Hold> {
  const found = await getHold(tx, id);
  if (!found) throw new AppError(404, 'not_found', `hold ${id} does not exist`);
  const { rows } = await tx.query<{ stream_id: string }>('SELECT stream_id FROM strata.holds WHERE id = $1', [id]);
  await tx.query('SELECT pg_advisory_xact_lock($1, $2)', [HOLD_LOCK_SPACE, Number(rows[0].stream_id)]);
  await tx.query('SELECT 1 FROM strata.holds WHERE id = $1 FOR UPDATE', [id]);
  return (await getHold(tx, id)) as Hold;
}

export async function getHold(q: Queryable, id: number): Promise<Hold | null> {
  const { rows } = await q.query<HoldRow>(`SELECT ${HOLD_COLUMNS} FROM strata.holds h WHERE id = $1`, [id]);
  return rows[0] ? toHold(rows[0]) : null;
}

export async function listHolds(q: Queryable, f: { stream?: string; active?: boolean; streams?: string[] | null }): Promise<Hold[]> {
  const { rows } = await q.query<HoldRow>(
    `SELECT ${HOLD_COLUMNS} FROM strata.holds h
      WHERE ($1::text IS NULL OR stream_name = $1)
        AND ($2::boolean IS NULL OR (released_at IS NULL) = $2)
        AND ($3::text[] IS NULL OR stream_name = ANY($3))
      ORDER BY id`,
    [f.stream ?? null, f.active ?? null, f.streams ?? null]);
  return rows.map(toHold);
}

/**
 * The active holds of a stream that overlap [startUs, endUs), as SQL text with the values inlined
 * (numbers and timestamps, never user text), to be sent in one round trip with other statements.
 */
export function overlappingHoldsSql(streamId: number, startUs: bigint, endUs: bigint): string {
  if (!Number.isSafeInteger(streamId)) throw new Error('stream id must be an integer');
  return `SELECT ${HOLD_COLUMNS} FROM strata.holds h
      WHERE stream_id = ${streamId} AND released_at IS NULL
        AND (range_start IS NULL OR range_start < '${pgTimestamp(endUs)}'::timestamptz)
        AND (range_end IS NULL OR range_end > '${pgTimestamp(startUs)}'::timestamptz)
      ORDER BY id`;
}

/** Every active hold of a stream (for planning a retention pass; the drop itself re-checks). */
export async function activeHolds(q: Queryable, streamId: number): Promise<{ hold: Hold; fromUs: bigint | null; toUs: bigint | null }[]> {
  const { rows } = await q.query<HoldRow>(
    `SELECT ${HOLD_COLUMNS} FROM strata.holds h WHERE stream_id = $1 AND released_at IS NULL ORDER BY id`, [streamId]);
  return rows.map((r) => ({ hold: toHold(r), fromUs: r.from_us === null ? null : BigInt(r.from_us), toUs: r.to_us === null ? null : BigInt(r.to_us) }));
}
