// API keys: random secrets shown once, stored as SHA-256 (the secrets carry 256 bits of
// entropy, so a fast hash is enough), each with a role and an optional stream scope.
import { createHash, randomBytes } from 'node:crypto';
import type { Db, PoolClient, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { type Actor, appendAudit } from '../audit/log.ts';
import { AppError } from '../errors/index.ts';

export type Role = 'admin' | 'instrument' | 'reader' | 'auditor';
export const roles: readonly Role[] = ['admin', 'instrument', 'reader', 'auditor'];

export interface ApiKey {
  id: number;
  name: string;
  role: Role;
  streams: string[] | null;
  prefix: string;
  createdAt: string;
  createdBy: number | null;
  revokedAt: string | null;
  revokedBy: number | null;
  /** Recorded on authentication, at most once a minute per key. */
  lastUsedAt: string | null;
}

interface KeyRow {
  id: string; name: string; role: Role; streams: string[] | null; prefix: string;
  created_at: Date; created_by: string | null; revoked_at: Date | null; revoked_by: string | null; last_used_at: Date | null;
}

function toKey(r: KeyRow): ApiKey {
  return {
    id: Number(r.id), name: r.name, role: r.role, streams: r.streams, prefix: r.prefix,
    createdAt: r.created_at.toISOString(),
    createdBy: r.created_by === null ? null : Number(r.created_by),
    revokedAt: r.revoked_at?.toISOString() ?? null,
    revokedBy: r.revoked_by === null ? null : Number(r.revoked_by),
    lastUsedAt: r.last_used_at?.toISOString() ?? null,
  };
}

function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

export function newSecret(): string {
  return `strata_${randomBytes(32).toString('base64url')}`;
}

export async function insertKey(
  tx: PoolClient, input: { name: string; role: Role; streams?: string[] | null; secret?: string }, actor: Actor,
): Promise<{ key: ApiKey; secret: string }> {
  const secret = input.secret ?? newSecret();
  const { rows } = await tx.query<KeyRow>(
    `INSERT INTO strata.api_keys (name, role, streams, secret_sha256, prefix, created_by)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
    [input.name, input.role, input.streams ?? null, hashSecret(secret), secret.slice(0, 12), actor.keyId]);
  const key = toKey(rows[0]);
  await appendAudit(tx, actor, 'key.create', `key:${key.id}`, { name: key.name, role: key.role, streams: key.streams, prefix: key.prefix });
  return { key, secret };
}

export async function createKey(
  db: Db, input: { name: string; role: Role; streams?: string[] | null }, actor: Actor,
): Promise<{ key: ApiKey; secret: string }> {
  return withTransaction(db, (tx) => insertKey(tx, input, actor));
}

export async function listKeys(db: Queryable): Promise<ApiKey[]> {
  const { rows } = await db.query<KeyRow>('SELECT * FROM strata.api_keys ORDER BY id');
  return rows.map(toKey);
}

export async function getKey(db: Queryable, id: number): Promise<ApiKey | null> {
  const { rows } = await db.query<KeyRow>('SELECT * FROM strata.api_keys WHERE id = $1', [id]);
  return rows[0] ? toKey(rows[0]) : null;
}

/**
 * Revokes a key (from its next request on). Revoking a revoked key changes nothing and is not
 * audited again. The last unrevoked admin key without a stream scope cannot be revoked: nobody
 * could manage keys any more.
 */
export async function revokeKey(db: Db, id: number, actor: Actor): Promise<ApiKey> {
  return withTransaction(db, async (tx) => {
    const { rows: found } = await tx.query<KeyRow>('SELECT * FROM strata.api_keys WHERE id = $1 FOR UPDATE', [id]);
    if (found.length === 0) throw new AppError(404, 'not_found', `cannot revoke key ${id}: no such key`);
    if (found[0].revoked_at !== null) return toKey(found[0]);
    if (found[0].role === 'admin' && found[0].streams === null) {
      // Locking every remaining full admin key serialises concurrent revocations of the last two.
      const { rows: admins } = await tx.query(
        `SELECT id FROM strata.api_keys WHERE role = 'admin' AND streams IS NULL AND revoked_at IS NULL AND id <> $1 FOR UPDATE`, [id]);
      if (admins.length === 0) {
        throw new AppError(409, 'conflict', `cannot revoke key ${id}: it is the last admin key without a stream scope; create another admin key first`);
      }
    }
    const { rows } = await tx.query<KeyRow>(
      'UPDATE strata.api_keys SET revoked_at = now(), revoked_by = $2 WHERE id = $1 RETURNING *', [id, actor.keyId]);
    await appendAudit(tx, actor, 'key.revoke', `key:${id}`, { name: rows[0].name, role: rows[0].role, streams: rows[0].streams, prefix: rows[0].prefix });
    return toKey(rows[0]);
  });
}

/** Resolves a bearer secret to its key, or null if unknown or revoked. Records the use. */
export async function authenticate(db: Db, secret: string): Promise<ApiKey | null> {
  // Last use is written at most once a minute per key, so reads do not become writes.
  const { rows } = await db.pool.query<KeyRow>(
    `WITH k AS (SELECT * FROM strata.api_keys WHERE secret_sha256 = $1 AND revoked_at IS NULL),
          touched AS (UPDATE strata.api_keys a SET last_used_at = now() FROM k
                       WHERE a.id = k.id AND (a.last_used_at IS NULL OR a.last_used_at < now() - interval '1 minute'))
     SELECT * FROM k`, [hashSecret(secret)]);
  return rows[0] ? toKey(rows[0]) : null;
}

/**
 * On an empty key table, creates the first admin key (the given secret, or a random one) and
 * returns its secret so start-up can print it once. Safe when two servers start together.
 */
export async function ensureFirstAdminKey(db: Db, secret?: string): Promise<string | null> {
  return withTransaction(db, async (tx) => {
    await tx.query('LOCK TABLE strata.api_keys IN SHARE ROW EXCLUSIVE MODE');
    const { rows } = await tx.query('SELECT 1 FROM strata.api_keys LIMIT 1');
    if (rows.length > 0) {
      if (secret !== undefined) {
        // STRATA_ADMIN_KEY given for automation: make sure that key exists and is an admin.
        const found = await tx.query('SELECT 1 FROM strata.api_keys WHERE secret_sha256 = $1', [hashSecret(secret)]);
        if (found.rows.length === 0) {
          await insertKey(tx, { name: 'admin (STRATA_ADMIN_KEY)', role: 'admin', secret }, { keyId: null, role: 'system' });
        }
      }
      return null;
    }
    const created = await insertKey(tx, { name: 'first admin', role: 'admin', secret }, { keyId: null, role: 'system' });
    return created.secret;
  });
}
