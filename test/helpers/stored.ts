// Reads what a stream stored, straight from PostgreSQL, for comparison with fixture expectations.
import type { Db } from '../../src/db/pool.ts';
import { getStream } from '../../src/streams/catalog.ts';
import { DATA_SCHEMA, ident } from '../../src/db/sql.ts';

export async function streamTableOf(db: Db, name: string): Promise<{ table: string; col: (n: string) => string }> {
  const s = await getStream(db.pool, name);
  if (!s) throw new Error(`no stream ${name}`);
  const byName = new Map(s.columns.map((c) => [c.name, c.columnName]));
  return {
    table: `${ident(DATA_SCHEMA)}.${ident(s.tableName)}`,
    col: (n: string) => {
      const c = byName.get(n);
      if (!c) throw new Error(`stream ${name} has no column ${n}`);
      return ident(c);
    },
  };
}

export async function storedRowCount(db: Db, name: string): Promise<number> {
  const s = await getStream(db.pool, name);
  if (!s) return 0;
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM ${ident(DATA_SCHEMA)}.${ident(s.tableName)}`);
  return rows[0].n as number;
}

/** Rows stored anywhere in strata_data for an ingest id (0 for a rejected ingest). */
export async function rowsOfIngest(db: Db, ingestId: string | number): Promise<number> {
  const { rows: streams } = await db.pool.query<{ table_name: string }>('SELECT table_name FROM strata.streams');
  let n = 0;
  for (const s of streams) {
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM ${ident(DATA_SCHEMA)}.${ident(s.table_name)} WHERE ingest_id = $1`, [String(ingestId)]);
    n += rows[0].n as number;
  }
  return n;
}

export async function totalStoredRows(db: Db): Promise<number> {
  const { rows: streams } = await db.pool.query<{ table_name: string }>('SELECT table_name FROM strata.streams');
  let n = 0;
  for (const s of streams) {
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM ${ident(DATA_SCHEMA)}.${ident(s.table_name)}`);
    n += rows[0].n as number;
  }
  return n;
}
