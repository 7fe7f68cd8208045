// `npm run bench backup`: backups and the read standby, on the embedded PostgreSQL 17.
//   RPO   time from an ingest's commit to the archiving of the WAL segment holding its commit,
//         p50 and max, over BENCH_BACKUP_INGEST_S (default 120 s; the target's ten minutes with
//         BENCH_BACKUP_INGEST_S=600) of uploads at full speed, plus the idle tail (archive_timeout).
//   dip   upload throughput while a base backup runs, vs just before it (same run).
//   RTO   restore (copy + WAL replay + checks) of the database built meanwhile; extrapolated
//         linearly to 10 GB.
//   lag   standby replay lag under full-speed uploads: p50 and max of the time until the standby
//         has replayed the primary's WAL position at a sample instant.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { restoreBackup, removeRestored } from '../../src/backup/restore.ts';
import { createStandby } from '../../src/backup/standby.ts';
import { ARROW_STREAM, arrowBody, removeDir, request, startStrata, tempDir } from '../faults/lib.ts';
import { fmt, median } from './lib.ts';

const INGEST_S = Number(process.env.BENCH_BACKUP_INGEST_S ?? 120);
const PORTS = { primary: 55410, standby: 55411, restore: 55412 };
const ARCHIVE_TIMEOUT_S = 60;
/** BACKUP_BENCH=rpo,dip,lag,rto picks parts (the uploads of the RPO part always run: they make the database the others use). */
const PARTS = new Set((process.env.BACKUP_BENCH ?? 'rpo,dip,lag,rto').split(','));

async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) n += (await stat(path.join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
  }
  return n;
}

/** Uploads in `conc` loops until stop() says so; counts rows and notes each commit. */
function uploader(url: string, conc: number, onCommit?: (at: number) => void): { rows(): number; stop(): Promise<void> } {
  let rows = 0;
  let stopped = false;
  let seed = Math.random() * 1e6;
  let failure: Error | null = null;
  const loops = Array.from({ length: conc }, async () => {
    while (!stopped && !failure) {
      const r = await request(url, '/v1/streams/bench/ingest', { method: 'POST', body: arrowBody(4, 50_000, seed++), contentType: ARROW_STREAM, timeoutMs: 120_000 })
        .catch((err: Error) => ({ status: 0, body: { error: err.message } }));
      if (r.status !== 201) { failure = new Error(`upload: ${r.status} ${JSON.stringify(r.body)}`); return; }
      rows += 200_000;
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

async function main(): Promise<void> {
  const dataDir = await tempDir('strata-bench-backup-data-');
  const backupDir = await tempDir('strata-bench-backup-dir-');
  const scratch = await tempDir('strata-bench-backup-scratch-');
  const strata = await startStrata({ STRATA_DATA_DIR: dataDir, STRATA_BACKUP_DIR: backupDir, STRATA_PG_PORT: String(PORTS.primary) });
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
    const up = uploader(strata.url, 2, () => { pending.push(noteCommit()); });
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
    const rpoLoaded = commits.filter((c) => c.wal !== last).map((c) => ((archivedAt.get(c.wal) as number) - c.at) / 1000);
    console.log(`RPO over ${INGEST_S} s of uploads at ${fmt(ingestRate)} rows/s (${commits.length} uploads): p50 ${fmt(median(rpo), 2)} s, max ${fmt(Math.max(...rpo), 2)} s; while uploads run (all but the last segment): p50 ${fmt(median(rpoLoaded), 2)} s, max ${fmt(Math.max(...rpoLoaded), 2)} s; archive_timeout ${ARCHIVE_TIMEOUT_S} s`);

    // --- Ingest dip during a base backup -------------------------------------------------------------
    const rate = async (ms: number): Promise<number> => {
      const u = uploader(strata.url, 2);
      const s = performance.now();
      await new Promise((r) => setTimeout(r, ms));
      await u.stop();
      return u.rows() / ((performance.now() - s) / 1000);
    };
    const dips: string[] = [];
    let backupSeconds = 0;
    for (let round = 0; round < (PARTS.has('dip') ? 2 : 0); round++) {
      const before = await rate(20_000);
      const u = uploader(strata.url, 2);
      const s = performance.now();
      const run = await request(strata.url, '/v1/jobs/backup/run', { method: 'POST', timeoutMs: 600_000 });
      const during = u.rows();
      const secs = (performance.now() - s) / 1000;
      await u.stop();
      if (run.body.outcome !== 'succeeded') throw new Error(`backup: ${JSON.stringify(run.body)}`);
      backupSeconds = secs;
      const duringRate = during / secs;
      dips.push(`${fmt((1 - duringRate / before) * 100, 1)} % (${fmt(duringRate)} vs ${fmt(before)} rows/s, backup of ${fmt(((run.body.details as { bytes: number }).bytes) / 1e9, 2)} GB in ${fmt(secs, 1)} s)`);
    }
    console.log(`uploads while a base backup runs, vs just before: ${dips.join('; ')}`);

    // --- Standby replay lag under full-speed uploads ---------------------------------------------------
    if (!PARTS.has('lag') && !PARTS.has('rto')) return;
    const standby = await createStandby({ primary: pgUrl, dataDir: path.join(scratch, 'standby'), port: PORTS.standby });
    const sb = new pg.Client({ connectionString: standby.url });
    await sb.connect();
    const lags: number[] = [];
    const u = uploader(strata.url, 2);
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
    await removeRestored(path.join(scratch, 'standby'));

    // --- RTO -----------------------------------------------------------------------------------------
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
