// copyOut reads a COPY … TO STDOUT leaving each socket piece's whole CopyData messages in place,
// as ranges, taking over pg-copy-streams' own decoder between them. Its bytes must be the
// library's, whatever the rows' sizes (rows of a few bytes, many to a piece; rows of 100–300 KB,
// across many pieces, so that message headers and contents are cut everywhere), in binary and
// text form; CopyRowParser, fed the ranges, must read the tuples the library's bytes hold; an
// error in the middle of the COPY must reach the reader, and the connection must stay usable.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { type CopyData, copyOut, forEachPart } from '../../src/compression/copy-out.ts';
import { CopyRowParser } from '../../src/compression/copy-rows.ts';
import { createTestDb, databaseUrl, type TestDb } from '../helpers/db.ts';

let db: TestDb;
let client: pg.Client;

beforeAll(async () => {
  db = await createTestDb();
  client = new pg.Client({ connectionString: databaseUrl(db.name) });
  await client.connect();
  // Small rows, then large ones (repeat() of a varying length), then small ones again.
  await client.query(`CREATE TABLE t AS
    SELECT i, CASE WHEN i BETWEEN 20000 AND 20040 THEN repeat(md5(i::text), 3000 + i % 7 * 1000) ELSE md5(i::text) END AS s,
           (i * 0.37)::float8 AS f, CASE WHEN i % 11 = 0 THEN NULL ELSE i % 3 = 0 END AS b
      FROM generate_series(1, 60000) i`);
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

/** Ranges copyOut left in place, of all it read. */
let inPlace = 0;

/** Each part of the COPY's bytes, in order: copyOut's ranges (as views of their pieces), or the stream's buffers. */
async function parts(stream: NodeJS.ReadableStream, take: (buf: Buffer, start: number, end: number) => void): Promise<void> {
  for await (const data of stream) {
    const d = data as CopyData;
    if (!Buffer.isBuffer(d)) inPlace += d.count;
    forEachPart(d, take);
  }
}

async function read(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const pieces: Buffer[] = [];
  await parts(stream, (buf, start, end) => pieces.push(Buffer.from(buf.subarray(start, end))));
  return Buffer.concat(pieces);
}

/** The tuples CopyRowParser reads from the parts: a hash of their fields, and how many. */
async function tuples(stream: NodeJS.ReadableStream): Promise<{ n: number; hash: string }> {
  const hash = createHash('sha256');
  let n = 0;
  const parser = new CopyRowParser(4, (buf, off, len) => {
    n++;
    for (let i = 0; i < 4; i++) hash.update(len[i] < 0 ? 'NULL' : buf.subarray(off[i], off[i] + len[i])).update('|');
  });
  await parts(stream, (buf, start, end) => parser.push(buf, start, end));
  expect(parser.done).toBe(true);
  return { n, hash: hash.digest('hex') };
}

describe('copyOut', () => {
  for (const format of ['binary', 'text']) {
    it(`gives the library's bytes, ${format}`, async () => {
      const sql = `COPY t (i, s, f, b) TO STDOUT (FORMAT ${format})`;
      const ours = await read(client.query(copyOut(sql)));
      const theirs = await read(client.query(copyTo(sql)));
      expect(ours.length).toBeGreaterThan(5_000_000);
      expect(ours.equals(theirs)).toBe(true);
    });
  }

  it('leaves most rows in place, and CopyRowParser reads from the ranges the tuples the library\'s bytes hold', async () => {
    const sql = 'COPY t (i, s, f, b) TO STDOUT (FORMAT binary)';
    inPlace = 0;
    const ours = await tuples(client.query(copyOut(sql)));
    expect(inPlace).toBeGreaterThan(50_000);
    const theirs = await tuples(client.query(copyTo(sql)));
    expect(ours).toEqual(theirs);
    expect(ours.n).toBe(60_000);
  });

  it('passes on an error raised mid-COPY, and the connection stays usable', async () => {
    const stream = client.query(copyOut('COPY (SELECT i, 1 / (i - 30000) AS x FROM generate_series(1, 60000) i) TO STDOUT (FORMAT binary)'));
    await expect(read(stream)).rejects.toThrow(/division by zero/);
    const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM t');
    expect(rows[0].n).toBe(60_000);
  });
});
