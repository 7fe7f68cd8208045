// A first start as a new user makes it, as a process: `npm start`'s command line with no
// DATABASE_URL and a data directory inside a directory only its owner may enter (a checkout in
// root's home). The embedded PostgreSQL must start there, and the first admin key must reach the
// operator through a file only they can read, never through the JSON log. The CLI must refuse a
// data directory that holds no database instead of creating one.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, lstat, mkdtemp, readFile, readlink, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { adminKeyNotice } from '../../src/keys/admin-key-file.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const asRoot = process.getuid?.() === 0;

interface Spawned { child: ChildProcess; stdout: string[]; stderr: string[]; exited: Promise<number> }

function spawnStrata(script: string, args: string[], env: Record<string, string>): Spawned {
  const { DATABASE_URL: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, ['--initial-old-space-size=64', '--import', 'tsx', path.join(root, script), ...args], {
    cwd: root, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Spawned = { child, stdout: [], stderr: [], exited: new Promise((resolve) => child.on('close', (code) => resolve(code ?? -1))) };
  child.stdout?.on('data', (d: Buffer) => out.stdout.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => out.stderr.push(d.toString()));
  return out;
}

/** The JSON log lines written so far. */
function logLines(s: Spawned): Record<string, unknown>[] {
  return s.stdout.join('').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function listening(s: Spawned, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = logLines(s).find((l) => l.msg === 'strata listening');
    if (line) return line.url as string;
    if (s.child.exitCode !== null) throw new Error(`strata exited ${s.child.exitCode}: ${s.stderr.join('')}`);
    if (Date.now() > deadline) throw new Error(`strata did not listen within ${timeoutMs} ms: ${s.stderr.join('')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const cleanup: string[] = [];
afterAll(async () => {
  for (const dir of cleanup.reverse()) await rm(dir, { recursive: true, force: true });
});

describe('a first start from a private directory', () => {
  it('runs the embedded PostgreSQL and hands the admin key over in a 0600 file, never in the log', async () => {
    const privateDir = await mkdtemp(path.join(os.tmpdir(), 'strata-private-'));
    cleanup.push(privateDir);
    await chmod(privateDir, 0o700);
    const dataDir = path.join(privateDir, 'checkout', '.strata');
    const server = spawnStrata('src/main.ts', [], { STRATA_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', STRATA_JOBS: 'off' });
    try {
      const url = await listening(server, 110_000);

      const keyFile = path.join(dataDir, 'admin-key');
      expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
      const key = (await readFile(keyFile, 'utf8')).trim();
      expect(key).toMatch(/^strata_/);
      const res = await fetch(`${url}/v1/keys`, { headers: { authorization: `Bearer ${key}` } });
      expect(res.status).toBe(200);

      // The structured log names the file, never the key; stderr (not a terminal here) names the
      // file only too.
      expect(server.stdout.join('')).not.toContain(key);
      expect(logLines(server).find((l) => l.msg === 'first admin API key created')?.file).toBe(keyFile);
      expect(server.stderr.join('')).not.toContain(key);
      expect(server.stderr.join('')).toContain(keyFile);

      if (asRoot) {
        // The postgres OS user cannot enter the private directory: the cluster lives where it
        // can, and <data dir>/pg points at it.
        const link = path.join(dataDir, 'pg');
        expect((await lstat(link)).isSymbolicLink()).toBe(true);
        const cluster = await readlink(link);
        cleanup.unshift(path.dirname(cluster));
        expect(cluster.startsWith(`${privateDir}/`)).toBe(false);
        const st = await stat(cluster);
        expect(st.mode & 0o777).toBe(0o700);
        expect(st.uid).not.toBe(0);
        // initdb's password file went with it.
        expect((await readdir(path.dirname(cluster))).filter((n) => n.startsWith('.initdb-'))).toEqual([]);
      }
      expect((await stat(path.join(dataDir, 'pg-password'))).mode & 0o777).toBe(0o600);
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
  }, 180_000);

  it('shows the key itself only on a terminal', () => {
    expect(adminKeyNotice('/d/admin-key', 'strata_secret', true)).toContain('strata_secret');
    expect(adminKeyNotice('/d/admin-key', 'strata_secret', false)).not.toContain('strata_secret');
    expect(adminKeyNotice('/d/admin-key', 'strata_secret', false)).toContain('/d/admin-key');
  });
});

describe('strata audit verify without a database', () => {
  it('refuses, naming the directory it looked in, and creates nothing', async () => {
    const parent = await mkdtemp(path.join(os.tmpdir(), 'strata-cli-'));
    cleanup.push(parent);
    const dataDir = path.join(parent, 'nowhere');
    const cli = spawnStrata('src/cli/main.ts', ['audit', 'verify'], { STRATA_DATA_DIR: dataDir });
    expect(await cli.exited).toBe(2);
    expect(cli.stderr.join('')).toContain(`no Strata database in ${dataDir}`);
    expect(await readdir(parent)).toEqual([]);
  });
});
