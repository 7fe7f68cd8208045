// Hostile input is data, never SQL or a path: stream names, Arrow column names (written by polars),
// HDF5 paths, the Strata-Provenance header, filenames and query parameters that look like SQL
// injection, path traversal, 10,000-character names, non-UTF-8 bytes, NUL characters, deeply
// nested or huge JSON — each gets a clear 4xx naming the problem, or is stored verbatim and
// harmlessly. After all of it, the audit chain verifies and the data directory holds only
// content-addressed originals.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Float64, Table, TimestampMillisecond, tableToIPC, vectorFromArray } from 'apache-arrow';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_STREAM, fixture } from '../helpers/fixtures.ts';
import { T0, arrowStream, pl, times } from '../helpers/polars.ts';
import { committed, json, upload } from '../helpers/uploads.ts';
import { streamTableOf } from '../helpers/stored.ts';

const SQL = 'x"; DROP TABLE strata.audit_log; --';
const TRAVERSAL = '../../etc/passwd';
const LONG = 'n'.repeat(10_000);

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

interface Problem { status: number; code: string; detail: string; ingest_id?: string }

async function problem(res: Response, status: number, code?: string): Promise<Problem> {
  const text = await res.text();
  expect(res.status, text.slice(0, 300)).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const p = JSON.parse(text) as Problem;
  if (code) expect(p.code).toBe(code);
  expect(p.detail.length).toBeLessThan(2000);
  return p;
}

/** An Arrow stream written by polars with the given column names besides `time`. */
function withColumns(names: string[]): Buffer {
  return arrowStream([pl.DataFrame([
    pl.Series('time', times(T0, 3, 1_000_000n), pl.Int64).cast(pl.Datetime('us', 'UTC')),
    ...names.map((n, i) => pl.Series(n, [i, i + 0.5, i + 1], pl.Float64)),
  ])]);
}

async function rejectedRecord(id: string | undefined): Promise<Record<string, unknown>> {
  expect(id).toMatch(/^\d+$/);
  const rec = await (await t.request(`/v1/ingests/${id}`)).json() as Record<string, unknown>;
  expect(rec.status).toBe('rejected');
  return rec;
}

describe('stream names', () => {
  for (const [label, name] of [['SQL', SQL], ['a path', TRAVERSAL], ['10,000 characters', LONG], ['non-UTF-8', '%FF%FEx'], ['NUL', 'a%00b']] as const) {
    it(`refuses a stream name with ${label} in every place a name goes`, async () => {
      const encoded = name.includes('%') ? name : encodeURIComponent(name);
      await problem(await t.request(`/v1/streams/${encoded}/ingest`, { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: withColumns(['v']) }), 400, 'invalid_request');
      await problem(await t.request(`/v1/streams/${encoded}`), 400, 'invalid_request');
      await problem(await t.request(`/v1/streams/${encoded}/query`), 400, 'invalid_request');
      const decoded = name.includes('%') ? name : name;
      await problem(await t.request('/v1/streams', json({ method: 'POST', body: { name: decoded } })), 400, 'invalid_body');
      await problem(await t.request('/v1/keys', json({ method: 'POST', body: { name: 'k', role: 'reader', streams: [decoded] } })), 400, 'invalid_body');
    });
  }

  it('treats a hostile stream filter as a value: it finds the rejected uploads that named that stream, verbatim', async () => {
    const res = await t.request(`/v1/ingests?stream=${encodeURIComponent(SQL)}`);
    expect(res.status).toBe(200);
    const { ingests } = await res.json() as { ingests: { stream: string; status: string; error: { code: string } }[] };
    expect(ingests.length).toBeGreaterThan(0);
    for (const i of ingests) expect(i).toMatchObject({ stream: SQL, status: 'rejected', error: { code: 'invalid_request' } });
    expect(await (await t.request(`/v1/ingests?stream=${encodeURIComponent(`${SQL}'`)}`)).json()).toEqual({ ingests: [] });
    // An unencoded traversal is resolved by URL parsing before routing: it reaches no route.
    expect((await t.request('/v1/streams/../../etc/passwd/ingest', { method: 'POST', body: 'x' })).status).toBe(404);
  });
});

describe('Arrow column names (written by polars)', () => {
  it('stores SQL-looking and path-looking column names verbatim, under safe identifiers', async () => {
    const names = [SQL, TRAVERSAL, 'Temp C', 'temp_c', 'ingest_id', 'time ', 'ÄÖÜ ✓ 温度'];
    const res = await t.request('/v1/streams/cols/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: withColumns(names) });
    expect(res.status, await res.clone().text()).toBe(201);
    const stream = await (await t.request('/v1/streams/cols')).json() as { fields: { name: string; column: string }[] };
    expect(stream.fields.map((f) => f.name)).toEqual(names);
    for (const f of stream.fields) expect(f.column).toMatch(/^[a-z_][a-z0-9_]{0,62}$/);
    expect(new Set(stream.fields.map((f) => f.column)).size).toBe(names.length);
    const { table, col } = await streamTableOf(t.db, 'cols');
    const { rows } = await t.db.pool.query(`SELECT ${col(SQL)} AS a, ${col(TRAVERSAL)} AS b FROM ${table} ORDER BY "time"`);
    expect(rows).toEqual([{ a: 0, b: 1 }, { a: 0.5, b: 1.5 }, { a: 1, b: 2 }]);
    const q = await (await t.request(`/v1/streams/cols/query?fields=${encodeURIComponent(`${SQL},${TRAVERSAL}`)}`)).json() as { columns: { name: string }[] };
    expect(q.columns.map((c) => c.name)).toEqual(['time', SQL, TRAVERSAL]);
  });

  it('refuses a 10,000-character column name, naming the limit, and records the rejection', async () => {
    const p = await problem(await t.request('/v1/streams/cols-long/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: withColumns([LONG]) }), 422, 'invalid_request');
    expect(p.detail).toContain('1–1024 characters');
    expect(p.detail).toContain('10000 characters');
    await rejectedRecord(p.ingest_id);
    expect((await t.request('/v1/streams/cols-long')).status).toBe(404);
  });

  it('refuses a column name with a NUL character, and still records the rejection', async () => {
    const p = await problem(await t.request('/v1/streams/cols-nul/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: withColumns(['a\0b']) }), 422, 'invalid_request');
    const rec = await rejectedRecord(p.ingest_id);
    const names = (rec.file_metadata as { arrow_schema: { name: string }[] }).arrow_schema.map((c) => c.name);
    expect(names).toContain('a\uFFFDb');
  });

  it('refuses a column name that is not UTF-8', async () => {
    const body = withColumns(['zzqq']);
    const at = body.indexOf(Buffer.from('zzqq'));
    body[at] = 0xff;
    body[at + 1] = 0xfe;
    const p = await problem(await t.request('/v1/streams/cols-bytes/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body }), 422, 'invalid_request');
    expect(p.detail).toContain('not valid UTF-8');
    await rejectedRecord(p.ingest_id);
  });

  it('refuses schema metadata PostgreSQL cannot store, naming the key, and records the rejection', async () => {
    const table = new Table({
      time: vectorFromArray([Number(T0 / 1000n)], new TimestampMillisecond('UTC')),
      v: vectorFromArray([1.5], new Float64()),
    });
    table.schema.metadata.set('calibration', 'before\0after');
    const p = await problem(await t.request('/v1/streams/meta-nul/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM }, body: tableToIPC(table, 'stream') }), 422, 'invalid_request');
    expect(p.detail).toContain('/schema/calibration');
    expect(p.detail).toContain('NUL');
    await rejectedRecord(p.ingest_id);
  });
});

describe('HDF5 paths', () => {
  it('answers hostile mapping paths and files that point outside themselves with a 4xx or stores them harmlessly', async () => {
    const mapping = encodeURIComponent(JSON.stringify({ group: TRAVERSAL, time: SQL, fields: [SQL, LONG] }));
    for (const [file, query] of [['flat_gzip.h5', `?mapping=${mapping}`], ['flat_gzip.h5', `?group=${encodeURIComponent(TRAVERSAL)}`],
      ['external_link.h5', ''], ['external_storage.h5', '']]) {
      const res = await t.request(`/v1/streams/h5-hostile/ingest${query}`, { method: 'POST', headers: { 'content-type': 'application/x-hdf5' }, body: fixture(`hdf5/${file}`) });
      const text = await res.text();
      expect(res.status < 500, `${file}${query}: ${res.status} ${text.slice(0, 200)}`).toBe(true);
      expect([201, 400, 404, 409, 413, 415, 422], `${file}${query}: ${res.status}`).toContain(res.status);
      if (res.status >= 400) expect(JSON.parse(text).code).toBeTruthy();
    }
  });
});

describe('the Strata-Provenance header', () => {
  // Header values travel as bytes: UTF-8 text is sent as its bytes (which fetch's Headers take as Latin-1).
  const send = (header: string, stream = 'prov-hostile'): ReturnType<typeof upload> =>
    upload(t, stream, { headers: { 'strata-provenance': Buffer.from(header, 'utf8').toString('latin1') } });

  it('stores hostile strings verbatim and exports them unchanged', async () => {
    const value = { operator: SQL, notes: TRAVERSAL, [SQL]: '<script>alert(1)</script>', experiment: 'ÄÖÜ ✓ 温度', [`k${'x'.repeat(5000)}`]: 1 };
    const r = await send(JSON.stringify(value));
    expect(r.status).toBe(201);
    const rec = await (await t.request(`/v1/ingests/${r.body.ingest.id}`)).json() as { provenance: unknown };
    expect(rec.provenance).toEqual(value);
    const prov = await (await t.request(`/v1/ingests/${r.body.ingest.id}/prov`)).json() as { agent: Record<string, { 'prov:label': string }> };
    expect(Object.values(prov.agent).map((a) => a['prov:label'])).toContain(SQL);
    expect(Object.keys(prov.agent).every((id) => !id.includes('"') && !id.includes(' '))).toBe(true);
  });

  it('refuses deep nesting, huge headers, non-UTF-8 bytes, NUL and unpaired surrogates, and records each rejection', async () => {
    const deep = `${'{"a":'.repeat(100)}1${'}'.repeat(100)}`;
    const cases: [string, string][] = [
      [deep, 'nests deeper'],
      [JSON.stringify({ notes: 'x'.repeat(20_000) }), 'longer than'],
      ['{"operator": "\\u0000"}', 'NUL'],
      ['{"operator": "\\ud800"}', 'unpaired'],
      ['{"operator": ', 'not valid JSON'],
      ['[1, 2]', 'invalid'],
      [JSON.stringify({ instrument: LONG }), 'invalid'],
    ];
    for (const [header, text] of cases) {
      const r = await send(header);
      expect(r.status, header.slice(0, 40)).toBe(400);
      const p = r.body as unknown as Problem;
      expect(p.code).toBe('invalid_provenance');
      expect(p.detail, header.slice(0, 40)).toContain(text);
      await rejectedRecord(p.ingest_id);
    }
    // Header bytes that are not UTF-8 (Node hands them over as Latin-1).
    const res = await t.request('/v1/streams/prov-hostile/ingest', { method: 'POST', headers: { 'content-type': ARROW_STREAM, 'strata-provenance': '{"operator": "\xff\xfe"}' }, body: withColumns(['v']) });
    expect((await problem(res, 400, 'invalid_provenance')).detail).toContain('UTF-8');
  });
});

describe('filenames', () => {
  const send = (disposition: string): ReturnType<typeof upload> => upload(t, 'files', { headers: { 'content-disposition': disposition } });

  it('keeps SQL- and path-looking filenames as data: verbatim in the record, never a path, safely in headers', async () => {
    for (const name of [TRAVERSAL, SQL, '..\\..\\windows\\system32', 'report "final".arrows']) {
      const r = await send(`attachment; filename*=UTF-8''${encodeURIComponent(name)}`);
      expect(r.status).toBe(201);
      const rec = await (await t.request(`/v1/ingests/${r.body.ingest.id}`)).json() as { filename: string };
      expect(rec.filename).toBe(name);
      const original = await t.request(`/v1/ingests/${r.body.ingest.id}/original`);
      expect(original.status).toBe(200);
      const cd = original.headers.get('content-disposition') as string;
      expect(cd).toMatch(/^attachment; filename="ingest-\d+\.arrows"; filename\*=UTF-8''[A-Za-z0-9%._~!-]+$/);
      expect(decodeURIComponent(cd.split("''")[1])).toBe(name);
    }
  });

  it('refuses control characters, NUL, 10,000-character and undecodable filenames, recording each rejection', async () => {
    for (const [disposition, text] of [[`attachment; filename*=UTF-8''a%00b`, 'control'], [`attachment; filename*=UTF-8''a%0D%0AX-Evil: 1`, 'control'],
      [`attachment; filename*=UTF-8''${LONG}`, '10000 characters'], [`attachment; filename="${'y'.repeat(1025)}"`, '1025 characters']]) {
      const r = await send(disposition);
      const p = r.body as unknown as Problem;
      expect(r.status, disposition.slice(0, 50)).toBe(400);
      expect(p.detail).toContain(text);
      await rejectedRecord(p.ingest_id);
    }
    const bad = await send("attachment; filename*=UTF-8''%FF%FE.arrows");
    expect(bad.status).toBe(400);
    expect((bad.body as unknown as Problem).detail).toContain('not valid UTF-8');
  });
});

describe('query parameters', () => {
  beforeAll(async () => { await committed(t, 'params', { sample: 'S-1' }); });

  it('refuses malformed or hostile parameters with a 400 naming them', async () => {
    const cases: [string, string][] = [
      ['/v1/streams/params/query?tag.sample=%00', 'tag.sample'],
      [`/v1/streams/params/query?from=${encodeURIComponent("' OR 1=1 --")}`, 'from'],
      [`/v1/streams/params/query?fields=${encodeURIComponent(SQL)}`, 'fields'],
      [`/v1/streams/params/query?tag.${encodeURIComponent(SQL)}=1`, 'no tag'],
      ['/v1/streams/params/query?format=../../etc/passwd', 'format'],
      ['/v1/streams/params/query?limit=1e999', 'limit'],
      ['/v1/ingests?limit=1e999', 'limit'],
      ['/v1/ingests?instrument=%00', 'instrument'],
      [`/v1/ingests?stream=${LONG}`, 'stream'],
      ['/v1/audit?subject=%00', 'subject'],
      [`/v1/audit?action=${LONG}`, 'action'],
      ['/v1/audit?after=1;DROP', 'after'],
      ['/v1/streams/params/provenance?time=2024-03-01T00:00:00Z&time=2024-03-02T00:00:00Z', 'time'],
      [`/v1/streams/params/provenance?time=2024-03-01T00:00:00Z&resolution=${encodeURIComponent(SQL)}`, 'resolution'],
      ['/v1/streams/params/provenance?time=%ud800', 'time'],
      ['/v1/ingests/1%3B%20DROP%20TABLE%20strata.audit_log', 'does not exist'],
    ];
    for (const [url, text] of cases) {
      const res = await t.request(url);
      const p = await res.json() as Problem;
      expect([400, 404], `${url.slice(0, 80)}: ${JSON.stringify(p).slice(0, 200)}`).toContain(res.status);
      expect(p.detail, url.slice(0, 80)).toContain(text);
    }
  });

  it('treats hostile values of free-text filters as values', async () => {
    for (const url of [`/v1/ingests?instrument=${encodeURIComponent(SQL)}`, `/v1/audit?subject=${encodeURIComponent(SQL)}`, `/v1/audit?action=${encodeURIComponent(TRAVERSAL)}`]) {
      const res = await t.request(url);
      expect(res.status, url).toBe(200);
      const body = await res.json() as Record<string, unknown[]>;
      expect(Object.values(body)[0]).toEqual([]);
    }
  });
});

describe('JSON bodies', () => {
  it('refuses a body over 1 MiB sent without Content-Length, without reading all of it', async () => {
    let sent = 0;
    const chunk = new TextEncoder().encode(`"${'x'.repeat(65_534)}",`);
    const body = new ReadableStream<Uint8Array>({
      start(ctl) { ctl.enqueue(new TextEncoder().encode('{"name": "big", "role": "reader", "notes": [')); },
      pull(ctl) {
        // Endless unless the server stops reading.
        sent += chunk.byteLength;
        if (sent > 64 * 1024 * 1024) ctl.close(); else ctl.enqueue(chunk);
      },
    });
    const res = await t.request('/v1/keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit);
    expect((await problem(res, 413, 'body_too_large')).detail).toContain('1048576 bytes');
    expect(sent).toBeLessThan(4 * 1024 * 1024);
  });

  it('refuses bodies that are not UTF-8, hold NUL or unpaired surrogates, or nest too deep', async () => {
    const post = (body: string | Buffer): Promise<Response> => t.request('/v1/keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect((await problem(await post(Buffer.from([0x7b, 0x22, 0x6e, 0x61, 0x6d, 0x65, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])), 400, 'invalid_body')).detail).toContain('UTF-8');
    expect((await problem(await post('{"name": "a\\u0000b", "role": "reader"}'), 400, 'invalid_body')).detail).toContain('/name');
    expect((await problem(await post('{"name": "\\udc00", "role": "reader"}'), 400, 'invalid_body')).detail).toContain('unpaired');
    const deep = `{"name": "x", "role": "reader", "streams": ${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    expect((await problem(await post(deep), 400, 'invalid_body')).detail).toContain('nests deeper');
    const ingest = await committed(t, 'bodies');
    await problem(await t.request(`/v1/ingests/${ingest.id}/retract`, json({ method: 'POST', body: { reason: 'a\0b' } })), 400, 'invalid_body');
    await problem(await t.request('/v1/streams', json({ method: 'POST', body: { name: 'deep', labels: JSON.parse(`${'{"a":'.repeat(70)}1${'}'.repeat(70)}`) } })), 400, 'invalid_body');
  });
});

describe('afterwards', () => {
  it('still has an intact audit log, and only content-addressed originals in the data directory', async () => {
    expect(await (await t.request('/v1/audit/verify')).json()).toMatchObject({ ok: true });
    const { rows } = await t.db.pool.query("SELECT to_regclass('strata.audit_log') IS NOT NULL AS present");
    expect(rows[0].present).toBe(true);
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else files.push(path.relative(t.config.dataDir, p));
      }
    };
    await walk(t.config.dataDir);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(f).toMatch(/^archive\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
  });
});
