// Where a command finds its server: --url / --key, else STRATA_URL / STRATA_KEY, else the config
// file (--config FILE, else STRATA_CONFIG, else ~/.config/strata/config.json on Linux and macOS,
// %APPDATA%\strata\config.json on Windows), a JSON object {"url": "…", "key": "…"}.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Options, Parsed } from './args.ts';
import { str } from './args.ts';
import { UsageError } from './command.ts';

export const connectionOptions: Options = {
  url: { type: 'string' },
  key: { type: 'string' },
  config: { type: 'string' },
};

export const CONNECTION_USAGE = `Server: --url URL --key KEY, or STRATA_URL / STRATA_KEY, or a config file
  (--config FILE, STRATA_CONFIG, ~/.config/strata/config.json; {"url": "…", "key": "…"}).`;

export interface Connection {
  url: string;
  key: string;
}

export function defaultConfigPath(): string {
  const base = process.platform === 'win32' ? (process.env.APPDATA ?? path.join(os.homedir(), 'AppData', 'Roaming')) : path.join(os.homedir(), '.config');
  return path.join(base, 'strata', 'config.json');
}

function readConfig(file: string, explicit: boolean): { url?: string; key?: string } {
  if (!existsSync(file)) {
    if (explicit) throw new UsageError(`config file ${file} does not exist`);
    return {};
  }
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as { url?: string; key?: string };
  } catch (err) {
    throw new UsageError(`config file ${file}: ${(err as Error).message}`);
  }
}

export function connection(p: Parsed, env: NodeJS.ProcessEnv = process.env): Connection {
  const explicit = str(p, 'config') ?? env.STRATA_CONFIG;
  const file = readConfig(explicit ?? defaultConfigPath(), explicit !== undefined);
  const url = str(p, 'url') ?? env.STRATA_URL ?? file.url;
  const key = str(p, 'key') ?? env.STRATA_KEY ?? file.key;
  if (!url) throw new UsageError('no server: give --url, set STRATA_URL, or put "url" in the config file');
  if (!key) throw new UsageError('no API key: give --key, set STRATA_KEY, or put "key" in the config file');
  let parsed: URL;
  try { parsed = new URL(url); } catch { throw new UsageError(`--url ${JSON.stringify(url)} is not a URL (e.g. http://strata.lab:8080)`); }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`--url ${JSON.stringify(url)} must start with http:// or https://`);
  return { url: url.replace(/\/+$/, ''), key };
}
