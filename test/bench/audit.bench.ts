// Audit and provenance figures (`npm run bench audit`), each beside a baseline measured in the same
// run on the same database:
//   - audit appends per second (hash chain under its lock) vs plain single-row INSERT transactions;
//   - chain verification, entries per second, vs reading the same rows without hashing;
//   - tracing a value (raw reading, 1h and 1d buckets) in a 1M-row stream vs the bare row lookup;
//   - retracting a 100k-row ingest vs a bare DELETE of a like ingest's rows;
//   - serving an original (re-hash, then stream) vs reading the file and hashing it in memory.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import '../../src/modules.ts';
import { loadConfig } from '../../src/config/index.ts';
import { type Db, withTransaction } from '../../src/db/pool.ts';
import { createApp } from '../../src/http/app.ts';
import { ensureFirstAdminKey } from '../../src/keys/api-keys.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { collectVersions } from '../../src/versions.ts';
import { appendAudit, systemActor, verifyAudit } from '../../src/audit/log.ts';
import { getStream } from '../../src/streams/catalog.ts';
import { ident } from '../../src/db/sql.ts';
import { formatMicros, pgTimestamp } from '../../src/domain/time.ts';
import { T0, arrowStream, loggerFrame, times } from '../helpers/polars.ts';
import { fmt, median, migratedBenchDb } from './lib.ts';

const ADMIN = 'strata_bench_admin_key_0123456789';
const ms = (t0: number): number => performance.now() - t0;


async function appendFigures(db: Db): Promise<void> {
  const n = 3000;
  await db.pool.query('CREATE TABLE bench_plain (seq bigint, at timestamptz, actor_key_id bigint, actor_role text, action text, subject text, details jsonb, prev_hash text, hash text)');
  let t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await withTransaction(db, (tx) => tx.query('INSERT INTO bench_plain VALUES ($1, now(), NULL, $2, $3, $4, $5, $6, $7)',
      [i, 'system', 'bench.append', `bench:${i}`, JSON.stringify({ i, stream: 'bench', rows: 1000 }), '0'.repeat(64), '0'.repeat(64)]));
  }
  const plain = n / (ms(t0) / 1000);
  t0 = performance.now();
  for (let i = 0; i < n; i++) await withTransaction(db, (tx) => appendAudit(tx, systemActor, 'bench.append', `bench:${i}`, { i, stream: 'bench', rows: 1000 }));
  const chained = n / (ms(t0) / 1000);
  t0 = performance.now();
  await Promise.all(Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; i < n / 8; i++) await withTransaction(db, (tx) => appendAudit(tx, systemActor, 'bench.append', `bench:${w}:${i}`, { i, w }));
  }));
  const concurrent = n / (ms(t0) / 1000);
  console.log(`audit append, one transaction each: ${fmt(chained)} entries/s sequential, ${fmt(concurrent)} entries/s from 8 writers; plain INSERT: ${fmt(plain)} rows/s (ratio ${fmt(chained / plain, 2)})`);
}

async function verifyFigures(db: Db): Promise<void> {
  const target = 200_000;
  const { rows } = await db.pool.query<{ n: string }>('SELECT count(*)::bigint AS n FROM strata.audit_log');
  for (let have = Number(rows[0].n); have < target; have += 1000) {
    await withTransaction(db, async (tx) => {
      for (let i = 0; i < 1000; i++) await appendAudit(tx, systemActor, 'bench.fill', `ingest:${have + i}`, { ingest_id: String(have + i), stream: 'bench', sha256: 'f'.repeat(64), rows: 1000, filename: `file-${have + i}.arrows` });
    });
  }
  const runs: number[] = [];
  const reads: number[] = [];
  let entries = 0;
  for (let r = 0; r < 3; r++) {
    let t0 = performance.now();
    const result = await verifyAudit(db.pool);
    runs.push(ms(t0));
    if (!result.ok) throw new Error('chain broken in the benchmark');
    entries = result.entries;
    t0 = performance.now();
    for (let after = 0; ;) {
      const page = await db.pool.query<{ seq: string }>('SELECT * FROM strata.audit_log WHERE seq > $1 ORDER BY seq LIMIT 5000', [after]);
      if (page.rows.length === 0) break;
      after = Number(page.rows.at(-1)?.seq);
    }
    reads.push(ms(t0));
  }
  console.log(`audit verify: ${fmt(entries)} entries in ${fmt(median(runs))} ms (${fmt(entries / (median(runs) / 1000))} entries/s); reading them without hashing: ${fmt(median(reads))} ms (ratio ${fmt(median(runs) / median(reads), 2)})`);
}

async function main(): Promise<void> {
  const { db, done } = await migratedBenchDb();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'strata-bench-data-'));
  try {
    const config = { ...loadConfig({ STRATA_DATA_DIR: dataDir }), databaseUrl: db.url, jobs: false };
    await ensureFirstAdminKey(db, ADMIN);
    const app = createApp({ db, config, log: createLogger('error', process.stderr), metrics: createMetrics(false), versions: await collectVersions(db), services: {} });
    const req = (url: string, init: RequestInit = {}): Promise<Response> =>
      Promise.resolve(app.request(url, { ...init, headers: { authorization: `Bearer ${ADMIN}`, ...(init.headers ?? {}) } }));

    await appendFigures(db);
    await verifyFigures(db);

    // A 1M-row stream: 10 uploads of 100k rows (10 samples), one row per second per sample.
    const ids: string[] = [];
    for (let k = 0; k < 10; k++) {
      const n = 100_000;
      const body = arrowStream([loggerFrame({ time: times(T0, n, 1_000_000n), sample: Array(n).fill(`S-${k}`) })]);
      const res = await req('/v1/streams/bench/ingest', { method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream' }, body });
      if (res.status !== 201) throw new Error(`ingest failed: ${res.status} ${await res.text()}`);
      ids.push(((await res.json()) as { ingest: { id: string } }).ingest.id);
    }
    const stream = await getStream(db.pool, 'bench');
    if (!stream) throw new Error('no stream');
    const table = `${ident('strata_data')}.${ident(stream.tableName)}`;
    const sampleCol = ident(stream.columns.find((c) => c.name === 'sample')?.columnName as string);

    const trace = async (query: string): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < 30; i++) {
        const at = T0 + BigInt(Math.floor(Math.random() * 100_000)) * 1_000_000n;
        const t0 = performance.now();
        const res = await req(`/v1/streams/bench/provenance?time=${formatMicros(at)}&tag.sample=S-${i % 10}${query}`);
        if (res.status !== 200) throw new Error(`trace failed: ${res.status}`);
        await res.arrayBuffer();
        out.push(ms(t0));
      }
      return out;
    };
    const bare: number[] = [];
    for (let i = 0; i < 30; i++) {
      const at = T0 + BigInt(Math.floor(Math.random() * 100_000)) * 1_000_000n;
      const t0 = performance.now();
      await db.pool.query(`SELECT ingest_id, count(*) FROM ${table} WHERE "time" = $1::timestamptz AND ${sampleCol} = $2 GROUP BY 1`, [pgTimestamp(at), `S-${i % 10}`]);
      bare.push(ms(t0));
    }
    const raw = median(await trace(''));
    const hour = median(await trace('&resolution=1h'));
    const day = median(await trace('&resolution=1d'));
    console.log(`trace a value in 1M rows (median of 30): raw reading ${fmt(raw, 1)} ms, 1h bucket ${fmt(hour, 1)} ms, 1d bucket ${fmt(day, 1)} ms; bare row lookup in SQL ${fmt(median(bare), 1)} ms (ratio raw ${fmt(raw / median(bare), 1)})`);

    // Baseline: a bare DELETE of another ingest's rows, committed.
    let t0 = performance.now();
    const del = (await db.pool.query(`DELETE FROM ${table} WHERE ingest_id = $1 AND "time" >= $2::timestamptz AND "time" <= $3::timestamptz`,
      [ids[8], pgTimestamp(T0), pgTimestamp(T0 + 100_000n * 1_000_000n)])).rowCount;
    const bareDelete = ms(t0);
    t0 = performance.now();
    const res = await req(`/v1/ingests/${ids[9]}/retract`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'benchmark' }) });
    if (res.status !== 200) throw new Error(`retract failed: ${res.status} ${await res.text()}`);
    const retract = ms(t0);
    console.log(`retract a 100k-row ingest from a 1M-row stream: ${fmt(retract)} ms (${fmt(100_000 / (retract / 1000))} rows/s); bare DELETE of ${del} rows of a like ingest: ${fmt(bareDelete)} ms (ratio ${fmt(retract / bareDelete, 2)})`);

    const big = arrowStream([loggerFrame({ time: times(T0, 1_000_000, 1_000n) })]);
    const bigRes = await req('/v1/streams/bench-big/ingest', { method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream' }, body: big });
    if (bigRes.status !== 201) throw new Error(`ingest failed: ${bigRes.status}`);
    const bigId = ((await bigRes.json()) as { ingest: { id: string } }).ingest.id;
    const serve: number[] = [];
    const local: number[] = [];
    const sha = createHash('sha256').update(big).digest('hex');
    for (let r = 0; r < 5; r++) {
      t0 = performance.now();
      const o = await req(`/v1/ingests/${bigId}/original`);
      const bytes = Buffer.from(await o.arrayBuffer());
      serve.push(ms(t0));
      if (bytes.length !== big.length) throw new Error('original differs');
      t0 = performance.now();
      const file = await readFile(path.join(config.archiveDir, sha.slice(0, 2), sha));
      createHash('sha256').update(file).digest('hex');
      local.push(ms(t0));
    }
    const mb = big.length / 1024 / 1024;
    console.log(`serve a ${fmt(mb, 1)} MB original (re-hash, then stream): ${fmt(median(serve), 1)} ms (${fmt(mb / (median(serve) / 1000), 0)} MB/s); read + hash in memory: ${fmt(median(local), 1)} ms (ratio ${fmt(median(serve) / median(local), 2)})`);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
    await done();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
