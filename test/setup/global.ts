// Once per test run: a PostgreSQL to test against (DATABASE_URL, or an embedded PostgreSQL 17
// in a temporary directory) and a template database with every migration applied. Each test file
// then copies the template into a database of its own.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createDb, closeDb } from '../../src/db/pool.ts';
import { migrate } from '../../src/db/migrate.ts';
import { startEmbedded, type EmbeddedServer } from '../../src/db/embedded.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    templateDb: string;
  }
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

let embedded: EmbeddedServer | null = null;
let tempDir: string | null = null;

/** Stops the embedded PostgreSQL and removes its temporary directory, if this run made them. */
async function removeEmbedded(): Promise<void> {
  if (embedded) {
    await embedded.stop();
    // A root run whose temporary directory the postgres user cannot reach keeps the cluster
    // elsewhere (src/db/embedded-layout.ts); it goes too.
    await rm(embedded.dataDir, { recursive: true, force: true });
    embedded = null;
  }
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
  tempDir = null;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  try {
    return await prepare(project);
  } catch (err) {
    // Nothing of a failed start stays behind: no PostgreSQL running, no directory in /tmp.
    await removeEmbedded();
    throw err;
  }
}

async function prepare(project: TestProject): Promise<() => Promise<void>> {
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    tempDir = await mkdtemp(path.join(os.tmpdir(), 'strata-test-pg-'));
    // Searchable by all, so that a root run's postgres user reaches the cluster where it is; the
    // cluster itself (mode 700) and its password file (600) stay private.
    await chmod(tempDir, 0o755);
    embedded = await startEmbedded({ dataDir: tempDir });
    adminUrl = embedded.url;
  }
  const template = `strata_tpl_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${template}`);
    const tdb = createDb(withDatabase(adminUrl, template), 2);
    await migrate(tdb).finally(() => closeDb(tdb));
  } catch (err) {
    await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
    throw err;
  }
  project.provide('pgAdminUrl', adminUrl);
  project.provide('templateDb', template);

  return async () => {
    const { rows } = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname = $1 OR datname LIKE $2`, [template, `${template}_%`]);
    for (const r of rows) await admin.query(`DROP DATABASE IF EXISTS "${r.datname}" WITH (FORCE)`).catch(() => undefined);
    await admin.end();
    await removeEmbedded();
  };
}
