// Every valid HDF5 / netCDF4 fixture is ingested over HTTP with no mapping (auto-detection);
// what PostgreSQL then holds is compared with the row counts, per-field sums, null counts, first
// and last instants and tags that fixtures/hdf5/make.py computed from the arrays it wrote, and
// the ingest record with the file's attributes and the mapping used.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { streamTableOf } from '../helpers/stored.ts';
import {
  NETCDF, type Posted, checkField, checkProvenance, checkTagCounts, checkTime, expected, hdf5, post, streamName,
} from './expected.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

function checkRecord(p: Posted, file: string, layout: string): Record<string, unknown> {
  const e = expected[file];
  expect(p.status, JSON.stringify(p.body)).toBe(201);
  const i = p.body.ingest as Record<string, unknown>;
  expect(i.status).toBe('committed');
  expect(i.format).toBe('hdf5');
  expect(i.rows).toBe(e.rows);
  expect(i.time_min).toBe(e.time.min.iso);
  expect(i.time_max).toBe(e.time.max.iso);
  expect((i.mapping as { layout: string; origin: string }).layout).toBe(layout);
  expect((i.mapping as { origin: string }).origin).toBe('auto');
  const versions = i.versions as Record<string, string>;
  expect(versions.hdf5).toMatch(/^\d+\.\d+\.\d+/);
  expect(versions['h5wasm-plugins']).toMatch(/^\d+\.\d+\.\d+/);
  expect(versions.h5wasm).toMatch(/^\d+\.\d+\.\d+/);
  const meta = i.file_metadata as Record<string, unknown>;
  expect((meta.hdf5 as Record<string, unknown>).library).toBe(versions.hdf5);
  if (e.provenance) checkProvenance(meta, e.provenance);
  return i;
}

const flat = ['flat_gzip.h5', 'flat_lzf.h5', 'lzf_vlen.h5', 'userblock.h5', 'big_endian.h5', 'enum_vlen.h5', 'iso_times.h5', 'builtin_filters.h5'];
const compound = ['compound.h5', 'pytables_zlib.h5', 'pytables_blosc.h5', 'pytables_blosc_lz4.h5', 'pytables_blosc_zstd.h5', 'bzip2_filter.h5'];

describe.each([...flat, ...compound])('%s', (file) => {
  const e = expected[file];
  const stream = streamName(file);
  let p: Posted;
  beforeAll(async () => { p = await post(t, stream, hdf5(file)); });

  it('is recorded with rows, time range, attributes and the mapping used', async () => {
    const i = checkRecord(p, file, e.kind);
    expect(i.sub_microsecond_count).toBe(e.time.sub_microsecond_rows ?? 0);
    const mapping = i.mapping as { fields: { name: string }[]; tags: { name: string }[]; time: { name: string } };
    expect(mapping.fields.map((f) => f.name).sort()).toEqual(Object.keys(e.fields).sort());
    expect(mapping.tags.map((f) => f.name).sort()).toEqual(Object.keys(e.tags).sort());
    const stored = await (await t.request(`/v1/ingests/${i.id}`)).json() as { ingest?: Record<string, unknown> } & Record<string, unknown>;
    expect((stored.ingest ?? stored).mapping).toEqual(i.mapping);
  });

  it('stores every row with exact times, the expected sums, nulls and tags', async () => {
    await checkTime(t, stream, e.rows, e.time);
    for (const [name, f] of Object.entries(e.fields)) await checkField(t, stream, name, f);
    for (const [name, tag] of Object.entries(e.tags)) if (tag.counts) await checkTagCounts(t, stream, name, tag.counts);
  });

  it('declares the stream columns with their units and roles', async () => {
    const s = await (await t.request(`/v1/streams/${stream}`)).json() as { stream?: Record<string, unknown> } & Record<string, unknown>;
    const def = (s.stream ?? s) as { time_column: string; tags: ({ name: string } | string)[]; fields: { name: string; unit: string | null }[] };
    expect(def.time_column).toBe((p.body.ingest as { mapping: { time: { name: string } } }).mapping.time.name);
    for (const [name, f] of Object.entries(e.fields)) {
      const col = def.fields.find((c) => c.name === name);
      expect(col, name).toBeDefined();
      if (f.units) expect(col?.unit).toBe(f.units);
    }
    const tagNames = def.tags.map((x) => (typeof x === 'string' ? x : x.name));
    for (const name of Object.keys(e.tags)) expect(tagNames).toContain(name);
  });
});

describe('nexus_nxlog.h5: two NXlogs of different rates', () => {
  const file = 'nexus_nxlog.h5';
  const e = expected[file];
  const stream = streamName(file);
  let p: Posted;
  beforeAll(async () => { p = await post(t, stream, hdf5(file)); });

  it('records both series, start times with their +01:00 offset applied', () => {
    const i = p.body.ingest as Record<string, unknown>;
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    expect(i.rows).toBe(e.rows);
    const series = e.series ?? [];
    const first = series.map((s) => s.time.min.us).sort()[0];
    const last = series.map((s) => s.time.max.us).sort().at(-1);
    expect(i.time_min).toBe(series.find((s) => s.time.min.us === first)?.time.min.iso);
    expect(i.time_max).toBe(series.find((s) => s.time.max.us === last)?.time.max.iso);
    const mapping = i.mapping as { layout: string; fields: { source: string; name: string; time: { epoch: string; scale?: number } }[] };
    expect(mapping.layout).toBe('nxlog');
    expect(mapping.fields.map((f) => f.name).sort()).toEqual(['pressure', 'temperature']);
    expect(mapping.fields.find((f) => f.name === 'temperature')?.time.epoch).toBe('2024-03-01T09:00:00.000000Z');
    expect(mapping.fields.find((f) => f.name === 'pressure')?.time.scale).toBe(0.001);
    checkProvenance(i.file_metadata as Record<string, unknown>, e.provenance ?? {});
  });

  it('stores each NXlog as its own rows, the other field NULL', async () => {
    for (const s of e.series ?? []) {
      const name = s.group.split('/').pop() as string;
      const { col } = await streamTableOf(t.db, stream);
      const where = `${col(name)} IS NOT NULL`;
      await checkTime(t, stream, s.rows, s.time, where);
      await checkField(t, stream, name, s.fields.value, where);
      const other = name === 'pressure' ? 'temperature' : 'pressure';
      await checkField(t, stream, other, { dtype: 'null', count: 0, nulls: s.rows, sum: 0 }, where, other);
    }
  });
});

describe('cf_timeseries.nc: CF timeSeries with _FillValue, missing_value and a packed int16', () => {
  const file = 'cf_timeseries.nc';
  const e = expected[file];
  const stream = streamName(file);
  let p: Posted;
  beforeAll(async () => { p = await post(t, stream, hdf5(file), { type: NETCDF }); });

  it('is recorded, with the station name tag and the skipped helper datasets', () => {
    const i = checkRecord(p, file, 'cf_timeseries');
    const mapping = i.mapping as { tags: { name: string }[]; fields: { name: string }[] };
    expect(mapping.tags.map((x) => x.name)).toEqual(['station_name']);
    expect(mapping.fields.map((x) => x.name).sort()).toEqual(['humidity', 'temperature', 'wind_speed']);
    const meta = i.file_metadata as { datasets: Record<string, number> };
    expect(meta.datasets['/lat']).toBeTypeOf('number');
  });

  it('stores NULL for fill and missing values and unpacks scale_factor/add_offset', async () => {
    await checkTime(t, stream, e.rows, e.time);
    for (const [name, f] of Object.entries(e.fields)) await checkField(t, stream, name, f);
    const value = e.tags.station_name.value as string;
    await checkTagCounts(t, stream, 'station_name', { [value]: e.rows });
  });
});

describe('cf_station_time.nc: station × time with a cf_role=timeseries_id tag', () => {
  const file = 'cf_station_time.nc';
  const e = expected[file];
  const stream = streamName(file);
  let p: Posted;
  beforeAll(async () => { p = await post(t, stream, hdf5(file), { type: NETCDF }); });

  it('stores one row per station and time, tagged with the station id', async () => {
    checkRecord(p, file, 'cf_timeseries');
    await checkTime(t, stream, e.rows, e.time);
    await checkField(t, stream, 'temperature', e.fields.temperature);
    await checkTagCounts(t, stream, 'station_id', e.tags.station_id.counts as Record<string, number>);
    const { col } = await streamTableOf(t.db, stream);
    for (const [station, f] of Object.entries(e.fields.temperature.per_station ?? {})) {
      await checkField(t, stream, 'temperature', { dtype: 'float32', ...f }, `${col('station_id')} = '${station}'`);
    }
  });
});

describe('empty_rows.h5: a valid layout with zero rows', () => {
  it('is committed with 0 rows', async () => {
    const p = await post(t, streamName('empty'), hdf5('empty_rows.h5'));
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    expect((p.body.ingest as { rows: number }).rows).toBe(0);
  });
});

describe('transport', () => {
  it('accepts a gzip Content-Encoding body (the decoded file is read)', async () => {
    const { gzipSync } = await import('node:zlib');
    const stream = streamName('gzip');
    const p = await post(t, stream, gzipSync(hdf5('flat_gzip.h5')), { headers: { 'content-encoding': 'gzip' } });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    await checkTime(t, stream, expected['flat_gzip.h5'].rows, expected['flat_gzip.h5'].time);
  });

  it('reads big files in several slices with the same result (small batch budget)', async () => {
    const small = await createTestApp({ limits: { maxBatchBytes: 4096 } as never });
    try {
      const stream = streamName('sliced');
      const p = await post(small, stream, hdf5('flat_gzip.h5'));
      expect(p.status, JSON.stringify(p.body)).toBe(201);
      const e = expected['flat_gzip.h5'];
      await checkTime(small, stream, e.rows, e.time);
      for (const [name, f] of Object.entries(e.fields)) await checkField(small, stream, name, f);
    } finally {
      await small.close();
    }
  });
});
