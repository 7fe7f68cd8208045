// `strata watch`: a folder an instrument writes into. Files written slowly go up once, complete;
// a watcher killed between an upload and its journal entry neither doubles nor misses a file; a
// server away for 30 s gets every file that arrived meanwhile, in order, once it is back.
import { open, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrowBody, tempDir } from '../faults/lib.ts';
import { waitFor } from '../helpers/clock.ts';
import { type CliRun, type ListeningApp, committed, listeningApp, run, strata } from './lib.ts';

const TIMEOUT = 240_000;
/** How long the server stays away in the outage test (at least 30 s unless told otherwise). */
const DOWN_SECONDS = Number(process.env.STRATA_TEST_WATCH_DOWN_SECONDS ?? 30);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let app: ListeningApp;
const dirs: string[] = [];

beforeAll(async () => { app = await listeningApp(); });
afterAll(async () => {
  await app.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function rejected(stream: string): Promise<number> {
  const { rows } = await app.db.pool.query<{ n: string }>("SELECT count(*)::text AS n FROM strata.ingests WHERE status = 'rejected' AND stream_name = $1", [stream]);
  return Number(rows[0].n);
}

/** A fake instrument: writes `body` into `file` in `pieces` pieces, `gapMs` apart. */
async function writeSlowly(file: string, body: Buffer, pieces: number, gapMs: number): Promise<void> {
  const fh = await open(file, 'w');
  try {
    const step = Math.ceil(body.length / pieces);
    for (let off = 0; off < body.length; off += step) {
      await fh.write(body.subarray(off, off + step));
      await fh.sync();
      if (off + step < body.length) await sleep(gapMs);
    }
  } finally {
    await fh.close();
  }
}

async function stopWatch(w: CliRun): Promise<number | null> {
  w.child.kill('SIGTERM');
  return w.exited;
}

describe('strata watch', () => {
  it('uploads each file once, only after the instrument finished writing it, and moves it to --done-dir', async () => {
    const dir = await tempDir('strata-watch-slow-');
    dirs.push(dir);
    const done = path.join(dir, 'done');
    const w = strata(['watch', dir, '--stream', 'slow', '--settle', '1.5', '--poll', '0.2', '--done-dir', done], { app });
    try {
      await waitFor('the watcher to start', () => w.out().includes('watching'), 120_000);
      const bodies = [arrowBody(4, 2000), arrowBody(4, 2000), arrowBody(4, 2000)];
      // Each file takes about 4 s to write, in 8 pieces half a second apart: three of them side by side.
      await Promise.all(bodies.map((b, i) => sleep(i * 700).then(() => writeSlowly(path.join(dir, `run-${i}.arrows`), b, 8, 500))));
      await waitFor('three files stored', () => (w.out().match(/ stored /g) ?? []).length >= 3, 60_000);
      await sleep(2000); // nothing more may go up
      expect(await committed(app, 'slow')).toEqual(['run-0.arrows', 'run-1.arrows', 'run-2.arrows']
        .map((filename) => expect.objectContaining({ rows: 8000, filename })));
      // A half-written Arrow stream would have been refused (and recorded as rejected).
      expect(await rejected('slow')).toBe(0);
      expect((await readdir(done)).sort()).toEqual(['run-0.arrows', 'run-1.arrows', 'run-2.arrows']);
      expect((await readdir(dir)).filter((f) => f.endsWith('.arrows'))).toEqual([]);
    } finally {
      expect(await stopWatch(w)).toBe(0);
    }
    const journal = (await readFile(path.join(dir, '.strata-watch.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string });
    expect(journal.filter((e) => e.event === 'stored')).toHaveLength(3);
    expect(journal.filter((e) => e.event === 'moved')).toHaveLength(3);
  }, TIMEOUT);

  it('killed with kill -9 between an upload and its journal entry, then restarted: no duplicate rows, no file missed', async () => {
    const dir = await tempDir('strata-watch-kill-');
    dirs.push(dir);
    const names = ['a.arrows', 'b.arrows', 'c.arrows'];
    for (let i = 0; i < names.length; i++) {
      await writeFile(path.join(dir, names[i]), arrowBody(2, 1500));
      const t = new Date(Date.now() - 60_000 + i * 1000);
      await utimes(path.join(dir, names[i]), t, t);
    }
    const killed = await run(['watch', dir, '--stream', 'crash', '--settle', '0.5', '--poll', '0.2'], { app, env: { STRATA_WATCH_FAULT: 'kill-after-upload' } });
    expect(killed.code).toBe(-1); // died of SIGKILL
    expect(await committed(app, 'crash')).toEqual([expect.objectContaining({ filename: 'a.arrows', rows: 3000 })]);
    const again = await run(['watch', dir, '--stream', 'crash', '--settle', '0.5', '--poll', '0.2', '--once'], { app });
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain('sending a.arrows again');
    expect(again.out).toMatch(/stored a\.arrows ingest=\d+ rows=3000 duplicate/);
    const stored = await committed(app, 'crash');
    expect(stored.map((s) => s.filename)).toEqual(names);
    const { rows } = await app.db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM strata_data.${(await app.db.pool.query<{ t: string }>(
      "SELECT table_name AS t FROM strata.streams WHERE name = 'crash'")).rows[0].t}`);
    expect(Number(rows[0].n)).toBe(9000);
    // A third run has nothing to do.
    const third = await run(['watch', dir, '--stream', 'crash', '--settle', '0.5', '--once'], { app });
    expect(third.code).toBe(0);
    expect(third.out).not.toContain('stored');
  }, TIMEOUT);

  it(`keeps the files while the server is away for ${DOWN_SECONDS} s and uploads all of them in order when it is back`, async () => {
    const dir = await tempDir('strata-watch-down-');
    dirs.push(dir);
    const w = strata(['watch', dir, '--stream', 'outage', '--settle', '0.5', '--poll', '0.2', '--backoff', '0.2', '--max-backoff', '2'], { app });
    try {
      await waitFor('the watcher to start', () => w.out().includes('watching'), 120_000);
      await writeFile(path.join(dir, 'r00.arrows'), arrowBody(1, 500));
      await waitFor('the first file stored', () => w.out().includes('stored r00.arrows'), 60_000);
      await app.down();
      const names: string[] = [];
      const every = (DOWN_SECONDS * 1000) / 6;
      for (let i = 1; i <= 6; i++) {
        const name = `r${String(i).padStart(2, '0')}.arrows`;
        names.push(name);
        await writeFile(path.join(dir, name), arrowBody(1, 500));
        await sleep(every);
      }
      expect(w.err()).toMatch(/r01\.arrows: attempt \d+ failed \(ECONNREFUSED/);
      expect(await committed(app, 'outage')).toHaveLength(1);
      await app.up();
      await waitFor('every file stored', () => names.every((n) => w.out().includes(`stored ${n}`)), 60_000);
      const stored = await committed(app, 'outage');
      expect(stored.map((s) => s.filename)).toEqual(['r00.arrows', ...names]);
    } finally {
      await app.up();
      expect(await stopWatch(w)).toBe(0);
    }
  }, TIMEOUT + DOWN_SECONDS * 1000);
});
