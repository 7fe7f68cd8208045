// Job work runs on PostgreSQL backends with a lower CPU priority (STRATA_JOB_NICE) when the
// server is on this machine, as every test database here is; the server's own backends keep
// the normal priority.
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { registerJob } from '../../src/jobs/registry.ts';
import { localBackendPid } from '../../src/db/priority.ts';

registerJob({
  name: 'whoami', description: 'reports the priority of the backend it works on', defaultIntervalMs: 60_000,
  run: async (ctx) => {
    const { rows } = await ctx.db.pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return { details: { pid: rows[0].pid, nice: os.getPriority(rows[0].pid) } };
  },
});

let t: TestApp | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});

async function jobBackend(app: TestApp): Promise<{ pid: number; nice: number }> {
  const res = await app.request('/v1/jobs/whoami/run', { method: 'POST' });
  expect(res.status).toBe(200);
  return ((await res.json()) as { details: { pid: number; nice: number } }).details;
}

/** The nice value of a backend of the server's own pool, or null when PostgreSQL is elsewhere. */
async function serverBackendNice(app: TestApp): Promise<number | null> {
  const client = await app.db.pool.connect();
  try {
    const pid = localBackendPid(client);
    return pid === null ? null : os.getPriority(pid);
  } finally {
    client.release();
  }
}

describe('job connections', () => {
  it('run at nice 10 by default, beside server connections at the normal priority', async (ctx) => {
    t = await createTestApp();
    const serverNice = await serverBackendNice(t);
    if (serverNice === null) ctx.skip();
    const job = await jobBackend(t);
    expect(job.nice).toBe(10);
    expect(serverNice).toBe(0);
    // The same connection again (pooled): still lowered, and the server's pool untouched.
    expect((await jobBackend(t)).nice).toBe(10);
    expect(await serverBackendNice(t)).toBe(0);
  });

  it('follow STRATA_JOB_NICE, and 0 leaves them alone', async (ctx) => {
    t = await createTestApp({ jobNice: 19 });
    if ((await serverBackendNice(t)) === null) ctx.skip();
    expect((await jobBackend(t)).nice).toBe(19);
    await t.close();
    t = await createTestApp({ jobNice: 0 });
    expect((await jobBackend(t)).nice).toBe(0);
  });
});
