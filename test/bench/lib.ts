// Shared benchmark plumbing: a database (DATABASE_URL or a fresh embedded PostgreSQL 17), a
// Strata server in a child process (so its memory is measured alone), streaming uploads, and
// the raw COPY baseline.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, createReadStream, readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { startEmbedded, type EmbeddedServer } from '../../src/db/embedded.ts';
import { type Db, closeDb, createDb } from '../../src/db/pool.ts';
import { migrate } from '../../src/db/migrate.ts';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/**
 * `npm start`'s command line from package.json, as arguments for this Node binary, with `extra`
 * Node options in front: a benchmark runs the server exactly as `npm start` does, heap settings included.
 */
export function serverArgs(extra: string[] = [], from = root): string[] {
  const start = (JSON.parse(readFileSync(path.join(from, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const [node, ...args] = start.split(/\s+/);
  if (node !== 'node') throw new Error(`npm start runs ${JSON.stringify(node)}, not node: the benchmark cannot start the server as it does`);
  return [...extra, ...args.map((a) => (a.endsWith('.ts') ? path.join(from, a) : a))];
}

export const ADMIN_KEY = 'strata_bench_admin_key_0123456789';

export interface BenchDb {
  adminUrl: string;
  /** For the benchmark's own connections (the raw COPY baselines): the embedded server's Unix socket, the fastest way in. */
  url: string;
  /** For a Strata server under test: what Strata uses with its embedded PostgreSQL (loopback TCP), or DATABASE_URL. */
  serverUrl: string;
  name: string;
  close(): Promise<void>;
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** A fresh database for one benchmark run. */
export async function benchDatabase(): Promise<BenchDb> {
  let embedded: EmbeddedServer | null = null;
  let dir: string | null = null;
  let adminUrl = process.env.DATABASE_URL;
  let serverAdminUrl = adminUrl;
  if (!adminUrl) {
    dir = await mkdtemp(path.join(os.tmpdir(), 'strata-bench-pg-'));
    const fs = await import('node:fs/promises');
    await fs.chmod(dir, 0o755);
    embedded = await startEmbedded({ dataDir: dir });
    adminUrl = embedded.socketUrl ?? embedded.url;
    serverAdminUrl = embedded.url;
  }
  const name = `strata_bench_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return {
    adminUrl, url: withDatabase(adminUrl, name), serverUrl: withDatabase(serverAdminUrl as string, name), name,
    async close() {
      if (process.env.BENCH_KEEP_DB && !embedded) {
        console.log(`kept database ${name} (BENCH_KEEP_DB)`);
        return;
      }
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await a.end();
      if (embedded) await embedded.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh, migrated database for benchmarks that work in-process, and a pool on it. */
export async function migratedBenchDb(poolSize = 20): Promise<{ db: Db; url: string; done(): Promise<void> }> {
  const bench = await benchDatabase();
  // The pool plays Strata's part, so it connects the way Strata does.
  const db = createDb(bench.serverUrl, poolSize);
  await migrate(db);
  return {
    db, url: bench.serverUrl,
    async done() {
      await closeDb(db);
      await bench.close();
    },
  };
}

export interface BenchServer {
  url: string;
  pid: number;
  /** Peak resident set size of the server process so far (VmHWM), in bytes. */
  peakRss(): Promise<number>;
  /** CPU time (user + system, all threads) the server process has used so far, in seconds. */
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts Strata as `npm start` does, in a child process on a free port; `from`: another checkout
 * of the project (with its node_modules) to run instead of this one, for an A/B in one run.
 */
export async function startBenchServer(databaseUrl: string, env: Record<string, string> = {}, from = root): Promise<BenchServer> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'strata-bench-data-'));
  // BENCH_SERVER_NODE_ARGS adds Node options for the server alone, e.g. "--cpu-prof"; BENCH_SERVER_LOG
  // names a file to append its standard output to (its log, and what e.g. "--trace-gc" prints).
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child: ChildProcess = spawn(process.execPath, serverArgs(nodeArgs, from), {
    cwd: from,
    env: { ...process.env, DATABASE_URL: databaseUrl, PORT: '0', HOST: '127.0.0.1', STRATA_ADMIN_KEY: ADMIN_KEY, STRATA_DATA_DIR: dataDir, STRATA_JOBS: 'off', STRATA_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    // Complete lines only, and none once the server listens: the log keeps flowing (and must be
    // drained), but re-reading all of it on every write would cost the benchmark process CPU.
    let buf = '';
    let listening = false;
    const logTo = process.env.BENCH_SERVER_LOG;
    child.stdout?.on('data', (d: Buffer) => {
      if (logTo) appendFileSync(logTo, d);
      if (listening) return;
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const line of lines) {
        try {
          const j = JSON.parse(line) as { msg?: string; url?: string };
          if (j.msg === 'strata listening' && j.url) { listening = true; buf = ''; resolve(j.url); return; }
        } catch { /* not a log line */ }
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return {
    url,
    pid: child.pid as number,
    async peakRss() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const m = /VmHWM:\s+(\d+) kB/.exec(status);
      return m ? Number(m[1]) * 1024 : 0;
    },
    async cpuSeconds() {
      const stat = procStat(await readFile(`/proc/${child.pid}/stat`, 'utf8'));
      return stat ? (stat.utime + stat.stime) / 100 : 0; // clock ticks (USER_HZ 100)
    },
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      // A shutdown that has not ended in a minute is reported and cut short, so a benchmark
      // always ends (and leaves no server behind).
      const late = setTimeout(() => {
        console.error(`server ${child.pid} still running 60 s after SIGTERM; killing it`);
        child.kill('SIGKILL');
      }, 60_000);
      await exited;
      clearTimeout(late);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** POSTs a buffer or a file, streamed, and returns the JSON answer and the wall time. */
export async function upload(serverUrl: string, pathname: string, body: Buffer | { file: string; size: number }, contentType: string):
  Promise<{ status: number; json: unknown; seconds: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const size = Buffer.isBuffer(body) ? body.length : body.size;
    const req = http.request(new URL(pathname, serverUrl), {
      method: 'POST',
      // A connection of its own: a kept-alive one may be closed by the server's idle timeout just
      // as it is reused ("socket hang up" after a long pause between uploads).
      agent: false,
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': contentType, 'content-length': size },
    }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text || 'null'), seconds: (performance.now() - started) / 1000 }));
    });
    req.on('error', reject);
    if (Buffer.isBuffer(body)) {
      // write in 1 MiB pieces, as a network client would
      let off = 0;
      const pump = (): void => {
        while (off < body.length) {
          const ok = req.write(body.subarray(off, off + 1024 * 1024));
          off += 1024 * 1024;
          if (!ok) { req.once('drain', pump); return; }
        }
        req.end();
      };
      pump();
    } else {
      createReadStream(body.file, { highWaterMark: 1024 * 1024 }).pipe(req);
    }
  });
}

/**
 * Lets the database settle between timed measurements: vacuums and analyses the tables just
 * written (work autovacuum would otherwise do in the middle of the next measurement), waits for
 * any autovacuum worker to finish, and checkpoints, so that every measurement starts from the
 * same quiet state and none pays for the one before.
 */
export async function settle(url: string, tables: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const t of tables) await client.query(`VACUUM (ANALYZE) ${t}`);
    for (let i = 0; i < 600; i++) {
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'`);
      if (rows[0].n === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await client.query('CHECKPOINT');
    // Files written outside PostgreSQL (the server's spool and archive of originals) reach the
    // disk now, not in the middle of the next measurement.
    spawnSync('sync');
  } finally {
    await client.end();
  }
}

/** COPY … FROM STDIN (FORMAT binary) of pre-encoded buffers on one connection; returns seconds. */
export async function rawCopy(url: string, table: string, columns: string[], buffers: Buffer[]): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const started = performance.now();
    await client.query('BEGIN');
    await new Promise<void>((resolve, reject) => {
      const stream = client.query(copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN (FORMAT binary)`, { highWaterMark: 8 << 20 }));
      stream.on('error', reject);
      stream.on('finish', () => resolve());
      let i = 0;
      const pump = (): void => {
        while (i < buffers.length) {
          if (!stream.write(buffers[i++])) { stream.once('drain', pump); return; }
        }
        stream.end();
      };
      pump();
    });
    await client.query('COMMIT');
    return (performance.now() - started) / 1000;
  } finally {
    await client.end();
  }
}

/** A process's name and CPU clock ticks from its /proc/<pid>/stat line (the name may hold spaces and parentheses). */
function procStat(line: string): { comm: string; utime: number; stime: number; cutime: number; cstime: number } | null {
  const close = line.lastIndexOf(') ');
  if (close < 0) return null;
  const f = line.slice(close + 2).split(' ');
  return { comm: line.slice(line.indexOf('(') + 1, close), utime: Number(f[11]), stime: Number(f[12]), cutime: Number(f[13]), cstime: Number(f[14]) };
}

/** CPU seconds (user + system) used so far by the PostgreSQL processes on this machine, exited backends included (the postmaster's children's time). */
export async function postgresCpuSeconds(): Promise<number> {
  let ticks = 0;
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^[0-9]+$/.test(pid)) continue;
    const stat = procStat(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''));
    if (stat?.comm.startsWith('postgres')) ticks += stat.utime + stat.stime + stat.cutime + stat.cstime;
  }
  return ticks / 100;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
