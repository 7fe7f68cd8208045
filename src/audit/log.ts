// The audit log: appended in the transaction of the act it records, verified by recomputing
// the chain. The database refuses UPDATE, DELETE and TRUNCATE on strata.audit_log (triggers in
// schemas/001_catalog.sql).
import type { PoolClient, Queryable } from '../db/pool.ts';
import type { Logger } from '../logging/logger.ts';
import { storableText, toStorable } from '../db/storable.ts';
import { type AuditContent, GENESIS_HASH, canonicalJson, entryHash } from './canonical.ts';

const CHAIN_LOCK = 7_310_002;

export interface Actor {
  keyId: number | null;
  role: string | null;
}

export const systemActor: Actor = { keyId: null, role: 'system' };

export interface AuditEntry extends AuditContent {
  prev_hash: string;
  hash: string;
}

/**
 * Appends one entry. Must run inside the caller's transaction; the chain lock it takes is held
 * until that transaction ends, so append it as the last step before COMMIT.
 */
export async function appendAudit(
  tx: PoolClient, actor: Actor, action: string, subject: string, details: unknown,
): Promise<AuditEntry> {
  await tx.query('SELECT pg_advisory_xact_lock($1)', [CHAIN_LOCK]);
  const { rows } = await tx.query<{ seq: string; hash: string }>(
    'SELECT seq, hash FROM strata.audit_log ORDER BY seq DESC LIMIT 1');
  const prevHash = rows[0]?.hash ?? GENESIS_HASH;
  const seq = rows[0] ? Number(rows[0].seq) + 1 : 1;
  // Normalise details through JSON so that what is hashed is exactly what jsonb gives back; a
  // client's string PostgreSQL cannot hold (NUL, unpaired surrogate) must not make the act fail.
  const normalised = JSON.parse(canonicalJson(toStorable(details ?? {}))) as unknown;
  const content: AuditContent = {
    seq,
    at: new Date().toISOString(),
    actor_key_id: actor.keyId,
    actor_role: actor.role,
    action,
    subject: storableText(subject),
    details: normalised,
  };
  const hash = entryHash(prevHash, content);
  await tx.query(
    `INSERT INTO strata.audit_log (seq, at, actor_key_id, actor_role, action, subject, details, prev_hash, hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [seq, content.at, actor.keyId, actor.role, action, content.subject, canonicalJson(normalised), prevHash, hash]);
  return { ...content, prev_hash: prevHash, hash };
}

interface AuditRow {
  seq: string;
  at: Date;
  actor_key_id: string | null;
  actor_role: string | null;
  action: string;
  subject: string;
  details: unknown;
  prev_hash: string;
  hash: string;
}

export function rowToEntry(r: AuditRow): AuditEntry {
  return {
    seq: Number(r.seq),
    at: r.at.toISOString(),
    actor_key_id: r.actor_key_id === null ? null : Number(r.actor_key_id),
    actor_role: r.actor_role,
    action: r.action,
    subject: r.subject,
    details: r.details,
    prev_hash: r.prev_hash,
    hash: r.hash,
  };
}

export async function listAudit(
  db: Queryable, q: { after?: number; limit?: number; action?: string; subject?: string },
): Promise<AuditEntry[]> {
  const { rows } = await db.query<AuditRow>(
    `SELECT * FROM strata.audit_log
      WHERE seq > $1 AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR subject = $3)
      ORDER BY seq LIMIT $4`,
    [q.after ?? 0, q.action ?? null, q.subject ?? null, Math.min(Math.max(q.limit ?? 100, 1), 1000)]);
  return rows.map(rowToEntry);
}

/**
 * The entries about one ingest: those whose subject is the ingest, and those that list it under
 * details.ingests (as a string or a number), such as retention drops. Oldest first.
 */
export async function auditEntriesOfIngest(db: Queryable, ingestId: string, limit = 1000): Promise<AuditEntry[]> {
  const { rows } = await db.query<AuditRow>(
    `SELECT * FROM strata.audit_log WHERE subject = $1
     UNION
     SELECT * FROM strata.audit_log
      WHERE details -> 'ingests' @> jsonb_build_array($2::text) OR details -> 'ingests' @> jsonb_build_array($2::bigint)
     ORDER BY seq LIMIT $3`,
    [`ingest:${ingestId}`, ingestId, limit]);
  return rows.map(rowToEntry);
}

export type VerifyResult =
  | { ok: true; entries: number; head: string }
  | { ok: false; first_bad: number; reason: string; entries: number };

/** An entry's hash as an outside copy holds it (from an earlier verification or log line). */
export interface ChainAnchor {
  seq: number;
  hash: string;
}

/**
 * Recomputes the whole chain in sequence order, in pages, naming the first broken entry. With
 * anchors, also checks that those entries still carry the hashes an outside copy recorded: a log
 * rewritten wholesale (every hash recomputed) is consistent in itself and only caught that way.
 */
export async function verifyAudit(db: Queryable, opts: { pageSize?: number; anchors?: ChainAnchor[] } = {}): Promise<VerifyResult> {
  const pageSize = opts.pageSize ?? 5000;
  const anchors = new Map((opts.anchors ?? []).map((a) => [a.seq, a.hash.toLowerCase()]));
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  let entries = 0;
  let after = 0;
  while (true) {
    const { rows } = await db.query<AuditRow>(
      'SELECT * FROM strata.audit_log WHERE seq > $1 ORDER BY seq LIMIT $2', [after, pageSize]);
    if (rows.length === 0) break;
    for (const row of rows) {
      const e = rowToEntry(row);
      if (e.seq !== expectedSeq) {
        return { ok: false, first_bad: expectedSeq, entries, reason: `entry ${expectedSeq} is missing: the log jumps from ${expectedSeq - 1} to ${e.seq}` };
      }
      if (e.prev_hash !== prevHash) {
        return { ok: false, first_bad: e.seq, entries, reason: `entry ${e.seq} does not link to the entry before it (prev_hash differs)` };
      }
      const { prev_hash: _p, hash: _h, ...content } = e;
      const recomputed = entryHash(prevHash, content);
      if (recomputed !== e.hash) {
        return { ok: false, first_bad: e.seq, entries, reason: `entry ${e.seq} was altered: its content no longer matches its hash` };
      }
      const anchored = anchors.get(e.seq);
      if (anchored !== undefined && anchored !== e.hash) {
        return { ok: false, first_bad: e.seq, entries, reason: `entry ${e.seq} has hash ${e.hash}, not ${anchored} as the outside copy holds: the log was rewritten from this entry or earlier` };
      }
      anchors.delete(e.seq);
      prevHash = e.hash;
      expectedSeq++;
      entries++;
      after = e.seq;
    }
  }
  if (anchors.size > 0) {
    const seq = Math.min(...anchors.keys());
    return { ok: false, first_bad: seq, entries, reason: `entry ${seq}, which the outside copy holds, is no longer in the log (it ends at ${entries})` };
  }
  return { ok: true, entries, head: prevHash };
}

/** The newest entry's sequence number and hash (null for an empty log). */
export async function auditHead(db: Queryable): Promise<ChainAnchor | null> {
  const { rows } = await db.query<{ seq: string; hash: string }>('SELECT seq, hash FROM strata.audit_log ORDER BY seq DESC LIMIT 1');
  return rows[0] ? { seq: Number(rows[0].seq), hash: rows[0].hash } : null;
}

/** Verifies the chain and logs the outcome with the head hash; `via` says who asked. */
export async function verifyAndLog(db: Queryable, log: Logger, via: string, anchors: ChainAnchor[] = []): Promise<VerifyResult> {
  const started = performance.now();
  const result = await verifyAudit(db, { anchors });
  const ms = Math.round(performance.now() - started);
  if (result.ok) {
    log.info({ audit_head: result.head, audit_entries: result.entries, via, ms }, 'audit chain verified');
  } else {
    log.error({ audit_first_bad: result.first_bad, audit_entries: result.entries, reason: result.reason, via, ms }, 'audit chain BROKEN');
  }
  return result;
}
