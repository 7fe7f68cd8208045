// `strata push` progress: with a terminal on stderr (a pseudo-terminal made by Debian's
// /usr/bin/python3, the pty module) a redrawn bar — bytes sent of the file's size, rate, ETA —
// then the line with the rows stored; without one, one plain line per file and no control bytes.
import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrowBody, tempDir } from '../faults/lib.ts';
import { root } from '../bench/lib.ts';
import { type ListeningApp, committed, listeningApp, run } from './lib.ts';

const TIMEOUT = 180_000;
let app: ListeningApp;
let dir: string;

/** Runs argv with stderr on a pseudo-terminal of 160 columns; its stdout and the terminal's bytes come back apart. */
const PTY_RUNNER = `
import fcntl, os, pty, struct, subprocess, sys, termios
master, slave = pty.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 160, 0, 0))
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
os.close(slave)
tty = b''
while True:
    try:
        data = os.read(master, 65536)
    except OSError:
        break
    if not data:
        break
    tty += data
sys.stdout.buffer.write(child.stdout.read())
sys.stderr.buffer.write(tty)
sys.exit(child.wait())
`;

function underTerminal(args: string[]): Promise<{ code: number | null; out: string; tty: string }> {
  // A config file of its own: lib.ts rewrites the shared one whenever another test file runs a command.
  const config = path.join(dir, 'config.json');
  const env: NodeJS.ProcessEnv = { ...process.env, STRATA_CONFIG: config, STRATA_URL: app.url, STRATA_KEY: app.adminKey };
  const child = spawn('/usr/bin/python3', ['-c', PTY_RUNNER, process.execPath, path.join(root, 'bin/strata.mjs'), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let tty = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { tty += d.toString(); });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, out, tty })));
}

beforeAll(async () => {
  app = await listeningApp();
  dir = await tempDir('strata-push-progress-');
  await writeFile(path.join(dir, 'config.json'), '{}\n');
});
afterAll(async () => { await app.close(); await rm(dir, { recursive: true, force: true }); });

describe('strata push progress', () => {
  it('under a terminal: a bar with bytes, rate and ETA, then the rows stored', async () => {
    const file = path.join(dir, 'bar.arrows');
    const body = arrowBody(12, 50_000);
    await writeFile(file, body);
    const r = await underTerminal(['push', file, '--stream', 'bar']);
    expect(r.code, r.tty).toBe(0);
    const [stored] = await committed(app, 'bar');
    expect(stored.rows).toBe(600_000);
    const size = `${(body.length / 1e6).toFixed(1)} MB`;
    // Frames are redrawn over each other with a carriage return.
    const frames = r.tty.split('\r').filter((f) => f.startsWith('bar.arrows  '));
    expect(frames.length, r.tty).toBeGreaterThan(0);
    for (const f of frames) {
      expect(f).toMatch(new RegExp(`^bar\\.arrows  [\\d.]+ (B|KB|MB) / ${size.replace('.', '\\.')} \\[[#.]{24}\\] \\d+%  [\\d.]+ (B|KB|MB|GB)/s  ETA (\\d+:\\d\\d|--:--)`));
    }
    // The bar is cleared and the file's line printed in its place: the ingest and its rows.
    expect(r.tty).toContain('\r\x1b[K');
    expect(r.tty).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${size.replace('.', '\\.')} in [\\d.]+ s \\([\\d.]+ (KB|MB|GB)/s\\), ingest ${stored.id}, 600000 rows\\r?\\n`));
    expect(r.out).toMatch(new RegExp(`bar\\.arrows\\s+stored\\s+${stored.id}\\s+600000\\s+1`));
  }, TIMEOUT);

  it('without a terminal: one plain line per file, no redrawing', async () => {
    const files = ['plain-1.arrows', 'plain-2.arrows'].map((f) => path.join(dir, f));
    for (const [i, f] of files.entries()) await writeFile(f, arrowBody(2, 20_000 + i));
    const r = await run(['push', ...files, '--stream', 'plain'], { app });
    expect(r.code, r.err).toBe(0);
    expect(r.err).not.toContain('\r');
    expect(r.err).not.toContain('\x1b');
    const lines = r.err.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    const stored = await committed(app, 'plain');
    expect(lines[0]).toMatch(new RegExp(`^${files[0].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: [\\d.]+ MB in [\\d.]+ s .*, ingest ${stored[0].id}, 40000 rows$`));
    expect(lines[1]).toMatch(new RegExp(`^${files[1].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: [\\d.]+ MB in [\\d.]+ s .*, ingest ${stored[1].id}, 40002 rows$`));
  }, TIMEOUT);
});
