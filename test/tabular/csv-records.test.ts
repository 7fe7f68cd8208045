// The CSV record reader over files larger than its 4 MB reads: records (with quoted fields that
// hold delimiters, doubled quotes and line breaks) crossing read boundaries come out whole and in
// order, although the read buffers and field arrays are reused from block to block.
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fieldText, readRecords } from '../../src/ingest/decoders/csv/records.ts';
import { rng } from '../helpers/rollups.ts';

function field(r: () => number): string {
  const x = r();
  if (x < 0.6) return (r() * 1e6).toFixed(Math.floor(r() * 12));
  if (x < 0.8) return `tag-${Math.floor(r() * 100)}`;
  if (x < 0.9) return '';
  const parts = ['a,b', 'say ""hi""', 'line\nbreak', 'crlf\r\ninside', 'x'.repeat(Math.floor(r() * 300))];
  return `"${parts[Math.floor(r() * parts.length)]}"`;
}

const unquote = (f: string): string => (f.startsWith('"') ? f.slice(1, -1).replaceAll('""', '"') : f);

describe('records across read boundaries', () => {
  it('a 12 MB file with quoted fields is read back field by field, block by block', async () => {
    const r = rng(41);
    const width = 7;
    const rows: string[][] = [];
    let text = `${Array.from({ length: width }, (_, i) => `c${i}`).join(',')}\r\n`;
    while (text.length < 12e6) {
      const row = Array.from({ length: width }, () => field(r));
      rows.push(row.map(unquote));
      text += `${row.join(',')}${r() < 0.5 ? '\r\n' : '\n'}`;
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'strata-csv-records-'));
    const file = path.join(dir, 'big.csv');
    await writeFile(file, text);
    const fh = await open(file, 'r');
    try {
      const size = Buffer.byteLength(text);
      let i = -1; // the header first
      let blocks = 0;
      for await (const b of readRecords(fh, size, 0, 1, 0x2c, null, 5000)) {
        blocks++;
        for (let row = 0; row < b.rows; row++, i++) {
          if (i < 0) continue;
          const got = Array.from({ length: width }, (_, c) => fieldText(b, row * width + c));
          if (JSON.stringify(got) !== JSON.stringify(rows[i])) expect(got, `row ${i}`).toEqual(rows[i]);
        }
      }
      expect(i).toBe(rows.length);
      expect(blocks).toBeGreaterThan(3);
    } finally {
      await fh.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
