// Every bad HDF5 input gets a 4xx with a stable code and a message naming the dataset and the
// problem, a rejected ingest record carrying that code, and nothing stored. Truncated and
// garbage bodies are made here from committed fixtures (see fixtures/hdf5/make.py).
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { fixture } from '../helpers/fixtures.ts';
import { rowsOfIngest, totalStoredRows } from '../helpers/stored.ts';
import { hdf5, post, streamName } from './expected.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

const SIGNATURE = Buffer.from('\x89HDF\r\n\x1a\n', 'latin1');
const flat = hdf5('flat_gzip.h5');

/** Posts a bad body and checks status, code, message, rejected record and zero rows. */
async function rejects(body: Uint8Array, status: number, code: string, message: RegExp, app: TestApp = t): Promise<Record<string, unknown>> {
  const p = await post(app, streamName('bad'), body);
  expect(p.status, JSON.stringify(p.body)).toBe(status);
  expect(p.body.code).toBe(code);
  expect(String(p.body.detail)).toMatch(message);
  const id = p.body.ingest_id as string;
  expect(id).toMatch(/^\d+$/);
  const record = await (await app.request(`/v1/ingests/${id}`)).json() as { status: string; error: { code: string; message: string }; rows: number };
  expect(record.status).toBe('rejected');
  expect(record.error.code).toBe(code);
  expect(record.rows).toBe(0);
  expect(await rowsOfIngest(app.db, id)).toBe(0);
  return p.body;
}

describe('not an HDF5 file', () => {
  it('empty body → 400 empty_body', () => rejects(new Uint8Array(0), 400, 'empty_body', /empty/));
  it('garbage → 400 malformed_hdf5', () => rejects(randomBytes(4096), 400, 'malformed_hdf5', /not an HDF5 file/));
  it('a text file → 400 malformed_hdf5', () => rejects(Buffer.from('time,value\n1,2\n'.repeat(100)), 400, 'malformed_hdf5', /not an HDF5 file/));
  it('garbage behind the HDF5 signature → 400 malformed_hdf5', () =>
    rejects(Buffer.concat([SIGNATURE, randomBytes(4096)]), 400, 'malformed_hdf5', /corrupt or truncated/));
  it('zeros behind the HDF5 signature → 400 malformed_hdf5', () =>
    rejects(Buffer.concat([SIGNATURE, Buffer.alloc(4096)]), 400, 'malformed_hdf5', /corrupt or truncated|cannot be opened/));
  it('netCDF-3 classic → 400 malformed_hdf5 saying how to convert it', () =>
    rejects(hdf5('netcdf3_classic.nc'), 400, 'malformed_hdf5', /netCDF-3.*nccopy/));
  it('an Arrow file sent as HDF5 → 415 content_type_mismatch naming the right content type', () =>
    rejects(fixture('arrow/logger_ns_zstd.arrow'), 415, 'content_type_mismatch', /application\/vnd\.apache\.arrow/));
});

describe('truncated files', () => {
  it('cut to 7 bytes → 400 malformed_hdf5', () => rejects(flat.subarray(0, 7), 400, 'malformed_hdf5', /not an HDF5 file/));
  it('cut to 40 bytes (inside the superblock) → 400 malformed_hdf5', () => rejects(flat.subarray(0, 40), 400, 'malformed_hdf5', /corrupt or truncated/));
  for (const n of [1000, Math.floor(flat.length / 2), flat.length - 1]) {
    it(`cut to ${n} of ${flat.length} bytes → 400 truncated_hdf5 with both sizes`, async () => {
      const body = await rejects(flat.subarray(0, n), 400, 'truncated_hdf5', new RegExp(`${n} bytes received.*says ${flat.length}`));
      expect(body.expected).toBe(flat.length);
    });
  }
});

describe('bad data in a valid file', () => {
  it('corrupt chunk (fletcher32 mismatch) → 422 corrupt_data naming the dataset and the chunk rows', () =>
    rejects(hdf5('fletcher32_corrupt.h5'), 422, 'corrupt_data', /dataset \/data\/value, rows 300–399: .*checksum \(fletcher32\)/));
  it('datasets of mismatched lengths → 422 shape_mismatch naming both', () =>
    rejects(hdf5('mismatched_lengths.h5'), 422, 'shape_mismatch', /\/data\/value has 99 rows but the time dataset \/data\/time has 100/));
  it('no time dataset → 422 no_time_column naming the group and its datasets', () =>
    rejects(hdf5('no_time.h5'), 422, 'no_time_column', /group \/data .*current.*value.*no time dataset/));
  it('3-D data beside a 1-D time → 422 unsupported_shape naming the dataset and shape', () =>
    rejects(hdf5('h5py_channels_3d.h5'), 422, 'unsupported_shape', /\/cube has shape \[20, 2, 2\]/));
  it('2-D data with neither axis of the time\'s length → 422 shape_mismatch naming both', () =>
    rejects(hdf5('h5py_channels_mismatch.h5'), 422, 'shape_mismatch', /\/channels has shape \[49, 3\].*50 rows of the time dataset \/time/));
  it('times that do not parse → 422 invalid_timestamp naming the dataset, row and value', () =>
    rejects(hdf5('bad_times.h5'), 422, 'invalid_timestamp', /dataset \/data\/time: time value "not-a-time" at row 5/));
  it('a file that fits no rule → 422 mapping_failed listing what was found and what the rules need', async () => {
    const body = await rejects(hdf5('no_rule.h5'), 422, 'mapping_failed', /\/images\/frame \[4×16×16\] uint16.*\/meta\/notes \[3\] vlen string.*rules need/);
    expect((body.found as { path: string }[]).map((f) => f.path).sort()).toEqual(['/images/frame', '/meta/notes', '/meta/operator']);
  });
});

describe('filters', () => {
  it('a filter Strata has no plugin for (lzo) → 422 missing_filter naming filter and dataset', () =>
    rejects(hdf5('lzo_filter.h5'), 422, 'missing_filter', /dataset \/readings needs the HDF5 filter 'lzo'/));
  it('blosc with zlib (aborts the plugin) → 422 missing_filter before anything is read', () =>
    rejects(hdf5('abort_blosc_zlib.h5'), 422, 'missing_filter', /dataset \/readings is compressed with blosc:zlib/));
});

describe('data in other files is never read', () => {
  it('external link → 422 external_data naming link and target', () =>
    rejects(hdf5('external_link.h5'), 422, 'external_data', /\/data\/value is an external link to "strata_other_upload\.h5"/));
  it('virtual dataset → 422 external_data naming the source file', () =>
    rejects(hdf5('virtual_dataset.h5'), 422, 'external_data', /\/data\/value is a virtual dataset reading "strata_vds_source\.h5"/));
  it('external raw storage (/etc/passwd) → 422 external_data', () =>
    rejects(hdf5('external_storage.h5'), 422, 'external_data', /\/data\/value keeps its data in another file/));
});

describe('size limits (checked from metadata, before reading)', () => {
  it('a file declaring 10^12 rows → 413 body_too_large', () =>
    rejects(hdf5('bomb_rows.h5'), 413, 'body_too_large', /declare 1000000000000 rows.*STRATA_MAX_INFLATED_BYTES/));
  it('a file declaring one 2 GiB chunk → 413 chunk_too_large naming the dataset', () =>
    rejects(hdf5('bomb_chunk.h5'), 413, 'chunk_too_large', /dataset \/data\/(time|value) has chunks of 2147483648 bytes/));
  it('a body over STRATA_MAX_HDF5_BYTES → 413 body_too_large', async () => {
    const small = await createTestApp({ limits: { maxHdf5Bytes: 10_000 } as never });
    try {
      await rejects(flat, 413, 'body_too_large', /limit of 10000 bytes \(STRATA_MAX_HDF5_BYTES\)/, small);
    } finally {
      await small.close();
    }
  });
});

describe('after all of the above', () => {
  it('nothing was stored and no temp file is left behind', async () => {
    expect(await totalStoredRows(t.db)).toBe(0);
    const left = await readdir(t.config.spoolDir).catch(() => [] as string[]);
    expect(left).toEqual([]);
  });

  it('the server still ingests a good file', async () => {
    const p = await post(t, streamName('good'), flat);
    expect(p.status, JSON.stringify(p.body)).toBe(201);
  });
});
