// `strata query` and `strata verify-original` against a listening server.
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrowBody, tempDir } from '../faults/lib.ts';
import { pl } from '../helpers/polars.ts';
import { type ListeningApp, committed, listeningApp, run } from './lib.ts';

const TIMEOUT = 180_000;
let app: ListeningApp;
let dir: string;
let file: string;

beforeAll(async () => {
  app = await listeningApp();
  dir = await tempDir('strata-query-');
  file = path.join(dir, 'run.arrows');
  await writeFile(file, arrowBody(3, 1000));
  const r = await run(['push', file, '--stream', 'q'], { app });
  expect(r.code, r.err).toBe(0);
}, TIMEOUT);
afterAll(async () => { await app.close(); await rm(dir, { recursive: true, force: true }); });

describe('strata query', () => {
  it('writes CSV, Arrow and Parquet files that polars reads back whole', async () => {
    for (const format of ['csv', 'arrow', 'parquet']) {
      const out = path.join(dir, `out.${format}`);
      const r = await run(['query', 'q', '--from', '2024-03-01T00:00:00Z', '--format', format, '-o', out], { app });
      expect(r.code, r.err).toBe(0);
      expect(r.err).toMatch(new RegExp(`out\\.${format}: .* of ${format} in`));
      const bytes = await readFile(out);
      const df = format === 'csv' ? pl.readCSV(bytes.toString()) : format === 'arrow' ? pl.readIPCStream(bytes) : pl.readParquet(bytes);
      expect(df.height).toBe(3000);
      expect(df.columns).toEqual(['time', 'sample', 'value']);
    }
  }, TIMEOUT);

  it('passes tag filters and fields; names a refused query and a bad format', async () => {
    const r = await run(['query', 'q', '--fields', 'value', '--tag', 'sample=S-1', '--format', 'json'], { app });
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out) as { columns: { name: string }[]; row_count: number };
    expect(doc.columns.map((c) => c.name)).toEqual(['time', 'value']);
    expect(doc.row_count).toBe(999); // S-1 is every third row of each 1,000-row batch
    const refused = await run(['query', 'q', '--from', '2024-03-01'], { app });
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('400 invalid_request');
    const bad = await run(['query', 'q', '--format', 'xlsx'], { app });
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--format "xlsx"');
  }, TIMEOUT);
});

describe('strata verify-original', () => {
  it('matches the file an ingest was made from (also a gzip upload by its content), and only that file', async () => {
    const [ingest] = await committed(app, 'q');
    const same = await run(['verify-original', ingest.id, file], { app });
    expect(same.code, same.err).toBe(0);
    expect(JSON.parse(same.out)).toMatchObject({ ok: true, matched: 'sha256' });
    const other = path.join(dir, 'other.arrows');
    await writeFile(other, arrowBody(1, 10));
    const differs = await run(['verify-original', ingest.id, other], { app });
    expect(differs.code).toBe(1);
    expect(JSON.parse(differs.out)).toMatchObject({ ok: false, matched: null });
    // Sent gzipped, the ingest's content is the plain file.
    const plain = arrowBody(1, 50);
    const plainFile = path.join(dir, 'plain.arrows');
    await writeFile(plainFile, plain);
    await writeFile(`${plainFile}.gz`, gzipSync(plain));
    const pushed = await run(['push', `${plainFile}.gz`, '--stream', 'gz', '--json'], { app });
    expect(pushed.code, pushed.err).toBe(0);
    const id = (JSON.parse(pushed.out) as { ingest: string }).ingest;
    const content = await run(['verify-original', id, plainFile], { app });
    expect(content.code, content.err).toBe(0);
    expect(JSON.parse(content.out)).toMatchObject({ ok: true, matched: 'content_sha256' });
    const missing = await run(['verify-original', '999999', plainFile], { app });
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('404');
    const usage = await run(['verify-original', 'abc', plainFile], { app });
    expect(usage.code).toBe(2);
  }, TIMEOUT);
});
