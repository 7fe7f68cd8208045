// Runs a query on its own connection and yields its rows in pages, as PostgreSQL text, so that
// results of any size stream to the client without being held in memory.
import Cursor from 'pg-cursor';
import type { Db } from '../db/pool.ts';
import type { Cell } from './result-formats.ts';

const asText = { getTypeParser: () => (v: string) => v };

export async function* cursorPages(db: Db, sql: string, params: unknown[], pageRows = 5000): AsyncGenerator<Cell[][]> {
  const client = await db.pool.connect();
  let broken: Error | undefined;
  const cursor = client.query(new Cursor<Cell[]>(sql, params, { rowMode: 'array', types: asText }));
  try {
    while (true) {
      const rows = await cursor.read(pageRows);
      if (rows.length === 0) break;
      yield rows;
      if (rows.length < pageRows) break;
    }
  } catch (err) {
    broken = err as Error;
    throw err;
  } finally {
    await cursor.close().catch((e: Error) => { broken = e; });
    client.release(broken);
  }
}
