// Mutants the fuzz suite found before the Arrow checks existed, kept in fixtures/regress/ (made by
// test/fuzz/mutate.ts from the fixtures/fuzz/ seeds). Each once got a 500, a wrong reading or
// a frozen server; each must now be a 4xx naming what is wrong, with nothing stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_FILE, ARROW_STREAM, fixture } from '../helpers/fixtures.ts';
import { rowsOfIngest, totalStoredRows } from '../helpers/stored.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

interface Case { file: string; before: string; status: number; code: string; detail: RegExp }

const cases: Case[] = [
  // fixtures/fuzz/large_utf8.arrows with the high words of three LargeUtf8 offsets of "sample"
  // (rows 40–42) set to 1: offsets past 4 GiB, as flipped bits make them.
  { file: 'large_utf8-offsets-above-4gib.arrows', before: 'the server froze: /healthz unanswered for more than 45 s',
    status: 422, code: 'corrupt_batch', detail: /column "sample", record batch 1: value offset 4294967568 at row 40 lies outside its 1024-byte data buffer \(byte 2904 of the body\)/ },
  { file: 'large_utf8-offset-high-bit.arrows', before: '201 with 150 rows read through a LargeUtf8 offset of 2^30',
    status: 422, code: 'corrupt_batch', detail: /column "note", record batch 1: value offset 1073742968 at row 31 lies outside its 5792-byte data buffer \(byte 5840 of the body\)/ },
  { file: 'large_utf8-offset-past-data.arrows', before: '500 (the COPY failed)',
    status: 422, code: 'corrupt_batch', detail: /column "note", record batch 1: value offset 6032 at row 130 lies outside its 5792-byte data buffer/ },
  { file: 'large_utf8-dictionary-index-overwritten.arrows', before: '500 (TypeError in the encoder)',
    status: 422, code: 'corrupt_batch', detail: /column "station", record batch 1: row 35 refers to dictionary entry 587202562; the dictionary holds 3 \(byte 5028 of the body\)/ },
  { file: 'large_utf8-dictionary-index-flipped.arrows', before: '500 (TypeError in the encoder)',
    status: 422, code: 'corrupt_batch', detail: /column "station", record batch 1: row 67 refers to dictionary entry 268435457/ },
  { file: 'large_utf8-schema-repeated.arrows', before: '500 (TypeError reading a repeated message)',
    status: 400, code: 'malformed_arrow', detail: /a second schema message; an Arrow stream holds exactly one \(message at byte 848\)/ },
  { file: 'large_utf8-invalid-utf8.arrows', before: '500 (PostgreSQL: invalid byte sequence for encoding "UTF8")',
    status: 422, code: 'invalid_utf8', detail: /column "note", record batch 1, row 104: the text is not valid UTF-8 \(byte 10787 of the body\)/ },
  { file: 'large_utf8-ff-in-tag.arrows', before: '500 (PostgreSQL: invalid byte sequence for encoding "UTF8": 0xff)',
    status: 422, code: 'invalid_utf8', detail: /column "sample", record batch 1, row 109: the text is not valid UTF-8 \(byte 4544 of the body\)/ },
  { file: 'large_utf8-nul-in-text.arrows', before: '500 (PostgreSQL: invalid byte sequence for encoding "UTF8": 0x00)',
    status: 422, code: 'invalid_utf8', detail: /column "note", record batch 1, row 14: the text holds a NUL character \(U\+0000\).*\(byte 7347 of the body\)/ },
  { file: 'utf8view-nul-in-long-value.arrows', before: '500 (PostgreSQL: invalid byte sequence for encoding "UTF8": 0x00)',
    status: 422, code: 'invalid_utf8', detail: /column "note", record batch 2, row 18: the text holds a NUL character .*\(byte 11076 of the body\)/ },
  { file: 'utf8view-nul-in-column-name.arrows', before: '500 (PostgreSQL refused the stream definition)',
    status: 422, code: 'invalid_utf8', detail: /the Arrow schema's metadata at \/arrow_schema\/0\/name holds a NUL character/ },
  { file: 'utf8view-block-at-schema.arrow', before: '500 (a footer block pointing at the schema message)',
    status: 400, code: 'malformed_arrow', detail: /record batch block 2 at byte 8 does not point at the start of a message/ },
  { file: 'utf8view-batch-repeated.arrow', before: '201 with 160 rows from a 150-row file (footer blocks read shifted messages)',
    status: 400, code: 'malformed_arrow', detail: /record batch block 3 at byte 13200 records a body of 4224 bytes; its message claims 5376/ },
];

describe('damaged Arrow files found by fuzzing', () => {
  it.each(cases)('$file (before: $before) → $status $code', async (c) => {
    const res = await t.request(`/v1/streams/regress-${c.file.replace(/[^a-z0-9]/gi, '-')}/ingest`, {
      method: 'POST', headers: { 'content-type': c.file.endsWith('.arrow') ? ARROW_FILE : ARROW_STREAM }, body: fixture(`regress/${c.file}`),
    });
    const p = await res.json() as { code: string; detail: string; ingest_id: string };
    expect(res.status, JSON.stringify(p)).toBe(c.status);
    expect(p.code).toBe(c.code);
    expect(p.detail).toMatch(c.detail);
    const rec = await (await t.request(`/v1/ingests/${p.ingest_id}`)).json() as { status: string };
    expect(rec.status).toBe('rejected');
    expect(await rowsOfIngest(t.db, p.ingest_id)).toBe(0);
  });

  it('stored nothing of any of them', async () => {
    expect(await totalStoredRows(t.db)).toBe(0);
  });
});

describe('query limit', () => {
  it('answers a limit beyond the largest safe integer with 400 naming the bound', async () => {
    const ok = await t.request('/v1/streams', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'regress-limit' }) });
    expect(ok.status).toBeLessThan(300);
    const bad = await t.request('/v1/streams/regress-limit/query?limit=99999999999999999999');
    const p = await bad.json() as { code: string; detail: string };
    expect(bad.status).toBe(400);
    expect(p.code).toBe('invalid_request');
    expect(p.detail).toMatch(/limit must be an integer from 1 to 9007199254740991/);
  });
});
