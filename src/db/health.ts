// Is PostgreSQL reachable, and is the schema current?
import type { Db } from './pool.ts';
import { migrationsApplied } from './migrate.ts';

export async function checkDatabase(db: Db): Promise<{ reachable: boolean; migrationsApplied: boolean; pending: string[]; error?: string }> {
  try {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 2 s')), 2000).unref());
    await Promise.race([db.pool.query('SELECT 1'), timeout]);
    const m = await migrationsApplied(db);
    return { reachable: true, migrationsApplied: m.ok, pending: m.pending };
  } catch (err) {
    return { reachable: false, migrationsApplied: false, pending: [], error: (err as Error).message };
  }
}
