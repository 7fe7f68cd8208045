// Numbered SQL migrations from schemas/NNN_name.sql, applied in order, each in its own
// transaction, recorded in strata.migrations with a checksum. A session-level advisory lock
// makes concurrent start-ups safe: the second server waits, then finds nothing left to do.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from './pool.ts';

export const schemasDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../schemas');

const MIGRATION_LOCK = 7_310_001; // arbitrary, constant advisory-lock key

export interface Migration {
  id: number;
  name: string;
  sql: string;
  checksum: string;
}

const cache = new Map<string, Promise<Migration[]>>();

/** Migration files, read once per directory. */
export function loadMigrations(dir = schemasDir): Promise<Migration[]> {
  let p = cache.get(dir);
  if (!p) {
    p = readMigrations(dir);
    cache.set(dir, p);
  }
  return p;
}

async function readMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
  const out: Migration[] = [];
  for (const file of files) {
    const sql = await readFile(path.join(dir, file), 'utf8');
    out.push({
      id: Number(file.slice(0, 3)),
      name: file.replace(/\.sql$/, ''),
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  for (let i = 1; i < out.length; i++) {
    if (out[i].id === out[i - 1].id) throw new Error(`cannot migrate: two migrations are numbered ${out[i].id}`);
  }
  return out;
}

/** Applies pending migrations; returns the names applied. */
export async function migrate(db: Db, dir = schemasDir): Promise<string[]> {
  const migrations = await loadMigrations(dir);
  const client = await db.pool.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS strata`);
    await client.query(`CREATE TABLE IF NOT EXISTS strata.migrations (
      id int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ id: number; name: string; checksum: string }>(
      'SELECT id, name, checksum FROM strata.migrations ORDER BY id');
    const done = new Map(rows.map((r) => [r.id, r]));
    for (const m of migrations) {
      const prior = done.get(m.id);
      if (prior) {
        if (prior.checksum !== m.checksum) {
          throw new Error(`cannot migrate: ${m.name}.sql was changed after it was applied; released migrations are never edited — add a new one`);
        }
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO strata.migrations (id, name, checksum) VALUES ($1, $2, $3)', [m.id, m.name, m.checksum]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new Error(`cannot apply migration ${m.name}: ${(err as Error).message}`, { cause: err });
      }
      applied.push(m.name);
    }
    const known = new Set(migrations.map((m) => m.id));
    const unknown = rows.filter((r) => !known.has(r.id));
    if (unknown.length > 0) {
      throw new Error(`cannot start: the database has migrations this server does not know (${unknown.map((r) => r.name).join(', ')}); run a newer Strata`);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
  return applied;
}

/** True when every known migration is applied (for /readyz). */
export async function migrationsApplied(db: Db, dir = schemasDir): Promise<{ ok: boolean; pending: string[] }> {
  const migrations = await loadMigrations(dir);
  const { rows } = await db.pool.query<{ id: number }>(
    `SELECT id FROM strata.migrations`).catch(() => ({ rows: [] as { id: number }[] }));
  const have = new Set(rows.map((r) => r.id));
  const pending = migrations.filter((m) => !have.has(m.id)).map((m) => m.name);
  return { ok: pending.length === 0, pending };
}
