// copyOut reads a COPY … TO STDOUT by copying each socket piece's whole CopyData messages at once,
// taking over pg-copy-streams' own decoder between them. Its bytes must be the library's, whatever
// the rows' sizes (rows of a few bytes, many to a piece; rows of 100–300 KB, across many pieces,
// so that message headers and contents are cut everywhere), in binary and text form; an error in
// the middle of the COPY must reach the reader, and the connection must stay usable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { copyOut } from '../../src/compression/copy-out.ts';
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

async function read(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of stream) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
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

  it('passes on an error raised mid-COPY, and the connection stays usable', async () => {
    const stream = client.query(copyOut('COPY (SELECT i, 1 / (i - 30000) AS x FROM generate_series(1, 60000) i) TO STDOUT (FORMAT binary)'));
    await expect(read(stream)).rejects.toThrow(/division by zero/);
    const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM t');
    expect(rows[0].n).toBe(60_000);
  });
});
