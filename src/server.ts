// Starts and stops a whole Strata server: database (embedded or DATABASE_URL), migrations, the
// first admin key, HTTP, and background jobs. Used by main.ts and by tests that need a real
// listening server (e.g. two replicas on one database).
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Config } from './config/index.ts';
import { type Db, closeDb, createDb } from './db/pool.ts';
import { migrate } from './db/migrate.ts';
import { type EmbeddedServer, startEmbedded } from './db/embedded.ts';
import { type Supervisor, superviseEmbedded } from './db/supervise.ts';
import { prepareArchiving } from './backup/wal-archive.ts';
import { ReadRoute } from './db/read-route.ts';
import { recordUnrecorded, recoverSpool } from './ingest/upload-claims.ts';
import { createApp } from './http/app.ts';
import type { AppDeps } from './http/deps.ts';
import { ensureFirstAdminKey } from './keys/api-keys.ts';
import { adminKeyNotice, writeAdminKeyFile } from './keys/admin-key-file.ts';
import { type Logger, createLogger } from './logging/logger.ts';
import { createMetrics } from './metrics/metrics.ts';
import { collectVersions } from './versions.ts';

export interface Background {
  start(deps: AppDeps): Promise<void> | void;
  stop(): Promise<void>;
}
const backgrounds: ((deps: AppDeps) => Background)[] = [];

/** Modules with background work (the job scheduler) register a factory here. */
export function registerBackground(factory: (deps: AppDeps) => Background): void {
  backgrounds.push(factory);
}

export interface RunningServer {
  url: string;
  deps: AppDeps;
  stop(): Promise<void>;
}

export interface ServerOptions {
  log?: Logger;
  quiet?: boolean;
  /**
   * The server cannot go on (the embedded PostgreSQL died and could not be started again).
   * main.ts exits non-zero; without it the server stops.
   */
  onFatal?: (err: Error) => void;
}

/** Connections of the main pool: authentication, queries, the catalog, jobs. Uploads have their own. */
const MAIN_POOL_SIZE = 20;
/**
 * Connections of the uploads' pool: one per upload for its transaction, and a quarter more (at
 * least 2) for the brief second connection an upload takes now and then (new chunks, a duplicate check).
 */
export function uploadPoolSize(maxUploads: number): number {
  return maxUploads + Math.max(2, Math.ceil(maxUploads / 4));
}

/** How often refusals that could not be recorded while the database was away are tried again. */
const UNRECORDED_RETRY_MS = 15_000;

export async function startServer(config: Config, opts: ServerOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? createLogger(config.logLevel);
  let embedded: EmbeddedServer | null = null;
  let url = config.databaseUrl;
  if (!url) {
    const backup = config.backup;
    embedded = await startEmbedded({
      dataDir: config.dataDir, port: config.embeddedPgPort, allow: config.pgAllow, log: (m) => log.info(m),
      settings: backup ? (layout) => prepareArchiving(backup.dir, backup.archiveTimeoutMs, layout.ids) : undefined,
    });
    url = embedded.url;
    log.info({ port: embedded.port, dataDir: embedded.dataDir }, 'embedded PostgreSQL 17 running');
  }
  const onConnectionLost = (err: Error): void => log.warn({ err: err.message }, 'a PostgreSQL connection was lost; its work fails with database_unavailable');
  const db: Db = createDb(url, { max: MAIN_POOL_SIZE, onConnectionLost });
  const uploadDb: Db = createDb(url, { max: uploadPoolSize(config.maxConcurrentUploads), name: 'strata-upload', onConnectionLost });
  try {
    const { rows } = await db.pool.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    if (Number(rows[0].v) < 140000) {
      throw new Error(`cannot start: Strata needs PostgreSQL 14 or newer; ${url.replace(/:[^:@/]*@/, ':…@')} runs ${rows[0].v}`);
    }
    const applied = await migrate(db);
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
    const firstKey = await ensureFirstAdminKey(db, config.adminKey);
    if (firstKey && !config.adminKey) {
      // Only its hash is stored. The structured log gets the file's path, never the key.
      const file = await writeAdminKeyFile(config.dataDir, firstKey);
      log.info({ file }, 'first admin API key created');
      if (!opts.quiet) process.stderr.write(adminKeyNotice(file, firstKey, process.stderr.isTTY === true));
    }
    const recovered = await recoverSpool(config.spoolDir, db);
    if (recovered.files > 0 || recovered.recorded.length > 0) {
      log.warn({ files: recovered.files, bytes: recovered.bytes, ingests: recovered.recorded, unrecordable: recovered.failed },
        'spool: removed files left by a stopped server; its unfinished uploads are recorded as rejected (interrupted)');
    }
  } catch (err) {
    await closeDb(db);
    await closeDb(uploadDb);
    await embedded?.stop();
    throw err;
  }
  const deps: AppDeps = {
    db, uploadDb, config, log, metrics: createMetrics(), versions: await collectVersions(db), services: embedded ? { embedded } : {},
  };
  const reads = config.readDatabaseUrl ? await startReadRoute(config.readDatabaseUrl, deps) : null;
  let stop: () => Promise<void> = async () => undefined;
  const supervisor = embedded ? supervise(embedded, deps, (err) => {
    log.fatal({ err: err.message }, 'embedded PostgreSQL cannot be started again; stopping');
    if (opts.onFatal) opts.onFatal(err);
    else void stop();
  }) : null;
  const unrecorded = setInterval(() => {
    recordUnrecorded(config.spoolDir, db).then((r) => {
      if (r.recorded.length > 0) log.info({ ingests: r.recorded }, 'recorded uploads refused while PostgreSQL was unreachable');
    }, (err: Error) => log.warn({ err: err.message }, 'cannot record uploads refused while PostgreSQL was unreachable'));
  }, UNRECORDED_RETRY_MS);
  unrecorded.unref();
  const jobs = backgrounds.map((f) => f(deps));
  const app = createApp(deps);
  const server = await new Promise<Server>((resolve) => {
    const s = serve({
      fetch: app.fetch, port: config.port, hostname: config.host,
      // Node checks the headers timeout on this interval (30 s by default), so a short timeout needs a short interval.
      serverOptions: { connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(config.headersTimeoutMs / 4))) },
    }, () => resolve(s as Server));
  });
  // Uploads of many GB may take longer than Node's 5-minute default; a stalled body is ended by
  // STRATA_BODY_IDLE_TIMEOUT instead. Headers must arrive within STRATA_HEADERS_TIMEOUT.
  server.requestTimeout = 0;
  server.headersTimeout = config.headersTimeoutMs;
  for (const j of jobs) await j.start(deps);
  const address = server.address() as AddressInfo;
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  const serverUrl = `http://${host}:${address.port}`;
  log.info({ url: serverUrl }, 'strata listening');

  let stopping: Promise<void> | null = null;
  stop = (): Promise<void> => {
    stopping ??= (async () => {
      log.info('shutting down: finishing in-flight requests');
      clearInterval(unrecorded);
      await supervisor?.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), 30_000);
      await closed;
      clearTimeout(force);
      for (const j of jobs) await j.stop();
      await reads?.stop();
      if (reads) await closeDb(reads.standby);
      await closeDb(db);
      await closeDb(uploadDb);
      if (embedded) {
        await embedded.stop();
        log.info('embedded PostgreSQL stopped');
      }
      log.info('stopped');
    })();
    return stopping;
  };
  return { url: serverUrl, deps, stop };
}

/** Keeps the embedded PostgreSQL running (db/supervise.ts), with its log lines, metrics and readiness check. */
function supervise(embedded: EmbeddedServer, deps: AppDeps, giveUp: (err: Error) => void): Supervisor {
  const { log, metrics } = deps;
  const supervisor = superviseEmbedded(embedded, {
    onDown: (pid) => log.error({ pid }, 'embedded PostgreSQL is not running; starting it again'),
    onRestarted: (attempt, ms) => {
      metrics.embeddedPostgresRestarts.inc({ outcome: 'restarted' });
      log.warn({ attempt, down_s: ms / 1000 }, 'embedded PostgreSQL started again');
    },
    onRestartFailed: (attempt, err) => {
      metrics.embeddedPostgresRestarts.inc({ outcome: 'failed' });
      log.error({ attempt, err: err.message }, 'embedded PostgreSQL did not start');
    },
    onGiveUp: giveUp,
  });
  const checks = (deps.services.healthChecks ??= []) as (() => Promise<{ name: string; ok: boolean; detail?: unknown }[]>)[];
  checks.push(async () => [{
    name: 'embedded_postgres', ok: supervisor.state === 'running', detail: { state: supervisor.state, restarts: supervisor.restarts },
  }]);
  return supervisor;
}

/** Reads from a standby (db/read-route.ts), with its log lines, metrics and readiness check. */
async function startReadRoute(url: string, deps: AppDeps): Promise<ReadRoute> {
  const { log, metrics, config } = deps;
  const standby = createDb(url, { max: MAIN_POOL_SIZE, name: 'strata-read' });
  const route = new ReadRoute(deps.db, standby, {
    afterIngestWaitMs: config.readAfterIngestWaitMs,
    events: {
      onDown: (err) => log.warn({ err }, 'read standby unreachable: reads go to the primary until it answers again'),
      onUp: (ms) => log.info({ down_s: ms / 1000 }, 'read standby answers again: reads go back to it'),
      onLag: (s) => metrics.standbyReplayLag.set(s.up ? s.lagSeconds ?? 0 : -1),
      onRead: (c) => metrics.reads.inc({ target: c.target, reason: c.reason }),
    },
  });
  await route.start();
  deps.services.reads = route;
  const checks = (deps.services.healthChecks ??= []) as (() => Promise<{ name: string; ok: boolean; detail?: unknown }[]>)[];
  checks.push(async () => [{
    name: 'read_standby', ok: route.state.up,
    detail: { up: route.state.up, lag_seconds: route.state.lagSeconds, lag_bytes: route.state.lagBytes, error: route.state.error, since: route.state.since.toISOString() },
  }]);
  return route;
}
