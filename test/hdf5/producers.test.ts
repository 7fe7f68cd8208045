// Files as h5py, PyTables, pandas, xarray and netCDF4-python users write them (fixtures/hdf5/
// producers.py), ingested with no mapping: epoch numbers without units (unit inferred by
// magnitude, or from the name), relative time with a start attribute, NaN kept beside fill values
// and valid ranges, pandas to_hdf fixed and table layouts, xarray's own time encoding, CF
// calendars. What PostgreSQL holds is compared with the generator's own sums, NaN and NULL counts
// and exact time checksums; every refusal leaves a rejected record and no rows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { rowsOfIngest, storedRowCount } from '../helpers/stored.ts';
import { NETCDF, type Posted, checkField, checkTagCounts, checkTime, expected, hdf5, post, streamName } from './expected.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

interface TimeReport { unit?: string; name: string; inferred?: { unit_from: string; epoch_from: string; start_attribute?: string; also_fits?: string[] } }
interface ColumnReport { name: string; null_when?: Record<string, unknown> }
interface MappingReport { layout: string; time: TimeReport; fields: ColumnReport[]; tags: ColumnReport[]; split?: { source: string; columns: string[]; names_from: string }[] }

const valid = [
  'h5py_epoch_s.h5', 'h5py_epoch_ms.h5', 'h5py_epoch_ns.h5', 'h5py_named_units.h5', 'h5py_compound_t_us.h5', 'h5py_relative_start.h5',
  'h5py_fill_valid.h5', 'pytables_epoch_s.h5', 'pytables_epoch_ms.h5', 'pandas_fixed.h5', 'pandas_fixed_time_column.h5', 'pandas_table_dc.h5',
  'pandas_table.h5', 'pandas_table_time_column.h5', 'pandas_table_names.h5',
  'h5py_channels_named.h5', 'h5py_channels_unnamed.h5', 'h5py_channels_by_row.h5',
  'xarray_multi.nc', 'xarray_ns.nc', 'xarray_station_grid.nc', 'netcdf4_days_since.nc', 'netcdf4_time_dim_no_coord.nc', 'netcdf4_unwritten.nc',
];

const typeOf = (file: string): string => (file.endsWith('.nc') ? NETCDF : 'application/x-hdf5');

describe.each(valid)('%s', (file) => {
  const e = expected[file];
  const stream = streamName(file);
  let p: Posted;
  beforeAll(async () => { p = await post(t, stream, hdf5(file), { type: typeOf(file) }); });

  it('is committed with its rows, time range and the mapping used', () => {
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const i = p.body.ingest as Record<string, unknown>;
    expect(i.rows).toBe(e.rows);
    expect(i.time_min).toBe(e.time.min.iso);
    expect(i.time_max).toBe(e.time.max.iso);
    expect(i.sub_microsecond_count).toBe(e.time.sub_microsecond_rows ?? 0);
    const m = i.mapping as MappingReport;
    expect(m.layout).toBe(e.kind);
    if (e.time_name) expect(m.time.name).toBe(e.time_name);
    expect(m.fields.map((f) => f.name).sort()).toEqual(Object.keys(e.fields).sort());
    expect(m.tags.map((f) => f.name).sort()).toEqual(Object.keys(e.tags).sort());
    // pandas tables without data_columns: each values_block_<i> split into its named columns
    // and 2-D channels[n×k] beside a 1-D time, one field per column, named from an attribute
    expect((m.split ?? []).map((s) => s.source)).toEqual((e.split as string[] | undefined) ?? []);
    if (e.split_names_from) expect(m.split?.[0].names_from).toBe(e.split_names_from);
  });

  it('reports how a time without declared units was read', () => {
    const m = (p.body.ingest as { mapping: MappingReport; warnings: string[] }).mapping;
    const want = e.time_inference as { unit: string; unit_from: string; epoch_from: string; start_attribute?: string; also_fits?: string[] } | undefined;
    if (!want) {
      expect(m.time.inferred).toBeUndefined();
      return;
    }
    expect(m.time.unit).toBe(want.unit);
    expect(m.time.inferred).toMatchObject({ unit_from: want.unit_from, epoch_from: want.epoch_from });
    if (want.start_attribute) expect(m.time.inferred?.start_attribute).toBe(want.start_attribute);
    if (want.also_fits) expect(m.time.inferred?.also_fits).toEqual(want.also_fits);
    if (want.unit_from === 'magnitude' || want.unit_from === 'assumed') {
      expect((p.body.ingest as { warnings: string[] }).warnings.join('\n')).toMatch(/declares no unit|no "since" units/);
    }
  });

  it('reports which values became NULL and by which rule', () => {
    const m = (p.body.ingest as { mapping: MappingReport }).mapping;
    const want = (e.null_when ?? {}) as Record<string, Record<string, unknown>>;
    for (const f of m.fields) {
      if (want[f.name]) expect(f.null_when, f.name).toEqual(want[f.name]);
    }
  });

  it('stores exact times, NaN as NaN, NULL only where the file says, and the tags', async () => {
    await checkTime(t, stream, e.rows, e.time);
    for (const [name, f] of Object.entries(e.fields)) await checkField(t, stream, name, f);
    for (const [name, tag] of Object.entries(e.tags)) if (tag.counts) await checkTagCounts(t, stream, name, tag.counts);
  });
});

const refused = ['h5py_time_no_unit.h5', 'pandas_table_hostile_pickle.h5', 'h5py_channels_mismatch.h5', 'h5py_channels_3d.h5', 'pandas_fixed_strings.h5', 'netcdf4_noleap.nc'];

describe.each(refused)('%s is refused', (file) => {
  const e = expected[file];
  const want = e.expect_error as { status: number; code: string; message_includes: string[] };

  it(`with ${want.status} ${want.code}, a rejected record and no rows`, async () => {
    const stream = streamName(file);
    const p = await post(t, stream, hdf5(file), { type: typeOf(file) });
    expect(p.status, JSON.stringify(p.body)).toBe(want.status);
    expect(p.body.code).toBe(want.code);
    for (const part of want.message_includes) expect(String(p.body.detail)).toContain(part);
    const record = await (await t.request(`/v1/ingests/${p.body.ingest_id}`)).json() as { status: string; error: { code: string }; rows: number };
    expect(record.status).toBe('rejected');
    expect(record.error.code).toBe(want.code);
    expect(record.rows).toBe(0);
    expect(await rowsOfIngest(t.db, p.body.ingest_id as string)).toBe(0);
    expect(await storedRowCount(t.db, stream).catch(() => 0)).toBe(0);
  });
});

describe('?time_unit=', () => {
  it('reads numbers no window fits in the unit given', async () => {
    const file = 'h5py_time_no_unit.h5';
    const q = expected[file].with_query as { query: string; time: Parameters<typeof checkTime>[3] };
    const stream = streamName('time-unit');
    const p = await post(t, stream, hdf5(file), { query: q.query });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const m = (p.body.ingest as { mapping: MappingReport }).mapping;
    expect(m.time).toMatchObject({ unit: 's', inferred: { unit_from: 'request', epoch_from: 'unix', outside_window: true } });
    expect((p.body.ingest as { warnings: string[] }).warnings.join('\n')).toMatch(/fall outside 1970-01-02 … 2200-01-01/);
    await checkTime(t, stream, expected[file].rows, q.time);
  });

  it('overrides the magnitude rule (epoch seconds read as milliseconds land in 1970)', async () => {
    const stream = streamName('time-unit-ms');
    const p = await post(t, stream, hdf5('h5py_epoch_s.h5'), { query: '?time_unit=ms' });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    expect((p.body.ingest as { time_min: string }).time_min).toMatch(/^1970-01-20T/);
  });

  it('that is not a unit → 400 invalid_request', async () => {
    const p = await post(t, streamName('time-unit-bad'), hdf5('h5py_epoch_s.h5'), { query: '?time_unit=fortnights' });
    expect(p.status).toBe(400);
    expect(p.body.code).toBe('invalid_request');
  });
});

describe("a mapping's null_values", () => {
  it('makes exactly those values NULL, and is reported', async () => {
    const file = 'h5py_epoch_s.h5';
    const stream = streamName('null-values');
    const mapping = { layout: 'flat_group', group: '/', fields: [{ source: 'status', null_values: [0] }, 'temp'], null_values: ['NaN'] };
    const p = await post(t, stream, hdf5(file), { query: `?mapping=${encodeURIComponent(JSON.stringify(mapping))}` });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const fields = (p.body.ingest as { mapping: MappingReport }).mapping.fields;
    expect(fields.find((f) => f.name === 'temp')?.null_when).toEqual({ from: ['mapping null_values'], values: ['NaN'] });
    expect(fields.find((f) => f.name === 'status')?.null_when).toEqual({ from: ['mapping null_values'], values: ['NaN', 0] });
    const e = expected[file].fields;
    await checkField(t, stream, 'temp', { ...e.temp, nans: 0, nulls: e.temp.nans ?? 0, count: e.temp.count - (e.temp.nans ?? 0) });
  });
});

describe("h5py's LZF on variable-length strings (written without filter parameters)", () => {
  it('is read by Strata\'s own LZF filter: every row and tag, including chunks written late', async () => {
    const file = 'lzf_vlen_late.h5';
    const e = expected[file];
    const stream = streamName(file);
    const p = await post(t, stream, hdf5(file));
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    await checkTime(t, stream, e.rows, e.time);
    const first = e.first_written_row as number;
    const late = Object.fromEntries(Array.from({ length: e.rows - first }, (_, i) => [`late-${i}`, 1]));
    await checkTagCounts(t, stream, 'run', { '': first, ...late });
  });
});

describe('2-D channels without names', () => {
  it('a [100, 3] dataset beside a 1-D time becomes <name>_0 … <name>_2, reported in mapping_used.split', async () => {
    const p = await post(t, streamName('two-d-split'), hdf5('two_d.h5'));
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const m = (p.body.ingest as { mapping: MappingReport }).mapping;
    expect(m.fields.map((f) => f.name)).toEqual(['spectrum_0', 'spectrum_1', 'spectrum_2', 'value']);
    expect(m.split).toEqual([{ source: 'spectrum', columns: ['spectrum_0', 'spectrum_1', 'spectrum_2'], names_from: expect.stringMatching(/^generated/) }]);
  });
});
