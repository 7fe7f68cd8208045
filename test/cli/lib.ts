// The `strata` command under test: a Strata app on a test database, listening on a real port
// (through a fetch wrapper a test can use to answer 503 or to be "down"), and the command run as
// a child process exactly as `npx strata` runs it.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { root } from '../bench/lib.ts';

export type Wrap = (req: Request, next: (req: Request) => Promise<Response>) => Promise<Response>;

export interface ListeningApp extends TestApp {
  url: string;
  port: number;
  /** Requests that reached the wrapper. */
  requests: number;
  /** Stops listening and drops every connection: the server is away. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  wrap: Wrap | null;
}

function listen(fetch: (req: Request) => Promise<Response>, port: number): Promise<Server> {
  return new Promise((resolve) => {
    const s = serve({ fetch, port, hostname: '127.0.0.1' }, () => resolve(s as Server)) as Server;
    s.requestTimeout = 0;
  });
}

export async function listeningApp(): Promise<ListeningApp> {
  const app = await createTestApp();
  const la = app as ListeningApp;
  la.requests = 0;
  la.wrap = null;
  const fetch = async (req: Request): Promise<Response> => {
    la.requests++;
    const next = async (r: Request): Promise<Response> => app.app.fetch(r);
    return la.wrap ? la.wrap(req, next) : next(req);
  };
  let server: Server | null = await listen(fetch, 0);
  la.port = (server.address() as AddressInfo).port;
  la.url = `http://127.0.0.1:${la.port}`;
  la.down = async () => {
    const s = server;
    server = null;
    if (!s) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    s.closeAllConnections();
    await closed;
  };
  la.up = async () => { if (!server) server = await listen(fetch, la.port); };
  const close = app.close.bind(app);
  la.close = async () => { await la.down(); await close(); };
  return la;
}

export interface CliRun {
  child: ChildProcess;
  out(): string;
  err(): string;
  exited: Promise<number | null>;
}

/** Runs `strata ARGS…` (bin/strata.mjs) with STRATA_URL / STRATA_KEY of `app`. */
export function strata(args: string[], opts: { app?: ListeningApp; env?: Record<string, string>; cwd?: string } = {}): CliRun {
  // An empty config file: whatever the machine's ~/.config/strata says is not the test's.
  const config = path.join(os.tmpdir(), 'strata-cli-test-config.json');
  writeFileSync(config, '{}\n');
  const env: NodeJS.ProcessEnv = { ...process.env, STRATA_CONFIG: config };
  delete env.STRATA_URL;
  delete env.STRATA_KEY;
  if (opts.app) { env.STRATA_URL = opts.app.url; env.STRATA_KEY = opts.app.adminKey; }
  if (opts.env) Object.assign(env, opts.env);
  const child = spawn(process.execPath, [path.join(root, 'bin/strata.mjs'), ...args], { cwd: opts.cwd ?? root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  return { child, out: () => out, err: () => err, exited };
}

export async function run(args: string[], opts: Parameters<typeof strata>[1] = {}): Promise<{ code: number | null; out: string; err: string }> {
  const r = strata(args, opts);
  const code = await r.exited;
  return { code, out: r.out(), err: r.err() };
}

/** Committed ingests of a stream: id, rows, filename, oldest first. */
export async function committed(app: TestApp, stream: string): Promise<{ id: string; rows: number; filename: string | null }[]> {
  const { rows } = await app.db.pool.query<{ id: string; rows: string; filename: string | null }>(
    `SELECT i.id::text, i.rows::text, i.filename FROM strata.ingests i JOIN strata.streams s ON s.id = i.stream_id
      WHERE s.name = $1 AND i.status = 'committed' ORDER BY i.id`, [stream]);
  return rows.map((r) => ({ id: r.id, rows: Number(r.rows), filename: r.filename }));
}
