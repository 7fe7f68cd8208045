// Parquet and CSV as hostile input: cut, overwritten and forged files are refused with a 4xx and a
// rejected ingest record, never a 500 or a stall, and store nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { fixture } from '../helpers/fixtures.ts';
import { totalStoredRows } from '../helpers/stored.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

const good = fixture('tabular/arrowrs_brotli_4groups.parquet');
let seed = 12345;
const rnd = (n: number): number => { seed = (seed * 16807) % 2147483647; return seed % n; };

function mutants(): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  for (const cut of [4, 8, 100, Math.floor(good.length / 2), good.length - 9, good.length - 4, good.length - 1]) out.push([`cut at ${cut}`, good.subarray(0, cut)]);
  for (let i = 0; i < 8; i++) {
    const b = Buffer.from(good);
    const at = 4 + rnd(good.length - 12);
    for (let k = 0; k < 64 && at + k < good.length - 8; k++) b[at + k] = rnd(256);
    out.push([`64 random bytes at ${at}`, b]);
  }
  const footerLen = good.readUInt32LE(good.length - 8);
  for (let i = 0; i < 4; i++) {
    const b = Buffer.from(good);
    const at = good.length - 8 - footerLen + rnd(footerLen);
    b[at] ^= 0xff;
    out.push([`footer byte ${at} flipped`, b]);
  }
  for (const len of [0, 7, 0x7fffffff, good.length]) {
    const b = Buffer.from(good);
    b.writeUInt32LE(len, good.length - 8);
    out.push([`footer length ${len}`, b]);
  }
  out.push(['PAR1 then garbage then PAR1', Buffer.concat([Buffer.from('PAR1'), Buffer.alloc(5000, 0x41), Buffer.from([0x10, 0, 0, 0]), Buffer.from('PAR1')])]);
  return out;
}

/** Rows stored by mutants that are still readable files (a flipped byte in a statistics field). */
let accepted = 0;

describe('Parquet mutants', () => {
  it.each(mutants())('%s → 4xx (or, for a footer that still reads, every row)', async (name, body) => {
    const res = await t.request('/v1/streams/pq-hostile/ingest', { method: 'POST', headers: { 'content-type': 'application/vnd.apache.parquet' }, body });
    const p = await res.json() as { code: string; ingest_id: string; ingest?: { rows: number } };
    if (res.status === 201 && name.startsWith('footer byte')) {
      expect(p.ingest?.rows).toBe(3000);
      accepted += 3000;
      return;
    }
    expect(res.status, JSON.stringify(p)).toBeGreaterThanOrEqual(400);
    expect(res.status, JSON.stringify(p)).toBeLessThan(500);
    const rec = await (await t.request(`/v1/ingests/${p.ingest_id}`)).json() as { status: string };
    expect(rec.status).toBe('rejected');
  }, 60_000);
});

describe('CSV mutants', () => {
  const csv = fixture('tabular/iso_offsets_quoted.csv');
  const cases: [string, Buffer][] = [
    ['an unclosed quote', Buffer.concat([csv, Buffer.from('2024-03-01T00:00:00Z,"open,1\n')])],
    ['a stray quote after a closing one', Buffer.from('time,v\n2024-03-01T00:00:00Z,"a"b\n')],
    ['invalid UTF-8', Buffer.concat([Buffer.from('time,name\n2024-03-01T00:00:00Z,'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')])],
    ['a duplicate header name', Buffer.from('time,v,v\n2024-03-01T00:00:00Z,1,2\n')],
    ['only a header', Buffer.from('time,v\n')],
    ['random bytes', Buffer.from(Array.from({ length: 4096 }, () => 0x20 + rnd(95)))],
    ['a 5 MB line', Buffer.concat([Buffer.from('time,v\n"'), Buffer.alloc(5 << 20, 0x61)])],
  ];
  it.each(cases)('%s → 4xx', async (_name, body) => {
    const res = await t.request('/v1/streams/csv-hostile/ingest', { method: 'POST', headers: { 'content-type': 'text/csv' }, body });
    expect(res.status, await res.text()).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });
});

describe('after all of the above', () => {
  it('nothing was stored but whole readable files', async () => {
    expect(await totalStoredRows(t.db)).toBe(accepted);
  });
});
