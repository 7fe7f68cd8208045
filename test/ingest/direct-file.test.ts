// An upload's original is spooled around the page cache (O_DIRECT) from page-aligned staging
// memory that later uploads reuse: the file must hold exactly the bytes written, whatever the
// pieces' sizes, and a writer stopped mid-way must never write into staging another file has taken.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectFileWriter } from '../../src/ingest/direct-file.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_STREAM } from '../helpers/fixtures.ts';
import { T0, arrowStream, loggerFrame, times } from '../helpers/polars.ts';

const MiB = 1 << 20;
let dir: string;
beforeAll(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'strata-direct-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

/** Writes `data` in pieces of the given sizes (cycled) and returns the file's bytes. */
async function roundTrip(name: string, data: Buffer, sizes: number[], cached = false): Promise<{ bytes: Buffer; direct: boolean }> {
  const file = path.join(dir, name);
  const w = await DirectFileWriter.create(file, cached);
  for (let at = 0, k = 0; at < data.length; k++) {
    const n = sizes[k % sizes.length];
    await w.write(data.subarray(at, at + n));
    at += n;
  }
  const direct = w.bypassesCache;
  await w.end();
  expect(w.size).toBe(data.length);
  return { bytes: await readFile(file), direct };
}

describe('DirectFileWriter', () => {
  it('bypasses the page cache on this file system and writes exactly the bytes given, whatever the pieces', async () => {
    const cases: [number, number[]][] = [
      [0, [1]],
      [1, [1]],
      [4096, [4096]],
      [MiB, [65_536]],
      [5 * MiB + 123, [65_536, 1, 300_001, 4096]], // pieces across slot boundaries, a tail of 123 bytes
      [9 * MiB, [3 * MiB + 7]], // one piece fills several slots
    ];
    for (const [size, sizes] of cases) {
      const data = randomBytes(size);
      const { bytes, direct } = await roundTrip(`f-${size}`, data, sizes);
      expect(direct).toBe(true);
      expect(bytes.equals(data), `${size} bytes in pieces of ${sizes.join(', ')}`).toBe(true);
    }
  });

  it('goes through the page cache when asked (for a file read back at once)', async () => {
    const data = randomBytes(2 * MiB + 5);
    const { bytes, direct } = await roundTrip('cached', data, [65_536]);
    expect(direct).toBe(true);
    const again = await roundTrip('cached-2', data, [65_536], true);
    expect(again.direct).toBe(false);
    expect(again.bytes.equals(data)).toBe(true);
    expect(bytes.equals(data)).toBe(true);
  });

  it('refuses writes once destroyed, so staging reused by the next file is never touched', async () => {
    const first = await DirectFileWriter.create(path.join(dir, 'stopped'));
    await first.write(randomBytes(3 * MiB));
    await first.destroy();
    // The next writer takes the staging memory the first one gave back.
    const data = randomBytes(4 * MiB + 10);
    const second = await DirectFileWriter.create(path.join(dir, 'next'));
    await second.write(data.subarray(0, MiB));
    await expect(first.write(Buffer.alloc(2 * MiB, 0xee))).rejects.toThrow(/closed/);
    await second.write(data.subarray(MiB));
    await second.end();
    expect((await readFile(path.join(dir, 'next'))).equals(data)).toBe(true);
  });

  it('writes concurrent files side by side intact', async () => {
    const datas = [0, 1, 2, 3].map((i) => randomBytes(3 * MiB + i * 1000));
    const files = await Promise.all(datas.map((d, i) => roundTrip(`side-${i}`, d, [65_536 + i])));
    files.forEach((f, i) => expect(f.bytes.equals(datas[i])).toBe(true));
  });
});

describe('an upload\'s original', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp(); });
  afterAll(async () => { await t.close(); });

  it('is archived byte for byte when it spans many staging slots', async () => {
    const rows = 200_000; // about 7 MB of Arrow
    const body = arrowStream([loggerFrame({
      time: times(T0, rows, 1000n),
      value: Float64Array.from({ length: rows }, (_, i) => i * 0.5),
      sample: Array.from({ length: rows }, (_, i) => `S-${i % 7}`),
    })]);
    expect(body.length).toBeGreaterThan(5 * MiB);
    const res = await t.request('/v1/streams/direct/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body });
    expect(res.status, await res.clone().text()).toBe(201);
    const { ingest } = await res.json() as { ingest: { id: string } };
    const original = await t.request(`/v1/ingests/${ingest.id}/original`);
    expect(original.status).toBe(200);
    expect(Buffer.from(await original.arrayBuffer()).equals(body)).toBe(true);
  });
});
