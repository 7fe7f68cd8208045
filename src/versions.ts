// Versions recorded with every ingest: the server, Node, the decoders and PostgreSQL.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from './db/pool.ts';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function packageVersion(name: string): string {
  try {
    const main = require.resolve(name);
    let dir = path.dirname(main);
    while (dir !== path.dirname(dir)) {
      try {
        const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version ?? 'unknown';
      } catch { /* keep walking up */ }
      dir = path.dirname(dir);
    }
  } catch { /* not resolvable from CommonJS (e.g. an exports map without "require") */ }
  try {
    return (JSON.parse(readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch { /* not installed */ }
  return 'unknown';
}

export function strataVersion(): string {
  return (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

export async function collectVersions(db: Db): Promise<Record<string, string>> {
  const { rows } = await db.pool.query<{ server_version: string }>('SHOW server_version');
  return {
    strata: strataVersion(),
    node: process.version,
    'apache-arrow': packageVersion('apache-arrow'),
    h5wasm: packageVersion('h5wasm'),
    postgresql: rows[0].server_version,
  };
}
