// `strata push`: content types from magic bytes, retries with one Idempotency-Key, a push killed
// halfway and run again, bad arguments, exit codes.
import { rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrowBody, tempDir } from '../faults/lib.ts';
import { root } from '../bench/lib.ts';
import { waitFor } from '../helpers/clock.ts';
import { type ListeningApp, committed, listeningApp, run, strata } from './lib.ts';

const TIMEOUT = 180_000;
let app: ListeningApp;
let dir: string;

beforeAll(async () => {
  app = await listeningApp();
  dir = await tempDir('strata-push-');
});
afterAll(async () => { await app.close(); await rm(dir, { recursive: true, force: true }); });

describe('strata push', () => {
  it('names a bad argument, a missing setting and an unknown command, with exit code 2', async () => {
    const bad = await run(['push', '--strem', 'x', 'f'], { app });
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("'--strem'");
    const noStream = await run(['push', 'f'], { app });
    expect(noStream.code).toBe(2);
    expect(noStream.err).toContain('--stream is required');
    const noUrl = await run(['push', '--stream', 's', 'f']);
    expect(noUrl.code).toBe(2);
    expect(noUrl.err).toContain('STRATA_URL');
    const unknown = await run(['pussh']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown command "pussh"');
    const help = await run(['push', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('usage: strata push');
  }, TIMEOUT);

  it('picks each content type from the first bytes, then reports a repeat as duplicate', async () => {
    const files = ['fixtures/arrow/logger_us.arrows', 'fixtures/hdf5/h5py_epoch_ms.h5', 'fixtures/hdf5/cf_timeseries.nc',
      'fixtures/tabular/arrowrs_lz4raw_4groups.parquet', 'fixtures/tabular/epoch_seconds.tsv'].map((f) => path.join(root, f));
    const streams = ['m-arrow', 'm-h5', 'm-nc', 'm-parquet', 'm-tsv'];
    for (let i = 0; i < files.length; i++) {
      const r = await run(['push', files[i], '--stream', streams[i], '--json'], { app });
      expect(r.code, r.err).toBe(0);
      expect(JSON.parse(r.out.trim())).toMatchObject({ status: 'stored', attempts: 1 });
    }
    const { rows } = await app.db.pool.query<{ content_type: string; filename: string }>(
      `SELECT content_type, filename FROM strata.ingests WHERE status = 'committed' ORDER BY id`);
    expect(rows.map((r) => r.content_type)).toEqual(['application/vnd.apache.arrow.stream', 'application/x-hdf5', 'application/x-netcdf',
      'application/vnd.apache.parquet', 'text/tab-separated-values']);
    expect(rows.map((r) => r.filename)).toEqual(files.map((f) => path.basename(f)));
    const again = await run(['push', files[0], '--stream', streams[0]], { app });
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/logger_us\.arrows\s+duplicate/);
  }, TIMEOUT);

  it('retries 503s with the same Idempotency-Key; the file is stored once, also when a 503 came after the commit', async () => {
    const file = path.join(dir, 'run-503.arrows');
    await writeFile(file, arrowBody(2, 1000));
    const keys: string[] = [];
    let ingestRequests = 0;
    app.wrap = async (req, next) => {
      if (!req.url.includes('/ingest')) return next(req);
      keys.push(req.headers.get('idempotency-key') ?? '');
      ingestRequests++;
      const unavailable = (): Response => new Response('{"code":"database_unavailable"}', { status: 503, headers: { 'retry-after': '0', 'content-type': 'application/problem+json' } });
      if (ingestRequests <= 2) { await req.arrayBuffer(); return unavailable(); }
      if (ingestRequests === 3) { await next(req); return unavailable(); } // stored, but the answer is lost
      return next(req);
    };
    try {
      const r = await run(['push', file, '--stream', 'flaky', '--backoff', '0.05', '--json'], { app });
      expect(r.code, r.err).toBe(0);
      expect(JSON.parse(r.out.trim())).toMatchObject({ status: 'duplicate', attempts: 4, rows: 2000 });
      expect(r.err).toContain('attempt 3 failed (503 database_unavailable)');
    } finally {
      app.wrap = null;
    }
    expect(keys).toHaveLength(4);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^sha256:[0-9a-f]{64}:stream:flaky$/);
    expect(await committed(app, 'flaky')).toEqual([expect.objectContaining({ rows: 2000 })]);
  }, TIMEOUT);

  it('gives up after --retries and exits 3 naming the file; a refused file exits 1 naming it', async () => {
    const file = path.join(dir, 'run-down.arrows');
    await writeFile(file, arrowBody(1, 100));
    app.wrap = async (req) => { await req.arrayBuffer(); return new Response('{"code":"database_unavailable"}', { status: 503 }); };
    try {
      const r = await run(['push', file, '--stream', 'down', '--retries', '2', '--backoff', '0.01'], { app });
      expect(r.code).toBe(3);
      expect(r.err).toContain(`${file} failed: database_unavailable`);
    } finally {
      app.wrap = null;
    }
    const garbage = path.join(dir, 'garbage.bin');
    await writeFile(garbage, Buffer.from([0, 1, 2, 3, 0, 0, 7]));
    const r = await run(['push', garbage, file, '--stream', 'down'], { app });
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${garbage} failed: unknown_format`);
    expect(r.out).toMatch(/run-down\.arrows\s+stored/);
  }, TIMEOUT);

  it('a push killed with kill -9 halfway through the body, run again, stores the file once', async () => {
    const file = path.join(dir, 'big.arrows');
    const body = arrowBody(8, 40_000);
    await writeFile(file, body);
    // A slow link: a proxy that passes the body on at about 2 MB/s and counts it.
    let forwarded = 0;
    const proxy = net.createServer((client) => {
      const upstream = net.connect(app.port, '127.0.0.1');
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      upstream.pipe(client);
      client.on('data', (d: Buffer) => {
        client.pause();
        forwarded += d.length;
        upstream.write(d, () => setTimeout(() => client.resume(), 10));
      });
      client.on('end', () => upstream.end());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const port = (proxy.address() as net.AddressInfo).port;
    try {
      const first = strata(['push', file, '--stream', 'killed'], { env: { STRATA_URL: `http://127.0.0.1:${port}`, STRATA_KEY: app.adminKey } });
      await waitFor('a part of the body to pass', () => forwarded > body.length / 3, 120_000);
      expect(forwarded).toBeLessThan(body.length);
      first.child.kill('SIGKILL');
      await first.exited;
    } finally {
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
    expect(await committed(app, 'killed')).toEqual([]);
    const again = await run(['push', file, '--stream', 'killed', '--json'], { app });
    expect(again.code, again.err).toBe(0);
    expect(JSON.parse(again.out.trim())).toMatchObject({ status: 'stored', rows: 320_000 });
    expect(await committed(app, 'killed')).toEqual([expect.objectContaining({ rows: 320_000, filename: 'big.arrows' })]);
  }, TIMEOUT);
});
