// The Python client (clients/python/strata.py) as an instrument PC gets it: fetched from
// GET /client/strata.py, run by Debian's /usr/bin/python3 with its unittest suite
// (clients/python/test_strata.py) against a listening server, once with python3-pandas
// importable and once with it hidden.
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from '../bench/lib.ts';
import { tempDir } from '../faults/lib.ts';
import { type ListeningApp, listeningApp } from './lib.ts';

const PYTHON = '/usr/bin/python3';
let app: ListeningApp;
let clientDir: string;

beforeAll(async () => {
  app = await listeningApp();
  clientDir = await tempDir('strata-py-');
});
afterAll(async () => { await app.close(); await rm(clientDir, { recursive: true, force: true }); });

function python(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(PYTHON, args, { cwd: clientDir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: clientDir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe('the Python client', () => {
  it('is served at GET /client/strata.py, without a key, byte for byte the repository copy', async () => {
    const res = await fetch(`${app.url}/client/strata.py`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/x-python; charset=utf-8');
    const text = await res.text();
    expect(text).toBe(await readFile(path.join(root, 'clients/python/strata.py'), 'utf8'));
    await writeFile(path.join(clientDir, 'strata.py'), text);
    // Python 3.8 syntax: the file compiles with the oldest grammar Python's ast still knows.
    const compiled = await python(['-c', "import ast,sys; ast.parse(open('strata.py').read(), feature_version=(3, 8)); print('ok')"], {});
    expect(compiled.out.trim()).toBe('ok');
  });

  const suite = path.join(root, 'clients/python/test_strata.py');
  const env = (stream: string, pandas: boolean): Record<string, string> => ({
    STRATA_URL: app.url, STRATA_KEY: app.adminKey, STRATA_CLIENT_DIR: clientDir, STRATA_TEST_STREAM: stream, STRATA_EXPECT_PANDAS: pandas ? '1' : '0',
  });

  it('passes its tests under /usr/bin/python3 with pandas', async () => {
    const r = await python(['-s', suite, '-v'], env('py-pandas', true));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/Ran 9 tests/);
  }, 120_000);

  it('passes its tests under /usr/bin/python3 with pandas hidden (rows instead of a DataFrame)', async () => {
    const shim = path.join(clientDir, 'no-pandas');
    await mkdir(path.join(shim, 'pandas'), { recursive: true });
    await writeFile(path.join(shim, 'pandas', '__init__.py'), 'raise ImportError("pandas is hidden for this run")\n');
    const r = await python(['-s', suite, '-v'], { ...env('py-plain', false), PYTHONPATH: shim });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/Ran 9 tests/);
  }, 120_000);
});
