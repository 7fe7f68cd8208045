// Decoder isolation: HDF5 is decoded in a worker thread, so a wasm abort — even after rows of
// the file were already written — ends in a clean error with nothing stored, the server keeps
// serving, temp files are removed and the crashed worker's file descriptors are released.
import { readdir } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { rowsOfIngest, storedRowCount } from '../helpers/stored.ts';
import { workerCounts } from '../../src/ingest/decoders/hdf5/pool.ts';
import { checkTime, expected, hdf5, post, streamName } from './expected.ts';

let t: TestApp;
// Small batches: crash_blosc_mislabelled_late.h5 is then read in slices of whole chunks, several
// of which are decoded and written before the slice at row 3000 aborts the decoder.
beforeAll(async () => { t = await createTestApp({ limits: { maxBatchBytes: 16 * 1024 } as never }); });
afterAll(async () => { await t.close(); });

const openFds = (): number => readdirSync('/proc/self/fd').length;

async function rejected(id: string, code: string): Promise<void> {
  const record = await (await t.request(`/v1/ingests/${id}`)).json() as { status: string; error: { code: string } };
  expect(record.status).toBe('rejected');
  expect(record.error.code).toBe(code);
  expect(await rowsOfIngest(t.db, id)).toBe(0);
}

describe('a decoder crash', () => {
  it('after rows were already written: 422 decoder_crashed naming dataset and rows, nothing stored', async () => {
    const stream = streamName('late-crash');
    const p = await post(t, stream, hdf5('crash_blosc_mislabelled_late.h5'));
    expect(p.status, JSON.stringify(p.body)).toBe(422);
    expect(p.body.code).toBe('decoder_crashed');
    const first = expected['crash_blosc_mislabelled_late.h5'].first_aborting_row as number;
    expect(String(p.body.detail)).toMatch(new RegExp(`dataset /data/late, rows ${first}–\\d+`));
    await rejected(p.body.ingest_id as string, 'decoder_crashed');
    expect(await storedRowCount(t.db, stream)).toBe(0);
  });

  it('on the first slice: 422 decoder_crashed, nothing stored', async () => {
    const p = await post(t, streamName('crash'), hdf5('crash_blosc_mislabelled.h5'));
    expect(p.status, JSON.stringify(p.body)).toBe(422);
    expect(p.body.code).toBe('decoder_crashed');
    expect(String(p.body.detail)).toMatch(/dataset \/data\/value/);
    await rejected(p.body.ingest_id as string, 'decoder_crashed');
  });

  it('leaves the server serving, with no temp files and no leaked file descriptors', async () => {
    const before = openFds();
    for (let i = 0; i < 3; i++) {
      const p = await post(t, streamName('crash-again'), hdf5('crash_blosc_mislabelled.h5'));
      expect(p.body.code).toBe('decoder_crashed');
      const q = await post(t, streamName('corrupt'), hdf5('fletcher32_corrupt.h5'));
      expect(q.body.code).toBe('corrupt_data');
    }
    const health = await t.request('/healthz', { key: null });
    expect(health.status).toBe(200);
    // Each crashed worker was terminated (its fds closed); at most a spare worker remains.
    expect(openFds()).toBeLessThanOrEqual(before + 8);
    expect(await readdir(t.config.spoolDir).catch(() => [])).toEqual([]);
    expect(workerCounts().active).toBe(0);
  });
});

describe('after crashes', () => {
  it('the next file decodes normally, and its worker is kept for the one after', async () => {
    for (let i = 0; i < 2; i++) {
      const stream = streamName('after');
      const p = await post(t, stream, hdf5('flat_lzf.h5'));
      expect(p.status, JSON.stringify(p.body)).toBe(201);
      const e = expected['flat_lzf.h5'];
      await checkTime(t, stream, e.rows, e.time);
      expect(workerCounts()).toEqual({ active: 0, idle: 1 });
    }
    expect(await readdir(t.config.spoolDir).catch(() => [])).toEqual([]);
  });

  it('several uploads decode at once, each in its own worker', async () => {
    const files = ['flat_gzip.h5', 'compound.h5', 'cf_timeseries.nc', 'nexus_nxlog.h5'];
    const results = await Promise.all(files.map((f) => post(t, streamName(`par-${f}`), hdf5(f))));
    for (const [i, r] of results.entries()) {
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect((r.body.ingest as { rows: number }).rows).toBe(expected[files[i]].rows);
    }
  });
});
