// Provenance: a value read through the query endpoint is traced to the ingest that stored it, whose
// original is served byte for byte with a SHA-256 that matches the record; a rollup bucket is traced
// to the ingests it aggregates; the full record, the list filters and the PROV-JSON export carry
// what DESIGN.md lists; an archived original that was damaged or lost is reported, never served.
import { createHash } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { T0 } from '../helpers/polars.ts';
import { type Uploaded, committed, json, upload } from '../helpers/uploads.ts';
import { createLogger } from '../../src/logging/logger.ts';

const MIN = 60_000_000n;
let t: TestApp;
let instrumentKey: string;
let a: Uploaded & { id: string };
let b: Uploaded & { id: string };
const provenance = { operator: 'Dr. Ada Lovelace', instrument: 'rig-7', experiment: 'exp-42', serial_number: 'SN-0007' };

beforeAll(async () => {
  t = await createTestApp();
  instrumentKey = await t.key('instrument');
  // Rollup levels for the stream: through the API where a rollups module understands them,
  // otherwise written as the stream's setting.
  const made = await t.request('/v1/streams', json({ method: 'POST', body: { name: 'lab', tags: ['sample'], fields: [{ name: 'value', type: 'float8' }], rollups: ['1m', '1h'] } }));
  if (made.status !== 201) {
    expect((await made.json() as { detail: string }).detail).toContain('not supported by this server');
    expect((await t.request('/v1/streams', json({ method: 'POST', body: { name: 'lab', tags: ['sample'], fields: [{ name: 'value', type: 'float8' }] } }))).status).toBe(201);
    await t.db.pool.query(`UPDATE strata.streams SET settings = settings || '{"rollups": ["1h", "1m"]}' WHERE name = 'lab'`);
  }
  a = await committed(t, 'lab', {
    n: 60, stepUs: MIN, sample: 'S-1', key: instrumentKey,
    headers: { 'strata-provenance': JSON.stringify(provenance), 'content-disposition': `attachment; filename*=UTF-8''run%2001%20%E2%80%94%20%22A%22.arrows` },
  });
  // Same instants, another sample, another upload.
  b = await committed(t, 'lab', { n: 60, stepUs: MIN, sample: 'S-2' });
});
afterAll(async () => { await t.close(); });

describe('tracing a value', () => {
  it('traces a value read through the query endpoint to its ingest, whose original matches its SHA-256', async () => {
    const q = await (await t.request('/v1/streams/lab/query?tag.sample=S-1&from=2024-03-01T00:10:00Z&to=2024-03-01T00:11:00Z')).json() as { rows: unknown[][]; columns: { name: string }[] };
    expect(q.rows.length).toBe(1);
    const [time, , value] = q.rows[0] as [string, string, number];
    expect(time).toBe('2024-03-01T00:10:00.000000Z');

    const trace = await (await t.request(`/v1/streams/lab/provenance?time=${encodeURIComponent(time)}&tag.sample=S-1`)).json() as {
      ingests: { id: string; sha256: string; rows_matched: number; instrument: string }[]; readings: { ingest_id: string; fields: { value: number } }[];
      resolution: string;
    };
    expect(trace.resolution).toBe('raw');
    expect(trace.ingests.map((i) => i.id)).toEqual([a.id]);
    expect(trace.ingests[0]).toMatchObject({ rows_matched: 1, instrument: 'rig-7', sha256: a.sha256 });
    expect(trace.readings).toEqual([expect.objectContaining({ ingest_id: a.id, fields: { value } })]);

    const original = await t.request(`/v1/ingests/${a.id}/original`);
    expect(original.status).toBe(200);
    const bytes = Buffer.from(await original.arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(trace.ingests[0].sha256);
    expect(bytes.equals(a.bytes)).toBe(true);
    expect(original.headers.get('content-type')).toBe('application/vnd.apache.arrow.stream');
    expect(original.headers.get('x-strata-sha256')).toBe(a.sha256);
    expect(original.headers.get('content-length')).toBe(String(a.bytes.length));
    expect(original.headers.get('content-disposition')).toBe(
      `attachment; filename="ingest-${a.id}.arrows"; filename*=UTF-8''run%2001%20%E2%80%94%20%22A%22.arrows`);
  });

  it('without a tag filter, lists every ingest with a row at that instant', async () => {
    const trace = await (await t.request('/v1/streams/lab/provenance?time=2024-03-01T00:10:00Z')).json() as { ingests: { id: string }[]; readings: unknown[] };
    expect(trace.ingests.map((i) => i.id).sort()).toEqual([a.id, b.id].sort());
    expect(trace.readings.length).toBe(2);
    const none = await (await t.request('/v1/streams/lab/provenance?time=2024-03-01T00:10:00.000001Z')).json() as { ingests: unknown[] };
    expect(none.ingests).toEqual([]);
  });

  it('traces a rollup bucket to the ingests it aggregates', async () => {
    const hour = await (await t.request('/v1/streams/lab/provenance?time=2024-03-01T00:10:00Z&resolution=1h')).json() as {
      range: { from: string; to: string }; ingests: { id: string; rows_matched: number }[];
    };
    expect(hour.range).toEqual({ from: '2024-03-01T00:00:00.000000Z', to: '2024-03-01T01:00:00.000000Z' });
    expect(hour.ingests.map((i) => [i.id, i.rows_matched]).sort()).toEqual([[a.id, 60], [b.id, 60]].sort());
    const minute = await (await t.request('/v1/streams/lab/provenance?time=2024-03-01T00:10:30Z&resolution=1m&tag.sample=S-2')).json() as { ingests: { id: string; rows_matched: number }[] };
    expect(minute.ingests).toEqual([expect.objectContaining({ id: b.id, rows_matched: 1 })]);
  });

  it('refuses a missing or malformed time, an unknown tag and an unknown resolution', async () => {
    for (const [query, text] of [['', 'time is required'], ['?time=yesterday', 'RFC 3339'], ['?time=1709251200', 'RFC 3339'],
      ['?time=2024-03-01T00:00:00Z&tag.nope=1', 'no tag'], ['?time=2024-03-01T00:00:00Z&resolution=1month', 'resolution'],
      ['?time=2024-03-01T00:00:00Z&resolution=400d', 'resolution']]) {
      const res = await t.request(`/v1/streams/lab/provenance${query}`);
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as { detail: string }).detail, query).toContain(text);
    }
    expect((await t.request('/v1/streams/nosuch/provenance?time=2024-03-01T00:00:00Z')).status).toBe(404);
  });
});

describe('ingest records', () => {
  it('shows the full record: every field DESIGN.md lists, the key, and its audit entries', async () => {
    const r = await (await t.request(`/v1/ingests/${a.id}`)).json() as Record<string, unknown> & { audit: { action: string; hash: string; details: Record<string, unknown> }[] };
    expect(r).toMatchObject({
      id: a.id, stream: 'lab', status: 'committed', instrument: 'rig-7', format: 'arrow-stream', bytes: a.bytes.length, sha256: a.sha256,
      rows: 60, time_min: '2024-03-01T00:00:00.000000Z', time_max: '2024-03-01T00:59:00.000000Z', filename: 'run 01 — "A".arrows',
      provenance, mapping: null, archived: true, retraction: null, error: null,
      key: { role: 'instrument', name: 'test instrument' },
    });
    for (const f of ['received_at', 'committed_at', 'content_type', 'file_metadata', 'versions', 'chunks', 'sub_microsecond_count']) expect(r, f).toHaveProperty(f);
    expect(Object.keys(r.versions as object)).toEqual(expect.arrayContaining(['strata', 'node', 'apache-arrow', 'postgresql']));
    expect((r.file_metadata as { arrow_schema: { name: string }[] }).arrow_schema.map((c) => c.name)).toEqual(['time', 'sample', 'value']);
    expect(r.audit.map((e) => e.action)).toEqual(['ingest.commit']);
    expect(r.audit[0].details).toMatchObject({ ingest_id: a.id, sha256: a.sha256, rows: 60 });
  });

  it('answers an upload with that same full record: a receipt naming its audit entry and hash', async () => {
    const r = await committed(t, 'receipts');
    const receipt = r.body.ingest as unknown as { audit: { action: string; seq: number; hash: string }[] };
    expect(receipt.audit.map((e) => e.action)).toEqual(['ingest.commit']);
    expect(receipt.audit[0].hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await (await t.request(`/v1/ingests/${r.id}`)).json()).toEqual(r.body.ingest);
  });

  it('filters the list by stream, time overlap, status and instrument', async () => {
    const rejected = await upload(t, 'lab', { headers: { 'strata-provenance': '{"instrument": 7}' } });
    expect(rejected.status).toBe(400);
    const ids = async (query: string): Promise<string[]> =>
      ((await (await t.request(`/v1/ingests${query}`)).json()) as { ingests: { id: string }[] }).ingests.map((i) => i.id).sort();
    expect(await ids('?stream=lab&status=committed')).toEqual([a.id, b.id].sort());
    expect(await ids('?stream=lab&instrument=rig-7')).toEqual([a.id]);
    expect(await ids('?stream=lab&from=2024-03-01T00:30:00Z&to=2024-03-01T00:31:00Z')).toEqual([a.id, b.id].sort());
    expect(await ids('?stream=lab&from=2024-03-01T01:00:00Z')).toEqual([]);
    expect((await ids('?stream=lab&status=rejected')).length).toBe(1);
    expect(await ids('?stream=other')).toEqual([]);
    for (const bad of ['?status=deleted', '?from=soon', '?limit=0', '?after=x', '?from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z']) {
      expect((await t.request(`/v1/ingests${bad}`)).status, bad).toBe(400);
    }
    expect((await t.request('/v1/ingests/999999999')).status).toBe(404);
    expect((await t.request('/v1/ingests/not-a-number')).status).toBe(404);
  });
});

describe('PROV-JSON', () => {
  it('exports the file, the ingest, its rows, the agents and the rollup levels derived from the rows', async () => {
    const res = await t.request(`/v1/ingests/${a.id}/prov`);
    expect(res.status).toBe(200);
    const doc = await res.json() as Record<string, Record<string, Record<string, unknown>>>;
    const file = `strata:file/sha256/${a.sha256}`;
    const activity = `strata:ingest/${a.id}`;
    const rows = `${activity}/rows`;
    expect(doc.prefix.prov).toBe('http://www.w3.org/ns/prov#');
    expect(doc.entity[file]).toMatchObject({ 'strata:sha256': a.sha256, 'prov:label': 'run 01 — "A".arrows' });
    expect(doc.entity[rows]).toMatchObject({ 'strata:stream': 'lab', 'strata:rows': { $: '60', type: 'xsd:long' } });
    expect(doc.activity[activity]).toMatchObject({ 'strata:status': 'committed', 'strata:format': 'arrow-stream' });
    const agents = Object.entries(doc.agent).map(([id, v]) => [id, v['prov:label']]);
    expect(agents).toEqual(expect.arrayContaining([['strata:instrument/rig-7', 'rig-7'], ['strata:operator/Dr.%20Ada%20Lovelace', 'Dr. Ada Lovelace']]));
    expect(Object.keys(doc.agent).some((id) => /^strata:key\/\d+$/.test(id))).toBe(true);
    const rel = (kind: string): Record<string, unknown>[] => Object.values(doc[kind] ?? {});
    expect(rel('used')).toContainEqual({ 'prov:activity': activity, 'prov:entity': file });
    expect(rel('wasGeneratedBy')).toContainEqual(expect.objectContaining({ 'prov:entity': rows, 'prov:activity': activity }));
    expect(rel('wasDerivedFrom')).toContainEqual({ 'prov:generatedEntity': rows, 'prov:usedEntity': file, 'prov:activity': activity });
    expect(rel('wasAttributedTo')).toContainEqual({ 'prov:entity': file, 'prov:agent': 'strata:instrument/rig-7' });
    expect(rel('wasAssociatedWith')).toContainEqual({ 'prov:activity': activity, 'prov:agent': 'strata:operator/Dr.%20Ada%20Lovelace' });
    // Rollups are hierarchical: 1m from the raw rows, 1h from 1m.
    const m1 = `${activity}/rollup/1m`;
    const h1 = `${activity}/rollup/1h`;
    expect(doc.entity[h1]).toMatchObject({ 'strata:level': '1h', 'strata:bucketsFrom': { $: '2024-03-01T00:00:00.000000Z' }, 'strata:bucketsTo': { $: '2024-03-01T01:00:00.000000Z' } });
    expect(rel('wasDerivedFrom')).toContainEqual({ 'prov:generatedEntity': m1, 'prov:usedEntity': rows });
    expect(rel('wasDerivedFrom')).toContainEqual({ 'prov:generatedEntity': h1, 'prov:usedEntity': m1 });
    // Every identifier a relation names is declared.
    const declared = new Set([...Object.keys(doc.entity), ...Object.keys(doc.activity), ...Object.keys(doc.agent)]);
    for (const kind of ['used', 'wasGeneratedBy', 'wasDerivedFrom', 'wasAttributedTo', 'wasAssociatedWith', 'actedOnBehalfOf']) {
      for (const r of rel(kind)) for (const [k, v] of Object.entries(r)) if (k !== 'prov:time') expect(declared.has(v as string), `${kind} ${k} ${String(v)}`).toBe(true);
    }
  });
});

describe('archived originals', () => {
  it('serves a gzip-encoded upload as the gzip file it was, with a SHA-256 over those bytes', async () => {
    const { gzipSync } = await import('node:zlib');
    const { loggerBody } = await import('../helpers/uploads.ts');
    const gz = gzipSync(loggerBody({ start: T0 + 5n * 86_400_000_000n }));
    const res = await t.request('/v1/streams/lab/ingest', { method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream', 'content-encoding': 'gzip' }, body: gz });
    expect(res.status).toBe(201);
    const { ingest } = await res.json() as { ingest: { id: string; sha256: string } };
    expect(ingest.sha256).toBe(createHash('sha256').update(gz).digest('hex'));
    const original = await t.request(`/v1/ingests/${ingest.id}/original`);
    expect(original.headers.get('content-type')).toBe('application/gzip');
    expect(original.headers.get('content-disposition')).toBe(`attachment; filename="ingest-${ingest.id}.arrows.gz"`);
    expect(Buffer.from(await original.arrayBuffer()).equals(gz)).toBe(true);
  });


  it('reports, and does not serve, an original whose bytes changed or that is missing', async () => {
    const lines: Record<string, unknown>[] = [];
    t.deps.log = createLogger('info', { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>); } });
    const damaged = await committed(t, 'lab', { start: T0 + 86_400_000_000n });
    const file = path.join(t.config.archiveDir, damaged.sha256.slice(0, 2), damaged.sha256);
    await writeFile(file, Buffer.concat([damaged.bytes.subarray(0, 100), Buffer.from('X'), damaged.bytes.subarray(101)]));
    const res = await t.request(`/v1/ingests/${damaged.id}/original`);
    expect(res.status).toBe(409);
    const p = await res.json() as { code: string; detail: string; expected_sha256: string; actual_sha256: string };
    expect(p.code).toBe('original_mismatch');
    expect(p.expected_sha256).toBe(damaged.sha256);
    expect(p.actual_sha256).not.toBe(damaged.sha256);
    expect(p.detail).toContain(damaged.sha256);
    expect(lines.some((l) => l.level === 50 && l.ingest === damaged.id)).toBe(true);
    const record = await (await t.request(`/v1/ingests/${damaged.id}`)).json() as { audit: { action: string; details: Record<string, unknown> }[] };
    expect(record.audit.map((e) => e.action)).toEqual(['ingest.commit', 'ingest.original_mismatch']);

    await rm(file);
    const missing = await t.request(`/v1/ingests/${damaged.id}/original`);
    expect(missing.status).toBe(409);
    expect(((await missing.json()) as { code: string }).code).toBe('original_missing');

    const rejected = await upload(t, 'lab', { headers: { 'content-type': 'application/vnd.apache.arrow.file' } });
    const rid = (rejected.body as unknown as { ingest_id: string }).ingest_id;
    const none = await t.request(`/v1/ingests/${rid}/original`);
    expect(none.status).toBe(404);
    expect(((await none.json()) as { detail: string }).detail).toContain('rejected uploads keep no original');
  });
});
