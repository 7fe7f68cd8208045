// One run of a job at a time across every replica: a session-level PostgreSQL advisory lock per
// job, held on a dedicated connection for the whole run. If the replica dies, or its session is
// terminated, PostgreSQL releases the lock at once and another replica can take the job; the
// holder learns of a lost session through `lost` and stops its run at the next safe point.
import type { Db, PoolClient } from '../db/pool.ts';

const JOB_LOCK_SPACE = 7_310_005;

export class JobLock {
  private readonly lostController = new AbortController();
  private released = false;
  private readonly onLost = (): void => {
    if (!this.released && !this.lostController.signal.aborted) this.lostController.abort(new Error('lost the job lock'));
  };

  private constructor(private readonly client: PoolClient, private readonly job: string) {
    // A checked-out client without an 'error' listener would crash the process when its
    // session is terminated.
    client.on('error', this.onLost);
    client.on('end', this.onLost);
  }

  /** Aborts when the lock's database session goes away (the lock is then no longer held). */
  get lost(): AbortSignal {
    return this.lostController.signal;
  }

  /** Takes the job's lock if no one holds it; null when another run holds it. */
  static async tryAcquire(db: Db, job: string): Promise<JobLock | null> {
    const client = await db.pool.connect();
    try {
      const { rows } = await client.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [JOB_LOCK_SPACE, job]);
      if (rows[0].ok) return new JobLock(client, job);
      client.release();
      return null;
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
  }

  /** Waits up to `waitMs` for the job's lock; null when it stayed held that long. */
  static async acquire(db: Db, job: string, waitMs: number): Promise<JobLock | null> {
    const client = await db.pool.connect();
    try {
      await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(waitMs))}`);
      try {
        await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [JOB_LOCK_SPACE, job]);
      } catch (err) {
        if ((err as { code?: string }).code !== '55P03') throw err;
        await client.query('RESET lock_timeout');
        client.release();
        return null;
      }
      await client.query('RESET lock_timeout');
      return new JobLock(client, job);
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    let broken: Error | undefined;
    if (this.lost.aborted) broken = new Error('job lock session lost');
    else {
      await this.client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [JOB_LOCK_SPACE, this.job])
        .catch((err: Error) => { broken = err; });
    }
    this.client.removeListener('error', this.onLost);
    this.client.removeListener('end', this.onLost);
    // A connection whose unlock failed is discarded, so that no pooled session keeps the lock.
    this.client.release(broken);
  }
}
