// Stream definitions: the catalog rows (strata.streams, strata.stream_columns) and the
// partitioned table behind each stream. DDL and catalog rows change in one transaction.
import type { Db, PoolClient, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { DATA_SCHEMA, ident, qualified } from '../db/sql.ts';
import type { ColumnRole, ColumnType, Stream, StreamColumn } from '../domain/types.ts';
import { type Actor, appendAudit } from '../audit/log.ts';
import { AppError } from '../errors/index.ts';
import { safeIdentifier } from './identifiers.ts';
import { formatInterval } from '../domain/interval.ts';
import { columnsAddedHooksList, settingHandler, settingHandlers } from './settings.ts';

export type { Stream } from '../domain/types.ts';

export interface NewColumn {
  name: string;
  role: ColumnRole;
  type: ColumnType;
  unit?: string | null;
  description?: string | null;
}

export interface StreamDefinition {
  name: string;
  description?: string | null;
  labels?: Record<string, unknown>;
  timeColumn?: string | null;
  chunkIntervalUs: bigint;
  columns: NewColumn[];
  /** Raw feature settings from the request, by key; missing keys get their defaults. */
  settings?: Record<string, unknown>;
}

export interface StreamPatch {
  description?: string | null;
  labels?: Record<string, unknown>;
  settings: Record<string, unknown>;
}

/** Most columns a stream may have (PostgreSQL allows 1,600 per table, less the fixed ones). */
export const MAX_STREAM_COLUMNS = 1000;

interface StreamRow {
  id: string; name: string; description: string | null; labels: Record<string, unknown>;
  table_name: string; time_column: string | null; chunk_interval_us: string; settings: Record<string, unknown>;
  created_at: Date; updated_at: Date;
}
interface ColumnRow {
  name: string; column_name: string; role: ColumnRole; type: ColumnType; unit: string | null; description: string | null;
}

function toColumn(r: ColumnRow): StreamColumn {
  return { name: r.name, columnName: r.column_name, role: r.role, type: r.type, unit: r.unit, description: r.description };
}

async function loadColumns(q: Queryable, streamId: number): Promise<StreamColumn[]> {
  const { rows } = await q.query<ColumnRow>(
    'SELECT * FROM strata.stream_columns WHERE stream_id = $1 ORDER BY position', [streamId]);
  return rows.map(toColumn);
}

function toStream(r: StreamRow, columns: StreamColumn[]): Stream {
  return {
    id: Number(r.id), name: r.name, description: r.description, labels: r.labels,
    tableName: r.table_name, timeColumn: r.time_column, chunkIntervalUs: BigInt(r.chunk_interval_us),
    columns, settings: r.settings ?? {}, createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString(),
  };
}

export async function getStream(q: Queryable, name: string): Promise<Stream | null> {
  const { rows } = await q.query<StreamRow>('SELECT * FROM strata.streams WHERE name = $1 AND deleted_at IS NULL', [name]);
  if (rows.length === 0) return null;
  return toStream(rows[0], await loadColumns(q, Number(rows[0].id)));
}

/** A stream by id; null when there is none or it was deleted. */
export async function getStreamById(q: Queryable, id: number): Promise<Stream | null> {
  const { rows } = await q.query<StreamRow>('SELECT * FROM strata.streams WHERE id = $1 AND deleted_at IS NULL', [id]);
  if (rows.length === 0) return null;
  return toStream(rows[0], await loadColumns(q, id));
}

export async function requireStream(q: Queryable, name: string): Promise<Stream> {
  const s = await getStream(q, name);
  if (!s) throw new AppError(404, 'not_found', `stream ${JSON.stringify(name)} does not exist`);
  return s;
}

export async function listStreams(q: Queryable): Promise<Stream[]> {
  const { rows } = await q.query<StreamRow>('SELECT * FROM strata.streams WHERE deleted_at IS NULL ORDER BY name');
  const cols = await q.query<ColumnRow & { stream_id: string }>(
    'SELECT * FROM strata.stream_columns ORDER BY stream_id, position');
  const byStream = new Map<string, StreamColumn[]>();
  for (const c of cols.rows) {
    const list = byStream.get(c.stream_id) ?? [];
    list.push(toColumn(c));
    byStream.set(c.stream_id, list);
  }
  return rows.map((r) => toStream(r, byStream.get(r.id) ?? []));
}

export function streamTable(stream: Pick<Stream, 'tableName'>): string {
  return qualified(DATA_SCHEMA, stream.tableName);
}

function columnDdl(c: StreamColumn): string {
  return `${ident(c.columnName)} ${c.type}`;
}

function assignColumnNames(existing: readonly StreamColumn[], added: readonly NewColumn[]): StreamColumn[] {
  const taken = new Set(existing.map((c) => c.columnName));
  return added.map((c) => {
    const columnName = safeIdentifier(c.name, taken);
    taken.add(columnName);
    return { name: c.name, columnName, role: c.role, type: c.type, unit: c.unit ?? null, description: c.description ?? null };
  });
}

async function insertColumns(tx: PoolClient, streamId: number, start: number, cols: readonly StreamColumn[]): Promise<void> {
  for (let i = 0; i < cols.length; i++) {
    const c = cols[i];
    await tx.query(
      `INSERT INTO strata.stream_columns (stream_id, name, column_name, role, type, unit, description, position)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [streamId, c.name, c.columnName, c.role, c.type, c.unit, c.description, start + i]);
  }
}

function checkColumnCount(n: number, streamName: string): void {
  if (n > MAX_STREAM_COLUMNS) {
    throw new AppError(422, 'too_many_columns',
      `stream ${JSON.stringify(streamName)} would have ${n} columns; at most ${MAX_STREAM_COLUMNS} are allowed`);
  }
}

function checkDuplicateNames(cols: readonly NewColumn[], streamName: string): void {
  const seen = new Set<string>();
  for (const c of cols) {
    if (seen.has(c.name)) throw new AppError(422, 'invalid_body', `stream ${JSON.stringify(streamName)}: column ${JSON.stringify(c.name)} is declared twice`);
    seen.add(c.name);
  }
}

/** Advisory-lock space for creating a stream, keyed on hashtext(name). */
export const CREATE_LOCK_SPACE = 7_310_007;

/**
 * Creates a stream and its partitioned table. If a stream of that name already exists (another
 * request created it first), returns it unchanged with created = false.
 */
export async function createStream(db: Db, def: StreamDefinition, actor: Actor): Promise<{ stream: Stream; created: boolean }> {
  checkColumnCount(def.columns.length, def.name);
  checkDuplicateNames(def.columns, def.name);
  const result = await withTransaction(db, async (tx) => {
    const settings: Record<string, unknown> = {};
    for (const h of settingHandlers()) {
      const raw = def.settings?.[h.key];
      const value = raw === undefined ? h.defaultValue() : h.parse(raw, { name: def.name, chunkIntervalUs: def.chunkIntervalUs });
      if (value !== null && value !== undefined) settings[h.key] = value;
    }
    // Requests creating the same stream at once (first uploads) take turns: the later ones then
    // find the row committed. Without this, two speculative inserts of one name could deadlock
    // on the row's other unique key (table_name) while the first renames its table.
    await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [CREATE_LOCK_SPACE, def.name]);
    const ins = await tx.query<{ id: string }>(
      `INSERT INTO strata.streams (name, description, labels, table_name, time_column, chunk_interval_us, settings, created_by)
       VALUES ($1, $2, $3, 'pending:' || $1, $4, $5, $6, $7)
       ON CONFLICT (name) WHERE deleted_at IS NULL DO NOTHING RETURNING id`,
      [def.name, def.description ?? null, JSON.stringify(def.labels ?? {}), def.timeColumn ?? null,
        def.chunkIntervalUs.toString(), JSON.stringify(settings), actor.keyId]);
    if (ins.rows.length === 0) return null;
    const id = Number(ins.rows[0].id);
    const tableName = `s${id}_${safeIdentifier(def.name, new Set(), 40)}`;
    await tx.query('UPDATE strata.streams SET table_name = $2 WHERE id = $1', [id, tableName]);
    const columns = assignColumnNames([], def.columns);
    const table = qualified(DATA_SCHEMA, tableName);
    const body = ['"time" timestamptz NOT NULL', ...columns.map(columnDdl), 'ingest_id bigint NOT NULL'].join(',\n  ');
    await tx.query(`CREATE TABLE ${table} (\n  ${body}\n) PARTITION BY RANGE ("time")`);
    for (const sql of indexDdl(table)) await tx.query(sql);
    await insertColumns(tx, id, 0, columns);
    const created = toStream({ ...(await tx.query<StreamRow>('SELECT * FROM strata.streams WHERE id = $1', [id])).rows[0] }, columns);
    for (const h of settingHandlers()) await h.apply?.(tx, created, null, (settings[h.key] ?? null) as never, actor);
    await appendAudit(tx, actor, 'stream.create', `stream:${def.name}`, {
      stream_id: id, table: tableName, chunk_interval: formatInterval(def.chunkIntervalUs), settings,
      columns: columns.map((c) => ({ name: c.name, column: c.columnName, role: c.role, type: c.type, unit: c.unit })),
    });
    return id;
  });
  const stream = await getStream(db.pool, def.name);
  if (!stream) throw new AppError(500, 'internal', `stream ${def.name} vanished after creation`);
  return { stream, created: result !== null };
}

/**
 * Secondary indexes on every chunk, chosen by measurement (README, "Performance"): a BRIN index
 * on time keeps ingest within a few percent of an unindexed table while serving the time-range
 * scans that queries, rollup refreshes and provenance look-ups do inside a chunk. New block
 * ranges are summarised by the rollup refresh just before it reads them, and by (auto)vacuum;
 * not by autosummarize, whose requests overflow autovacuum's queue during bulk COPY (each lost
 * request is a line in the PostgreSQL log) and come too late for the refresh anyway.
 */
export function indexDdl(table: string): string[] {
  return [`CREATE INDEX ON ${table} USING brin ("time") WITH (pages_per_range = 32)`];
}

/**
 * Adds columns to a stream (uploads may bring new fields). Columns that another request added
 * in the meantime are not added twice; their declared types are returned for checking.
 */
export async function addColumns(db: Db, streamName: string, added: readonly NewColumn[], actor: Actor): Promise<Stream> {
  await withTransaction(db, async (tx) => {
    await tx.query("SET LOCAL lock_timeout = '60s'");
    const { rows } = await tx.query<StreamRow>('SELECT * FROM strata.streams WHERE name = $1 AND deleted_at IS NULL FOR UPDATE', [streamName]);
    if (rows.length === 0) throw new AppError(404, 'not_found', `stream ${JSON.stringify(streamName)} does not exist`);
    const streamId = Number(rows[0].id);
    const existing = await loadColumns(tx, streamId);
    const have = new Set(existing.map((c) => c.name));
    const missing = added.filter((c) => !have.has(c.name));
    if (missing.length === 0) return;
    checkColumnCount(existing.length + missing.length, streamName);
    const cols = assignColumnNames(existing, missing);
    const table = qualified(DATA_SCHEMA, rows[0].table_name);
    await tx.query(`ALTER TABLE ${table} ${cols.map((c) => `ADD COLUMN ${columnDdl(c)}`).join(', ')}`);
    await insertColumns(tx, streamId, existing.length, cols);
    await tx.query('UPDATE strata.streams SET updated_at = now() WHERE id = $1', [streamId]);
    const grown = toStream(rows[0], [...existing, ...cols]);
    for (const hook of columnsAddedHooksList()) await hook(tx, grown);
    await appendAudit(tx, actor, 'stream.columns_added', `stream:${streamName}`, {
      columns: cols.map((c) => ({ name: c.name, column: c.columnName, role: c.role, type: c.type })),
    });
  });
  return (await getStream(db.pool, streamName)) as Stream;
}

export async function setTimeColumn(db: Db, streamId: number, name: string): Promise<void> {
  await db.pool.query('UPDATE strata.streams SET time_column = $2 WHERE id = $1 AND time_column IS NULL', [streamId, name]);
}

/**
 * Changes a stream's description, labels or feature settings (PATCH /v1/streams/{stream}); each
 * changed setting is applied by its module in the same transaction, and the change is audited
 * with the values before and after.
 */
export async function updateStream(db: Db, name: string, patch: StreamPatch, actor: Actor): Promise<Stream> {
  await withTransaction(db, async (tx) => {
    const { rows } = await tx.query<StreamRow>('SELECT * FROM strata.streams WHERE name = $1 AND deleted_at IS NULL FOR UPDATE', [name]);
    if (rows.length === 0) throw new AppError(404, 'not_found', `stream ${JSON.stringify(name)} does not exist`);
    const stream = toStream(rows[0], await loadColumns(tx, Number(rows[0].id)));
    const before: Record<string, unknown> = {};
    const after: Record<string, unknown> = {};
    const settings = { ...stream.settings };
    for (const [key, raw] of Object.entries(patch.settings)) {
      const h = settingHandler(key);
      if (!h) throw new AppError(400, 'invalid_body', `stream setting ${JSON.stringify(key)} is not supported by this server`);
      const next = raw === null ? null : h.parse(raw, stream);
      const prev = (settings[key] ?? null) as never;
      // Later settings see the earlier ones of the same request (e.g. retention the new rollup levels).
      await h.apply?.(tx, { ...stream, settings: { ...settings } }, prev, next as never, actor);
      before[key] = prev;
      after[key] = next;
      if (next === null) delete settings[key];
      else settings[key] = next;
    }
    if (patch.description !== undefined) { before.description = stream.description; after.description = patch.description; }
    if (patch.labels !== undefined) { before.labels = stream.labels; after.labels = patch.labels; }
    await tx.query(
      `UPDATE strata.streams SET settings = $2, description = CASE WHEN $3 THEN $4 ELSE description END,
              labels = coalesce($5, labels), updated_at = now() WHERE id = $1`,
      [stream.id, JSON.stringify(settings), patch.description !== undefined, patch.description ?? null,
        patch.labels === undefined ? null : JSON.stringify(patch.labels)]);
    await appendAudit(tx, actor, 'stream.update', `stream:${name}`, { before, after });
  });
  return (await getStream(db.pool, name)) as Stream;
}
