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

export async function startServer(config: Config, opts: { log?: Logger; quiet?: boolean } = {}): Promise<RunningServer> {
  const log = opts.log ?? createLogger(config.logLevel);
  let embedded: EmbeddedServer | null = null;
  let url = config.databaseUrl;
  if (!url) {
    embedded = await startEmbedded({ dataDir: config.dataDir, port: config.embeddedPgPort, log: (m) => log.info(m) });
    url = embedded.url;
    log.info({ port: embedded.port, dataDir: embedded.dataDir }, 'embedded PostgreSQL 17 running');
  }
  const db: Db = createDb(url, 20);
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
  } catch (err) {
    await closeDb(db);
    await embedded?.stop();
    throw err;
  }
  const deps: AppDeps = {
    db, config, log, metrics: createMetrics(), versions: await collectVersions(db), services: {},
  };
  const jobs = backgrounds.map((f) => f(deps));
  const app = createApp(deps);
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () => resolve(s as Server));
  });
  server.requestTimeout = 0; // uploads of many GB may take longer than Node's 5-minute default
  server.headersTimeout = 60_000;
  for (const j of jobs) await j.start(deps);
  const address = server.address() as AddressInfo;
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  const serverUrl = `http://${host}:${address.port}`;
  log.info({ url: serverUrl }, 'strata listening');

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log.info('shutting down: finishing in-flight requests');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), 30_000);
      await closed;
      clearTimeout(force);
      for (const j of jobs) await j.stop();
      await closeDb(db);
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
