// Errors PostgreSQL raises that are a failure of ours — lacking resources, a system or I/O error,
// a cancelled statement, a lock not granted in time — are 503 with Retry-After, never a 500;
// an error nobody recognises stays a 500. The errors are real ones, raised by the server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors/app-error.ts';
import { fromPgError } from '../../src/errors/pg-errors.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';

let db: TestDb;
beforeAll(async () => { db = await createTestDb(); });
afterAll(async () => { await db.drop(); });

async function raised(sql: string): Promise<AppError> {
  const err = await db.pool.query(sql).then(() => null, (e: unknown) => e);
  expect(err).not.toBeNull();
  return fromPgError(err, 'store the upload');
}

describe('PostgreSQL errors as answers', () => {
  it('is 503 with Retry-After for disk full, out of memory, an I/O error and a cancelled statement', async () => {
    for (const [code, said] of [['53100', /resources/], ['53200', /resources/], ['58030', /I\/O/]] as const) {
      const e = await raised(`DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '${code}'; END $$`);
      expect([e.status, e.code, e.retryAfter], code).toEqual([503, 'database_unavailable', 5]);
      expect(e.message).toMatch(said);
      expect(e.message).not.toMatch(/injected|RAISE/);
    }
    const client = await db.pool.connect();
    try {
      const err = await client.query("BEGIN; SET LOCAL statement_timeout = '20ms'; SELECT pg_sleep(1)").then(() => null, (e: unknown) => e);
      await client.query('ROLLBACK');
      const cancelled = fromPgError(err, 'read the stream');
      expect([cancelled.status, cancelled.code]).toEqual([503, 'database_unavailable']);
      expect(cancelled.message).toMatch(/cancelled/);
    } finally {
      client.release();
    }
  });

  it('is 503 for a lock not granted in time', async () => {
    await db.pool.query('CREATE TABLE locked (n int)');
    const holder = await db.pool.connect();
    const waiter = await db.pool.connect();
    try {
      await holder.query('BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE');
      const err = await waiter.query("BEGIN; SET LOCAL lock_timeout = '20ms'; SELECT * FROM locked").then(() => null, (e: unknown) => e);
      await waiter.query('ROLLBACK');
      const e = fromPgError(err, 'read the stream');
      expect([e.status, e.code, e.retryAfter]).toEqual([503, 'database_unavailable', 5]);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
      waiter.release();
    }
  });

  it('stays a 500 for an error nobody recognises', async () => {
    const e = await raised("DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = 'XX000'; END $$");
    expect([e.status, e.code]).toEqual([500, 'internal']);
  });
});
