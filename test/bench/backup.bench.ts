// `npm run bench backup`: backups and the read standby, on the embedded PostgreSQL 17.
//   RPO   time from an ingest's commit to the archiving of the WAL segment holding its commit,
//         p50 and max, over BENCH_BACKUP_INGEST_S (default 120 s; the target's ten minutes with
//         BENCH_BACKUP_INGEST_S=600) of uploads at full speed, plus the idle tail (archive_timeout).
//   dip   upload throughput while a base backup runs, vs the mean of the BENCH_BACKUP_WINDOW_S (30)
//         before and after it, with the same upload loops running throughout; BENCH_BACKUP_ROUNDS
//         (3) backups, the median dip, and each one split into its checkpoint (pg_backup_start),
//         copy and stop phases, with the page cache's dirty+writeback peak and the load average.
//         BENCH_BACKUP_TIMELINE=FILE appends a 5 s timeline of each round.
//   RTO   restore (copy + WAL replay + checks) of the database built meanwhile, from the last base
//         backup of the dip rounds that ran to its end (else one taken once the uploads stop) and the WAL
//         archived since; extrapolated linearly to 10 GB (BENCH_BACKUP_INGEST_S sizes the database).
//   lag   standby replay lag under full-speed uploads: p50 and max of the time until the standby
//         has replayed the primary's WAL position at a sample instant.
import { appendFile, readFile, readdir, stat } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import pg from 'pg';
import { restoreBackup, removeRestored } from '../../src/backup/restore.ts';
import { createStandby } from '../../src/backup/standby.ts';
import { ADMIN_KEY, ARROW_STREAM, arrowBody, removeDir, request, startStrata, tempDir } from '../faults/lib.ts';
import { fmt, median } from './lib.ts';

const INGEST_S = Number(process.env.BENCH_BACKUP_INGEST_S ?? 120);
/** BENCH_BACKUP_PORT: the first of the three ports the bench's PostgreSQL servers use. */
const PORT = Number(process.env.BENCH_BACKUP_PORT ?? 55410);
const PORTS = { primary: PORT, standby: PORT + 1, restore: PORT + 2 };
/** Base backups taken under uploads, and the seconds of uploads measured before and after each. */
const ROUNDS = Number(process.env.BENCH_BACKUP_ROUNDS ?? 3);
const WINDOW_S = Number(process.env.BENCH_BACKUP_WINDOW_S ?? 30);
/**
 * BENCH_BACKUP_TOGGLE_S: during each backup's copy, stop and continue its copying process
 * (SIGSTOP/SIGCONT) in alternate windows this long, for a paired comparison that the machine's
 * own swings do not blur (0: off). Run it with STRATA_BACKUP_PAUSE=0: the pauses are measured
 * in wall time, so a stopped window would otherwise be followed by an equal pause.
 */
const TOGGLE_S = Number(process.env.BENCH_BACKUP_TOGGLE_S ?? 0);
/**
 * BENCH_BACKUP_DIP_S (90): each dip round's backup is stopped after this many seconds — its copying
 * process killed, so that the backup fails as a killed one does — and its dip is that of its
 * checkpoint and copy so far. Beside uploads at full speed the paced copy chases a database growing
 * faster than it copies: the uploads' data filled a disk of 78 GB before one backup ended. 0: every
 * backup runs to its end.
 */
const DIP_S = Number(process.env.BENCH_BACKUP_DIP_S ?? 90);
const ARCHIVE_TIMEOUT_S = 60;
/**
 * BENCH_BACKUP_UPLOADERS: upload loops (2). Two at full speed write about 190 MB/s (the database,
 * its WAL, the archived WAL and the originals): a dip round fills a disk of 70 GB in six minutes.
 */
const UPLOADERS = Number(process.env.BENCH_BACKUP_UPLOADERS ?? 2);
/** BACKUP_BENCH=rpo,dip,lag,rto picks parts (the uploads of the RPO part always run: they make the database the others use). */
const PARTS = new Set((process.env.BACKUP_BENCH ?? 'rpo,dip,lag,rto').split(','));

async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) n += (await stat(path.join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
  }
  return n;
}

interface Span { start: number; end: number; rows: number }

/** Rows committed between a and b (performance.now() ms), each upload's rows spread evenly over its span. */
function rowsIn(spans: Span[], a: number, b: number): number {
  let n = 0;
  for (const s of spans) {
    const overlap = Math.min(b, s.end) - Math.max(a, s.start);
    if (overlap > 0) n += s.rows * (overlap / Math.max(1, s.end - s.start));
  }
  return n;
}

interface Sample { at: number; dirtyMB: number; load1: number; backup: string }

/** The page cache's dirty and writeback pages, the load average, and what the backup's session is doing. */
async function sample(side: pg.Client): Promise<Sample> {
  const at = performance.now();
  const mem = await readFile('/proc/meminfo', 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(mem)?.[1] ?? 0);
  const load1 = Number((await readFile('/proc/loadavg', 'utf8')).split(' ')[0]);
  const { rows } = await side.query<{ q: string }>("SELECT state || ' ' || query AS q FROM pg_stat_activity WHERE application_name = 'strata-backup'");
  return { at, dirtyMB: (kb('Dirty') + kb('Writeback')) / 1024, load1, backup: rows[0]?.q ?? '' };
}

/** When the backup's checkpoint (pg_backup_start) and its copy ended, from the samples. */
function phases(samples: Sample[], b0: number, b1: number): { checkpointEnd: number; copyEnd: number } {
  const within = samples.filter((s) => s.at >= b0 && s.at <= b1);
  const started = within.filter((s) => s.backup.includes('pg_backup_start'));
  const checkpointEnd = started.find((s) => !s.backup.startsWith('active'))?.at ?? started[0]?.at ?? b0;
  const copyEnd = within.find((s) => s.at > checkpointEnd && s.backup !== '' && !s.backup.includes('pg_backup_start'))?.at ?? b1;
  return { checkpointEnd, copyEnd };
}

function copyChild(serverPid: number): number | null {
  try {
    return Number(execFileSync('pgrep', ['-P', String(serverPid), '-f', 'copy-child.mjs'], { encoding: 'utf8' }).trim().split('\n')[0]);
  } catch (err) {
    if ((err as { status?: number }).status === 1) return null; // none
    throw err;
  }
}

/** Kills the backup's copying process once `seconds` have passed (trying each second until there is one, or the backup is over); whether it did. */
async function stopCopyAfter(serverPid: number, seconds: number, over: () => boolean): Promise<boolean> {
  const t0 = performance.now();
  while (!over()) {
    await new Promise((r) => setTimeout(r, performance.now() - t0 < seconds * 1000 ? 200 : 1000));
    if (performance.now() - t0 < seconds * 1000 || over()) continue;
    const pid = copyChild(serverPid);
    if (pid === null) continue;
    try { process.kill(pid, 'SIGKILL'); return true; } catch { /* ended meanwhile */ }
  }
  return false;
}

/** Alternates the backup's copying process between running and stopped until `done` settles; the windows it spanned whole. */
async function toggleCopy(serverPid: number, done: Promise<unknown>): Promise<{ from: number; to: number; running: boolean }[]> {
  let finished = false;
  void done.finally(() => { finished = true; });
  const windows: { from: number; to: number; running: boolean }[] = [];
  let running = true;
  let pid: number | null = null;
  let from = 0;
  try {
    while (!finished) {
      const now = performance.now();
      const found = copyChild(serverPid);
      if (found !== null && found === pid) windows.push({ from, to: now, running });
      if (found !== null) {
        running = !running;
        try {
          process.kill(found, running ? 'SIGCONT' : 'SIGSTOP');
        } catch {
          // ended meanwhile
        }
      }
      pid = found;
      from = now;
      const wait = found === null ? 200 : TOGGLE_S * 1000;
      const t = performance.now();
      while (!finished && performance.now() - t < wait) await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    if (pid !== null) {
      try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
    }
  }
  return windows.length % 2 ? windows.slice(0, -1) : windows;
}

/** A request without a deadline (fetch's undici gives up on headers after 300 s; a backup of GBs takes longer). */
function longRequest(url: string, pathname: string, method: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(pathname, url), { method, headers: { authorization: `Bearer ${ADMIN_KEY}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: { text } });
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The running server's output, for the error lines behind a failed upload. */
let serverOutput: (() => string) | null = null;

/** Uploads in `conc` loops until stop() says so; counts rows and notes each commit. */
function uploader(url: string, conc: number, onCommit?: (at: number) => void, spans?: Span[]): { rows(): number; stop(): Promise<void> } {
  let rows = 0;
  let stopped = false;
  let seed = Math.random() * 1e6;
  let failure: Error | null = null;
  const loops = Array.from({ length: conc }, async () => {
    while (!stopped && !failure) {
      const start = performance.now();
      const r = await request(url, '/v1/streams/bench/ingest', { method: 'POST', body: arrowBody(4, 50_000, seed++), contentType: ARROW_STREAM, timeoutMs: 120_000 })
        .catch((err: Error) => ({ status: 0, body: { error: err.message } }));
      if (r.status !== 201) {
        // The server's own account of it (its error lines), beside the answer.
        const logged = (serverOutput?.() ?? '').split('\n').filter((l) => /"level":50/.test(l)).slice(-3).join('\n');
        failure = new Error(`upload: ${r.status} ${JSON.stringify(r.body)}${logged ? `\nserver log:\n${logged}` : ''}`);
        return;
      }
      rows += 200_000;
      spans?.push({ start, end: performance.now(), rows: 200_000 });
      onCommit?.(Date.now());
    }
  });
  return {
    rows: () => rows,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      if (failure) throw failure;
    },
  };
}

/** Standby replay lag under full-speed uploads: p50 and max of the time until a standby has replayed the primary's WAL position at a sample instant. */
async function standbyLag(pgUrl: string, side: pg.Client, url: string, dir: string): Promise<void> {
  const standby = await createStandby({ primary: pgUrl, dataDir: dir, port: PORTS.standby });
  const sb = new pg.Client({ connectionString: standby.url });
  await sb.connect();
  const lags: number[] = [];
  const u = uploader(url, 2);
  const lagEnd = Date.now() + 40_000;
  while (Date.now() < lagEnd) {
    const { rows } = await side.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    const s = performance.now();
    for (;;) {
      const r = await sb.query<{ ok: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [rows[0].lsn]);
      if (r.rows[0].ok) break;
      await new Promise((res) => setTimeout(res, 10));
    }
    lags.push((performance.now() - s) / 1000);
    await new Promise((res) => setTimeout(res, 250));
  }
  await u.stop();
  await sb.end();
  await standby.stop();
  console.log(`standby replay lag under uploads (${lags.length} samples): p50 ${fmt(median(lags) * 1000, 0)} ms, max ${fmt(Math.max(...lags) * 1000, 0)} ms`);
  await removeRestored(dir);
}

async function main(): Promise<void> {
  const dataDir = await tempDir('strata-bench-backup-data-');
  const backupDir = await tempDir('strata-bench-backup-dir-');
  const scratch = await tempDir('strata-bench-backup-scratch-');
  const strata = await startStrata({ STRATA_DATA_DIR: dataDir, STRATA_BACKUP_DIR: backupDir, STRATA_PG_PORT: String(PORTS.primary) });
  serverOutput = strata.output;
  const password = (await import('node:fs/promises')).readFile(path.join(dataDir, 'pg-password'), 'utf8');
  const pgUrl = `postgres://postgres:${encodeURIComponent((await password).trim())}@127.0.0.1:${PORTS.primary}/postgres`;
  const side = new pg.Client({ connectionString: pgUrl });
  await side.connect();
  try {
    // --- RPO: commits and the archiving of their segments -----------------------------------------
    const commits: { at: number; wal: string }[] = [];
    const archivedAt = new Map<string, number>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const n of await readdir(path.join(backupDir, 'wal'))) if (/^[0-9A-F]{24}$/.test(n) && !archivedAt.has(n)) archivedAt.set(n, Date.now());
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const noteCommit = async (): Promise<void> => {
      const at = Date.now();
      const { rows } = await side.query<{ wal: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS wal');
      commits.push({ at, wal: rows[0].wal });
    };
    // The stream is created by one upload first (see the report: concurrent first uploads raced).
    const first = await request(strata.url, '/v1/streams/bench/ingest', { method: 'POST', body: arrowBody(4, 50_000, 0), contentType: ARROW_STREAM, timeoutMs: 120_000 });
    if (first.status !== 201) throw new Error(`first upload: ${first.status} ${JSON.stringify(first.body)}`);
    const pending: Promise<void>[] = [];
    const up = uploader(strata.url, UPLOADERS, () => { pending.push(noteCommit()); });
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, INGEST_S * 1000));
    await up.stop();
    await Promise.all(pending);
    const ingestRate = up.rows() / ((performance.now() - t0) / 1000);
    const last = commits.map((c) => c.wal).sort().at(-1) as string;
    const tailStart = Date.now();
    while (PARTS.has('rpo') && !archivedAt.has(last) && Date.now() - tailStart < (ARCHIVE_TIMEOUT_S + 30) * 1000) await new Promise((r) => setTimeout(r, 200));
    watching = false;
    await watcher;
    const rpo = commits.map((c) => ((archivedAt.get(c.wal) ?? Number.NaN) - c.at) / 1000).filter((x) => Number.isFinite(x));
    const rpoLoaded = commits.filter((c) => c.wal !== last).map((c) => ((archivedAt.get(c.wal) ?? Number.NaN) - c.at) / 1000).filter((x) => Number.isFinite(x));
    console.log(`RPO over ${INGEST_S} s of uploads at ${fmt(ingestRate)} rows/s (${commits.length} uploads): p50 ${fmt(median(rpo), 2)} s, max ${fmt(Math.max(...rpo), 2)} s; while uploads run (all but the last segment): p50 ${fmt(median(rpoLoaded), 2)} s, max ${fmt(Math.max(...rpoLoaded), 2)} s; archive_timeout ${ARCHIVE_TIMEOUT_S} s`);

    // --- Ingest dip during a base backup -------------------------------------------------------------
    // One set of upload loops runs through each round: BENCH_BACKUP_WINDOW_S before the backup, the
    // backup, the same after. Each upload's rows are spread evenly over its own time span, so a
    // window's rate does not jump by a whole upload at its edges. The backup's phases are read from
    // pg_stat_activity (its session runs pg_backup_start through the checkpoint, then idles while
    // the child copies, then reads the audit head and calls pg_backup_stop).
    const dips: number[] = [];
    const dipLines: string[] = [];
    /** Whether a dip round's backup ran to its end (the RTO restores it). */
    let wholeBackup = false;
    let backupSeconds = 0;
    for (let round = 0; round < (PARTS.has('dip') ? ROUNDS : 0); round++) {
      const uploads: Span[] = [];
      const u = uploader(strata.url, UPLOADERS, undefined, uploads);
      const samples: Sample[] = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          samples.push(await sample(side));
          await new Promise((r) => setTimeout(r, 100));
        }
      })().catch((err: unknown) => { console.error(`sampler: ${(err as Error).message}`); });
      await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
      const b0 = performance.now();
      const backup = longRequest(strata.url, '/v1/jobs/backup/run', 'POST');
      let settled = false;
      void backup.finally(() => { settled = true; });
      const stopper = DIP_S > 0 ? stopCopyAfter(strata.child.pid as number, DIP_S, () => settled) : Promise.resolve(false);
      const toggled = TOGGLE_S > 0 ? await toggleCopy(strata.child.pid as number, backup) : [];
      const run = await backup;
      const killed = await stopper;
      const b1 = performance.now();
      await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
      await u.stop();
      sampling = false;
      await sampler;
      const stopped = killed && run.body.outcome === 'failed';
      if (!stopped) wholeBackup = true;
      if (run.body.outcome !== 'succeeded' && !stopped) throw new Error(`backup: ${run.status} ${JSON.stringify(run.body)}`);
      backupSeconds = (b1 - b0) / 1000;
      const ph = phases(samples, b0, b1);
      const r = (a: number, b: number): number => rowsIn(uploads, a, b) / ((b - a) / 1000);
      const before = r(b0 - WINDOW_S * 1000, b0);
      const after = r(b1, b1 + WINDOW_S * 1000);
      const base = (before + after) / 2;
      const during = r(b0, b1);
      const dip = (1 - during / base) * 100;
      dips.push(dip);
      const pct = (x: number): string => `${fmt((x / base - 1) * 100, 1)} %`;
      const load = samples.filter((s) => s.at >= b0 && s.at <= b1).map((s) => s.load1);
      if (toggled.length > 0) {
        // Adjacent pairs of windows, the copy running in one and stopped in the other.
        const ratios: number[] = [];
        for (let i = 0; i + 1 < toggled.length; i += 2) {
          const [a, b] = [toggled[i], toggled[i + 1]];
          const on = a.running ? a : b;
          const off = a.running ? b : a;
          ratios.push(r(on.from, on.to) / r(off.from, off.to));
        }
        console.log(`round ${round + 1}: copy running vs stopped (SIGSTOP) in alternate ${TOGGLE_S} s windows: ${ratios.length} pairs, median ratio ${fmt(median(ratios), 3)} (dip ${fmt((1 - median(ratios)) * 100, 1)} %), mean ${fmt(ratios.reduce((x, y) => x + y, 0) / ratios.length, 3)}`);
      }
      dipLines.push(`round ${round + 1}: dip ${fmt(dip, 1)} % — ${fmt(during)} rows/s during the ${fmt(backupSeconds, 1)} s backup ${stopped ? `(stopped after ${DIP_S} s)` : `of ${fmt(((run.body.details as { bytes: number }).bytes) / 1e9, 2)} GB`} vs ${fmt(base)} (before ${fmt(before)}, after ${fmt(after)}); ` +
        `checkpoint ${fmt((ph.checkpointEnd - b0) / 1000, 1)} s ${pct(r(b0, ph.checkpointEnd))}, copy ${fmt((ph.copyEnd - ph.checkpointEnd) / 1000, 1)} s ${pct(r(ph.checkpointEnd, ph.copyEnd))}, stop ${fmt((b1 - ph.copyEnd) / 1000, 1)} s ${pct(r(ph.copyEnd, b1))}; ` +
        `dirty+writeback max ${fmt(Math.max(...samples.filter((s) => s.at >= b0 && s.at <= b1).map((s) => s.dirtyMB)))} MB (before ${fmt(Math.max(...samples.filter((s) => s.at < b0).map((s) => s.dirtyMB)))} MB); load average ${fmt(Math.min(...load), 1)}–${fmt(Math.max(...load), 1)}`);
      if (process.env.BENCH_BACKUP_TIMELINE) {
        // Per 5 s: rows/s, dirty+writeback MB, the backup's phase.
        const lines: string[] = [];
        for (let t = b0 - WINDOW_S * 1000; t < b1 + WINDOW_S * 1000; t += 5000) {
          const s = samples.filter((x) => x.at >= t && x.at < t + 5000);
          const phase = t + 5000 <= b0 || t >= b1 ? '-' : t < ph.checkpointEnd ? 'checkpoint' : t < ph.copyEnd ? 'copy' : 'stop';
          lines.push(`${fmt((t - b0) / 1000, 0).padStart(5)} s ${fmt(r(t, t + 5000)).padStart(9)} rows/s dirty ${fmt(Math.max(0, ...s.map((x) => x.dirtyMB))).padStart(6)} MB load ${fmt(s.at(-1)?.load1 ?? 0, 1)} ${phase}`);
        }
        await appendFile(process.env.BENCH_BACKUP_TIMELINE, `round ${round + 1}\n${lines.join('\n')}\n`);
      }
      console.log(dipLines.at(-1));
    }
    if (dips.length > 0) console.log(`uploads while a base backup runs, vs the ${WINDOW_S} s before and after (mean): median dip ${fmt(median(dips), 1)} % over ${dips.length} rounds (${dips.map((d) => fmt(d, 1)).join(', ')})`);

    // --- Standby replay lag under full-speed uploads ---------------------------------------------------
    if (PARTS.has('lag')) await standbyLag(pgUrl, side, strata.url, path.join(scratch, 'standby'));

    // --- RTO -----------------------------------------------------------------------------------------
    if (!PARTS.has('rto')) return;
    if (!wholeBackup) {
      // No whole backup was taken under uploads: one now, of the whole database, with nothing running beside it.
      const b0 = performance.now();
      const run = await longRequest(strata.url, '/v1/jobs/backup/run', 'POST');
      if (run.body.outcome !== 'succeeded') throw new Error(`backup: ${run.status} ${JSON.stringify(run.body)}`);
      backupSeconds = (performance.now() - b0) / 1000;
    }
    const [{ size }] = (await side.query<{ size: string }>('SELECT pg_database_size(current_database())::text AS size')).rows;
    await side.query('SELECT pg_switch_wal()');
    await new Promise((r) => setTimeout(r, 3000));
    const walBytes = await dirBytes(path.join(backupDir, 'wal'));
    const restoreDir = path.join(scratch, 'restored');
    const s = performance.now();
    const report = await restoreBackup({ from: backupDir, toTime: null, dataDir: restoreDir, port: PORTS.restore });
    const secs = (performance.now() - s) / 1000;
    await removeRestored(restoreDir);
    const gb = Number(size) / 1e9;
    console.log(`RTO: restore of a ${fmt(gb, 2)} GB database (${report.wal_segments} WAL segments after the backup; archive ${fmt(walBytes / 1e9, 2)} GB) in ${fmt(secs, 1)} s (copy ${report.seconds.copy} s, replay ${report.seconds.replay} s, checks ${report.seconds.checks} s), ok ${report.ok}; linear extrapolation to 10 GB: ${fmt((secs / gb) * 10 / 60, 1)} min (last base backup took ${fmt(backupSeconds, 1)} s)`);
  } finally {
    await side.end();
    await strata.stop();
    for (const d of [dataDir, backupDir, scratch]) await removeDir(d);
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
