// A read standby made by `strata standby` from the embedded PostgreSQL: queries read from it; a
// read with ?after_ingest= sees the upload just made (from the standby once it has replayed it,
// from the primary when it has not within the wait); with the standby stopped reads go to the
// primary, and they return to the standby when it is back.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../src/modules.ts';
import { loadConfig } from '../../src/config/index.ts';
import { type EmbeddedServer, startEmbedded } from '../../src/db/embedded.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { waitFor } from '../helpers/clock.ts';
import { ADMIN_KEY, SPAWNED_TIMEOUT_MS, removeDir, request, tempDir } from '../faults/lib.ts';
import { PORTS, cli, query, stopCluster, upload } from './lib.ts';

let primaryDir: string;
let standbyDir: string;
let server: RunningServer | null = null;
let standbyUrl: string;

beforeAll(async () => {
  primaryDir = await tempDir('strata-standby-primary-');
  standbyDir = path.join(await tempDir('strata-standby-'), 'data');
});

afterAll(async () => {
  await server?.stop();
  await stopCluster(standbyDir);
  await stopCluster(primaryDir);
  await removeDir(path.dirname(standbyDir));
  await removeDir(primaryDir);
});

async function rowsSeen(url: string, after?: string): Promise<{ rows: number; from: string | undefined }> {
  const r = await request(url, `/v1/streams/sb/query?format=json&limit=100000${after ? `&after_ingest=${after}` : ''}`);
  if (r.status !== 200) throw new Error(`query: ${r.status} ${JSON.stringify(r.body)}`);
  return { rows: (r.body.rows as unknown[]).length, from: r.headers['strata-read-from'] as string | undefined };
}

describe('a hot standby for reads', () => {
  it('serves queries, waits for read-your-writes, falls back to the primary and returns', async () => {
    const primary: EmbeddedServer = await startEmbedded({ dataDir: primaryDir, port: PORTS.primary2 });
    const made = await cli(['standby', '--primary', primary.url, '--data-dir', standbyDir, '--port', String(PORTS.standby)], {});
    expect(made.code, made.stderr).toBe(0);
    standbyUrl = (JSON.parse(made.stdout) as { url: string }).url;
    expect((await query<{ r: boolean }>(standbyUrl, 'SELECT pg_is_in_recovery() AS r'))[0].r).toBe(true);

    server = await startServer(loadConfig({
      STRATA_DATA_DIR: primaryDir, STRATA_PG_PORT: String(PORTS.primary2), STRATA_READ_DATABASE_URL: standbyUrl, STRATA_ADMIN_KEY: ADMIN_KEY,
      PORT: '0', HOST: '127.0.0.1', STRATA_JOBS: 'off', STRATA_READ_AFTER_INGEST_WAIT: '2s',
    }), { quiet: true, log: silentLogger() });
    const url = server.url;

    // Read-your-writes: the upload just made is in the answer, read from the standby.
    const u1 = await upload(url, 'sb', 1);
    expect(await rowsSeen(url, u1.id)).toEqual({ rows: 500, from: 'standby' });

    // Reads come from the standby: with its replay paused, a plain query misses the next upload ...
    await query(standbyUrl, 'SELECT pg_wal_replay_pause()');
    const u2 = await upload(url, 'sb', 2);
    expect(await rowsSeen(url)).toEqual({ rows: 500, from: 'standby' });
    // ... and a read-your-writes query waits its 2 s, then reads from the primary.
    const waited = performance.now();
    expect(await rowsSeen(url, u2.id)).toEqual({ rows: 1000, from: 'primary' });
    expect(performance.now() - waited).toBeGreaterThan(1900);
    await query(standbyUrl, 'SELECT pg_wal_replay_resume()');
    await waitFor('the standby to replay', async () => ((await rowsSeen(url)).rows === 1000) || undefined, 30_000);
    const metrics = await request(url, '/metrics');
    expect(metrics.body.text).toMatch(/strata_standby_replay_lag_seconds \d/);
    expect(metrics.body.text).toMatch(/strata_reads_total\{target="primary",reason="after_ingest_timeout"\} 1/);

    // The standby stops: reads go to the primary (and /readyz says why).
    await stopCluster(standbyDir);
    await waitFor('reads to fall back to the primary', async () => ((await rowsSeen(url)).from === 'primary') || undefined, 30_000);
    const u3 = await upload(url, 'sb', 3);
    expect(await rowsSeen(url, u3.id)).toEqual({ rows: 1500, from: 'primary' });
    const ready = await request(url, '/readyz');
    expect((ready.body.checks as { name: string; ok: boolean }[]).find((c) => c.name === 'read_standby')?.ok).toBe(false);
    expect((await request(url, '/metrics')).body.text).toMatch(/strata_reads_total\{target="primary",reason="standby_down"\} [1-9]/);

    // It comes back, catches up through its replication slot, and reads return to it.
    await startEmbedded({ dataDir: standbyDir, port: PORTS.standby });
    await waitFor('reads to return to the standby', async () => ((await rowsSeen(url, u3.id)).from === 'standby') || undefined, 60_000);
    expect(await rowsSeen(url)).toEqual({ rows: 1500, from: 'standby' });
  }, SPAWNED_TIMEOUT_MS);
});
