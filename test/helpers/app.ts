// An in-process Strata app on a test database, with an admin key, for app.request() tests.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Hono } from 'hono';
import '../../src/modules.ts';
import { type Config, defaultLimits, loadConfig } from '../../src/config/index.ts';
import { createApp } from '../../src/http/app.ts';
import type { AppDeps } from '../../src/http/deps.ts';
import { createKey, ensureFirstAdminKey, type Role } from '../../src/keys/api-keys.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { collectVersions } from '../../src/versions.ts';
import { createTestDb, type TestDb } from './db.ts';

export interface TestApp {
  app: Hono;
  db: TestDb;
  deps: AppDeps;
  config: Config;
  adminKey: string;
  /** Makes a key of a role (optionally scoped) and returns its secret. */
  key(role: Role, streams?: string[]): Promise<string>;
  request(pathname: string, init?: RequestInit & { key?: string | null }): Promise<Response>;
  close(): Promise<void>;
}

export async function createTestApp(overrides: Partial<Config> = {}): Promise<TestApp> {
  const db = await createTestDb();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'strata-test-'));
  const base = loadConfig({ STRATA_DATA_DIR: dataDir });
  const config: Config = { ...base, databaseUrl: db.url, jobs: false, ...overrides, limits: { ...defaultLimits, ...(overrides.limits ?? {}) } };
  const adminKey = `strata_test_admin_${Math.random().toString(36).slice(2)}`;
  await ensureFirstAdminKey(db, adminKey);
  const deps: AppDeps = {
    db, config, log: silentLogger(), metrics: createMetrics(false), versions: await collectVersions(db), services: {},
  };
  const app = createApp(deps);
  return {
    app, db, deps, config, adminKey,
    async key(role, streams) {
      const { secret } = await createKey(db, { name: `test ${role}`, role, streams: streams ?? null }, { keyId: null, role: 'system' });
      return secret;
    },
    request(pathname, init = {}) {
      const { key, ...rest } = init;
      const headers = new Headers(rest.headers);
      const k = key === undefined ? adminKey : key;
      if (k !== null) headers.set('authorization', `Bearer ${k}`);
      return Promise.resolve(app.request(pathname, { ...rest, headers }));
    },
    async close() {
      // The scheduler (if a route made one) holds its own pool on the database.
      await (deps.services.scheduler as { stop(): Promise<void> } | undefined)?.stop();
      await db.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
