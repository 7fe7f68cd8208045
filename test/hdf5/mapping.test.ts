// Explicit HDF5 mappings: given per request (?mapping=) or stored on the stream (hdf5_mapping),
// validated by schemas/hdf5-mapping.schema.json, reported back as the mapping used; and the
// errors of a mapping that is malformed or does not fit the file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { rowsOfIngest, storedRowCount } from '../helpers/stored.ts';
import { checkField, checkTagCounts, checkTime, expected, hdf5, post, streamName } from './expected.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

const q = (m: unknown): string => `?mapping=${encodeURIComponent(JSON.stringify(m))}`;

async function streamDef(name: string): Promise<{ fields: { name: string; unit: string | null }[]; tags: { name: string }[]; hdf5_mapping: unknown; time_column: string }> {
  return await (await t.request(`/v1/streams/${name}`)).json() as never;
}

async function expectRejected(p: Awaited<ReturnType<typeof post>>, status: number, code: string, message: RegExp): Promise<void> {
  expect(p.status, JSON.stringify(p.body)).toBe(status);
  expect(p.body.code).toBe(code);
  expect(String(p.body.detail)).toMatch(message);
  const record = await (await t.request(`/v1/ingests/${p.body.ingest_id}`)).json() as { status: string; error: { code: string } };
  expect(record.status).toBe('rejected');
  expect(record.error.code).toBe(code);
  expect(await rowsOfIngest(t.db, p.body.ingest_id as string)).toBe(0);
}

describe('a mapping in the request', () => {
  it('takes only the listed fields, under the names it gives', async () => {
    const stream = streamName('subset');
    const mapping = { layout: 'flat_group', group: '/data', fields: ['temp_c', { source: 'pressure', name: 'p_hpa', unit: 'hPa (abs)' }] };
    const p = await post(t, stream, hdf5('flat_gzip.h5'), { query: q(mapping) });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const used = (p.body.ingest as { mapping: Record<string, unknown> }).mapping;
    expect(used).toMatchObject({
      origin: 'request', layout: 'flat_group', group: '/data',
      time: { source: 'time', name: 'time', encoding: 'number', unit: 's', epoch: '2024-03-01T00:00:00.000000Z' },
      fields: [{ source: 'temp_c', name: 'temp_c', unit: 'degC' }, { source: 'pressure', name: 'p_hpa', unit: 'hPa (abs)' }],
      tags: [],
    });
    const def = await streamDef(stream);
    expect(def.fields.map((f) => f.name).sort()).toEqual(['p_hpa', 'temp_c']);
    expect(def.fields.find((f) => f.name === 'p_hpa')?.unit).toBe('hPa (abs)');
    const e = expected['flat_gzip.h5'];
    await checkField(t, stream, 'p_hpa', e.fields.pressure);
    await checkField(t, stream, 'temp_c', e.fields.temp_c);
  });

  it('names a time dataset the rules would not find, with its unit and epoch', async () => {
    const stream = streamName('explicit-time');
    const mapping = { layout: 'flat_group', group: '/data', time: { source: 'current', name: 'when', unit: 'h', epoch: '2024-01-01T00:00:00+02:00' } };
    const p = await post(t, stream, hdf5('no_time.h5'), { query: q(mapping) });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const i = p.body.ingest as { rows: number; time_min: string; time_max: string };
    expect(i.rows).toBe(50);
    // current runs from 1 to 2: one to two hours after 2023-12-31T22:00Z
    expect(i.time_min).toBe('2023-12-31T23:00:00.000000Z');
    expect(i.time_max).toBe('2024-01-01T00:00:00.000000Z');
    expect((await streamDef(stream)).time_column).toBe('when');
  });

  it('leaves out a 2-D dataset that auto-detection refuses', async () => {
    const p = await post(t, streamName('two-d'), hdf5('two_d.h5'), { query: q({ layout: 'flat_group', group: '/data', fields: ['value'] }) });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    expect((p.body.ingest as { rows: number }).rows).toBe(100);
  });

  it('makes a string member a text field instead of a tag', async () => {
    const stream = streamName('text-field');
    const p = await post(t, stream, hdf5('compound.h5'), { query: q({ layout: 'compound', dataset: '/readings', fields: ['value', 'sample'], tags: [] }) });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const def = await streamDef(stream);
    expect(def.tags).toEqual([]);
    expect(def.fields.map((f) => f.name).sort()).toEqual(['sample', 'value']);
    await checkTagCounts(t, stream, 'sample', expected['compound.h5'].tags.sample.counts as Record<string, number>);
  });

  it('reads one NXlog of several', async () => {
    const stream = streamName('one-nxlog');
    const p = await post(t, stream, hdf5('nexus_nxlog.h5'), { query: q({ layout: 'nxlog', fields: [{ source: '/entry/instrument/pressure', name: 'p' }] }) });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const series = expected['nexus_nxlog.h5'].series?.find((s) => s.group.endsWith('pressure'));
    await checkTime(t, stream, series?.rows as number, series?.time as never);
    await checkField(t, stream, 'p', series?.fields.value as never);
  });

  it('reads the listed CF variables only', async () => {
    const stream = streamName('cf-one');
    const p = await post(t, stream, hdf5('cf_timeseries.nc'), { query: q({ layout: 'cf_timeseries', fields: ['humidity'] }) });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const def = await streamDef(stream);
    expect(def.fields.map((f) => f.name)).toEqual(['humidity']);
    expect(def.tags.map((x) => x.name)).toEqual(['station_name']);
    await checkField(t, stream, 'humidity', expected['cf_timeseries.nc'].fields.humidity);
  });
});

describe('a mapping stored on the stream', () => {
  it('is used for every upload to it and shown with the stream', async () => {
    const name = streamName('stored');
    const mapping = { layout: 'flat_group', group: '/data', fields: ['temp_c'] };
    const created = await t.request('/v1/streams', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, hdf5_mapping: mapping }) });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await streamDef(name)).hdf5_mapping).toEqual(mapping);
    const p = await post(t, name, hdf5('flat_gzip.h5'));
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    expect((p.body.ingest as { mapping: { origin: string; fields: unknown[] } }).mapping).toMatchObject({ origin: 'stream', fields: [{ source: 'temp_c' }] });
    expect((await streamDef(name)).fields.map((f) => f.name)).toEqual(['temp_c']);
  });

  it('is overridden by a mapping in the request, and can be changed with PATCH', async () => {
    const name = streamName('patched');
    await t.request('/v1/streams', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, hdf5_mapping: { layout: 'compound', dataset: '/nope' } }) });
    const p = await post(t, name, hdf5('flat_gzip.h5'), { query: q({ layout: 'flat_group', group: '/data', fields: ['pressure'] }) });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    expect((p.body.ingest as { mapping: { origin: string } }).mapping.origin).toBe('request');
    const patched = await t.request(`/v1/streams/${name}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ hdf5_mapping: { layout: 'flat_group', group: '/data', fields: ['counter'] } }) });
    expect(patched.status, await patched.clone().text()).toBe(200);
    const p2 = await post(t, name, hdf5('flat_lzf.h5'));
    expect(p2.status, JSON.stringify(p2.body)).toBe(201);
    expect((p2.body.ingest as { mapping: { origin: string; fields: { source: string }[] } }).mapping.fields.map((f) => f.source)).toEqual(['counter']);
  });

  it('is refused when it does not match the schema', async () => {
    const res = await t.request('/v1/streams', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: streamName('bad-setting'), hdf5_mapping: { layout: 'flat_group' } }) });
    expect(res.status).toBe(400);
    const body = await res.json() as { code: string; detail: string };
    expect(body.code).toBe('invalid_mapping');
    expect(body.detail).toMatch(/hdf5_mapping is invalid/);
  });
});

describe('a mapping that is malformed or does not fit', () => {
  it('not JSON → 400 invalid_mapping, rejected', async () => {
    await expectRejected(await post(t, streamName('m1'), hdf5('flat_gzip.h5'), { query: '?mapping=%7Bnope' }), 400, 'invalid_mapping', /not JSON/);
  });
  it('an unknown layout → 400 invalid_mapping naming the property', async () => {
    await expectRejected(await post(t, streamName('m2'), hdf5('flat_gzip.h5'), { query: q({ layout: 'tree' }) }), 400, 'invalid_mapping', /\/layout.*one of/);
  });
  it('a group that does not exist → 422 mapping_failed', async () => {
    await expectRejected(await post(t, streamName('m3'), hdf5('flat_gzip.h5'), { query: q({ layout: 'flat_group', group: '/nope' }) }), 422, 'mapping_failed', /group \/nope does not exist/);
  });
  it('a compound layout on a plain dataset → 422 mapping_failed', async () => {
    await expectRejected(await post(t, streamName('m4'), hdf5('flat_gzip.h5'), { query: q({ layout: 'compound', dataset: '/data/temp_c' }) }), 422, 'mapping_failed', /not a compound/);
  });
  it('a field that is not there → 422 mapping_failed listing what is', async () => {
    await expectRejected(await post(t, streamName('m5'), hdf5('flat_gzip.h5'), { query: q({ layout: 'flat_group', group: '/data', fields: ['humidity'] }) }), 422, 'mapping_failed', /\/data\/humidity is not a dataset.*temp_c/);
  });
  it('a number as a tag → 422 mapping_failed', async () => {
    await expectRejected(await post(t, streamName('m6'), hdf5('flat_gzip.h5'), { query: q({ layout: 'flat_group', group: '/data', tags: ['counter'] }) }), 422, 'mapping_failed', /cannot be a tag/);
  });
  it('numeric times read as ISO strings → 422 mapping_failed', async () => {
    await expectRejected(await post(t, streamName('m7'), hdf5('flat_gzip.h5'), { query: q({ layout: 'flat_group', group: '/data', time: { encoding: 'iso8601' } }) }), 422, 'mapping_failed', /holds numbers/);
  });
  it('nothing of a rejected mapping is stored', async () => {
    expect(await storedRowCount(t.db, 'never-created')).toBe(0);
  });
});
