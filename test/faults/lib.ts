// Fault tests run Strata as `npm start` does, in a process of its own, so that a crash would be
// seen as one (and a kill -9 is a real one). Uploads are sent by hand over HTTP, so that a test
// can stop sending halfway, inject a fault, and then send the rest.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { type EmbeddedServer, startEmbedded } from '../../src/db/embedded.ts';
import { serverArgs, root } from '../bench/lib.ts';
import { waitFor } from '../helpers/clock.ts';
import { T0, arrowStream, loggerFrame, times } from '../helpers/polars.ts';

/**
 * Time for a test that starts Strata processes: a few seconds on an idle machine, but a process's
 * start (TypeScript compiled on the fly) takes 20 s and more when other work keeps both cores busy.
 */
export const SPAWNED_TIMEOUT_MS = 180_000;

export const ADMIN_KEY = 'strata_faults_admin_key_0123456789';
export const ARROW_STREAM = 'application/vnd.apache.arrow.stream';

export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  // The embedded PostgreSQL runs as the postgres user when the tests run as root.
  await import('node:fs/promises').then((fs) => fs.chmod(dir, 0o755));
  return dir;
}

export interface StrataProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote so far (its JSON log and anything else). */
  output(): string;
  exited: Promise<number | null>;
  /** SIGTERM and wait (SIGKILL after 30 s). */
  stop(): Promise<void>;
}

/** Starts Strata (`npm start`'s command line) with the given environment on a free port. */
export async function startStrata(env: Record<string, string>): Promise<StrataProcess> {
  // The test runner's DATABASE_URL is not Strata's: without one of its own, Strata starts its embedded PostgreSQL.
  const { DATABASE_URL: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, serverArgs(), {
    cwd: root,
    env: { ...inherited, PORT: '0', HOST: '127.0.0.1', STRATA_ADMIN_KEY: ADMIN_KEY, STRATA_JOBS: 'off', STRATA_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await Promise.race([
    waitFor('strata to listen', () => /"msg":"strata listening"/.test(out) && (/"url":"([^"]+)"/.exec(out.slice(out.indexOf('strata listening') - 300))?.[1]), 120_000),
    exited.then((code) => { throw new Error(`strata exited with ${code} before listening:\n${out}`); }),
  ]);
  return {
    url, child, exited,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const late = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(late);
    },
  };
}

/** Strata on a database of an embedded PostgreSQL of the test's own (never a shared server). */
export interface OwnPostgres {
  embedded: EmbeddedServer;
  /** The database Strata uses. */
  dbUrl: string;
  dataDir: string;
  strata: StrataProcess;
  /** Stops Strata and PostgreSQL, and removes their directories. */
  close(): Promise<void>;
}

export async function strataOnOwnPostgres(database: string, env: Record<string, string> = {}): Promise<OwnPostgres> {
  const pgDir = await tempDir('strata-faults-pg-');
  const dataDir = await tempDir('strata-faults-data-');
  const embedded = await startEmbedded({ dataDir: pgDir });
  const admin = new pg.Client({ connectionString: embedded.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const u = new URL(embedded.url);
  u.pathname = `/${database}`;
  const dbUrl = u.toString();
  const strata = await startStrata({ DATABASE_URL: dbUrl, STRATA_DATA_DIR: dataDir, ...env });
  return {
    embedded, dbUrl, dataDir, strata,
    async close() {
      await strata.stop();
      await embedded.stop();
      await removeDir(pgDir);
      await removeDir(dataDir);
    },
  };
}

/** A multi-batch Arrow stream of `batches` × `rows` readings (a few MB), distinct per seed. */
export function arrowBody(batches: number, rows: number, seed = Math.random()): Buffer {
  const frames = Array.from({ length: batches }, (_, b) => loggerFrame({
    time: times(T0 + BigInt(b * rows) * 1_000_000n, rows, 1_000_000n),
    value: Float64Array.from({ length: rows }, (_, i) => seed + b * rows + i),
  }));
  return arrowStream(frames);
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface ManualUpload {
  /** Sends more of the body; resolves once written. */
  send(bytes: Buffer): Promise<void>;
  end(): void;
  /** The answer (or the connection's failure). */
  answer: Promise<Answer>;
  /** Set once an answer arrived. */
  answered: boolean;
}

/** Starts a POST of an upload whose body the test sends piece by piece. */
export function manualUpload(url: string, stream: string, size: number, headers: Record<string, string> = {}): ManualUpload {
  const req = http.request(new URL(`/v1/streams/${stream}/ingest`, url), {
    method: 'POST', agent: false,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': ARROW_STREAM, 'content-length': size, ...headers },
  });
  const up: ManualUpload = {
    answered: false,
    answer: new Promise<Answer>((resolve, reject) => {
      req.on('response', (res) => {
        let text = '';
        res.on('data', (d: Buffer) => { text += d.toString(); });
        res.on('end', () => {
          up.answered = true;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text || 'null') as Record<string, unknown> });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
    }),
    send: (bytes) => new Promise<void>((resolve) => {
      // The server may answer (and close the connection) before the body is complete: sending stops then.
      const stopped = (): boolean => req.destroyed || up.answered;
      if (stopped()) { resolve(); return; }
      const done = (): void => {
        req.off('close', done);
        req.off('error', done);
        resolve();
      };
      req.once('close', done);
      req.once('error', done);
      // Written in 256 KiB pieces, as a network client would.
      let off = 0;
      const pump = (): void => {
        while (off < bytes.length) {
          if (stopped()) { done(); return; }
          const ok = req.write(bytes.subarray(off, off + 262_144));
          off += 262_144;
          if (!ok) { req.once('drain', pump); return; }
        }
        done();
      };
      pump();
    }),
    end: () => { if (!req.destroyed) req.end(); },
  };
  up.answer.catch(() => undefined);
  return up;
}

export async function request(url: string, pathname: string, init: { method?: string; body?: Buffer; contentType?: string; timeoutMs?: number } = {}): Promise<Answer> {
  const res = await fetch(new URL(pathname, url), {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(init.contentType ? { 'content-type': init.contentType } : {}) },
    body: init.body,
    signal: AbortSignal.timeout(init.timeoutMs ?? 30_000),
  });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, headers: Object.fromEntries(res.headers) as http.IncomingHttpHeaders, body };
}

/** Seconds from now until `ok` holds (polled every 250 ms, up to deadlineMs). */
export async function secondsUntil(what: string, ok: () => Promise<boolean>, deadlineMs = 60_000): Promise<number> {
  const started = performance.now();
  await waitFor(what, async () => (await ok().catch(() => false)) || undefined, deadlineMs);
  return (performance.now() - started) / 1000;
}

/** Whether the server answers a real request that needs the database: the stream list. */
export async function serves(url: string): Promise<boolean> {
  const r = await request(url, '/v1/streams', { timeoutMs: 5_000 }).catch(() => null);
  return r?.status === 200;
}

/** Waits until the upload's COPY is running in PostgreSQL (its rows are being stored). */
export async function copyRunning(adminUrl: string, database: string): Promise<number> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    return await waitFor('the upload to be in its COPY', async () => {
      const { rows } = await c.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'strata-upload' AND query LIKE 'COPY %'`, [database]);
      return rows[0]?.pid;
    }, 60_000);
  } finally {
    await c.end();
  }
}

/** The spool's files (recursively, directories not counted). */
export async function spoolFiles(dataDir: string): Promise<string[]> {
  const spool = path.join(dataDir, 'spool');
  const entries = await readdir(spool, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Rows stored under one ingest id in a stream table. */
export async function rowsOfIngest(url: string, stream: string, ingestId: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows: t } = await c.query<{ table_name: string }>('SELECT table_name FROM strata.streams WHERE name = $1', [stream]);
    if (!t[0]) return 0;
    const { rows } = await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM strata_data."${t[0].table_name}" WHERE ingest_id = $1`, [ingestId]);
    return Number(rows[0].n);
  } finally {
    await c.end();
  }
}

/** The ingest record (status and error code), or null when there is none. */
export async function ingestRecord(url: string, id: string): Promise<{ status: string; error_code: string | null } | null> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ status: string; error_code: string | null }>('SELECT status, error_code FROM strata.ingests WHERE id = $1', [id]);
    return rows[0] ?? null;
  } finally {
    await c.end();
  }
}

/** Whether a process with this pid runs (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
