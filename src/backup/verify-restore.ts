// The checks a restored database must pass (after `strata restore`, in every restore drill, and
// with `strata verify-restore` on a copy an operator restored with their own tools):
//   1. the audit chain verifies up to its head (and holds the head a backup recorded);
//   2. every ingest the audit log records as committed up to the target is present, with the
//      rows its record and audit entry state, less those retention dropped or a retraction removed;
//   3. every archived original is in the archive directory and matches its SHA-256;
//   4. nothing after the target is present (no ingest committed, no audit entry written later).
import path from 'node:path';
import type { Queryable } from '../db/pool.ts';
import { type ChainAnchor, verifyAudit } from '../audit/log.ts';
import { DATA_SCHEMA, qualified } from '../db/sql.ts';
import { archiveRelativePath } from '../provenance/archive.ts';
import { sha256Of } from './files.ts';

export interface RestoreChecks {
  ok: boolean;
  /** The recovery target, or "latest". */
  target: string;
  audit: { ok: boolean; entries: number; head: string | null; head_seq: number; problem?: string };
  ingests: { committed: number; rows: number; problems: { ingest: string; problem: string }[] };
  originals: { checked: number; missing: { ingest: string; sha256: string }[]; mismatched: { ingest: string; sha256: string; actual: string }[] };
  after_target: { ingests: string[]; audit_entries: number[] };
}

const LISTED = 20;

export interface CheckOptions {
  archiveDir: string;
  /** Nothing may be committed after this instant (null: restored to the end of the WAL). */
  target: Date | null;
  /** Audit entries an outside copy holds (a backup's manifest), which the chain must contain. */
  anchors?: ChainAnchor[];
}

export async function checkRestored(db: Queryable, opts: CheckOptions): Promise<RestoreChecks> {
  const audit = await checkAudit(db, opts.anchors ?? []);
  const ingests = await checkIngests(db, opts.target);
  const originals = await checkOriginals(db, opts.archiveDir);
  const after = await afterTarget(db, opts.target);
  const ok = audit.ok && ingests.problems.length === 0 && originals.missing.length === 0 && originals.mismatched.length === 0
    && after.ingests.length === 0 && after.audit_entries.length === 0;
  return {
    ok, target: opts.target ? opts.target.toISOString() : 'latest', audit, ingests,
    originals: { ...originals, missing: originals.missing.slice(0, LISTED), mismatched: originals.mismatched.slice(0, LISTED) },
    after_target: after,
  };
}

async function checkAudit(db: Queryable, anchors: ChainAnchor[]): Promise<RestoreChecks['audit']> {
  const r = await verifyAudit(db, { anchors });
  if (r.ok) {
    return { ok: true, entries: r.entries, head: r.entries > 0 ? r.head : null, head_seq: r.entries };
  }
  return { ok: false, entries: r.entries, head: null, head_seq: r.entries, problem: `entry ${r.first_bad}: ${r.reason}` };
}

interface CommitEntry { ingest: string; rows: number; stream: string }

async function checkIngests(db: Queryable, target: Date | null): Promise<RestoreChecks['ingests']> {
  // What the (verified) audit log says was committed: the outside account the records are held to.
  const { rows: entries } = await db.query<{ ingest: string; rows: string; stream: string }>(
    `SELECT details ->> 'ingest_id' AS ingest, (details ->> 'rows') AS rows, details ->> 'stream' AS stream
       FROM strata.audit_log WHERE action = 'ingest.commit' AND ($1::timestamptz IS NULL OR at <= $1) ORDER BY seq`, [target]);
  const commits: CommitEntry[] = entries.map((e) => ({ ingest: e.ingest, rows: Number(e.rows), stream: e.stream }));
  const problems: { ingest: string; problem: string }[] = [];
  const { rows: records } = await db.query<{
    id: string; status: string; rows: string; stream_id: string | null; table_name: string | null; deleted: boolean;
    retracted: string | null; dropped: string | null;
  }>(
    `SELECT i.id, i.status, i.rows, i.stream_id, s.table_name, s.deleted_at IS NOT NULL AS deleted, i.rows_retracted AS retracted,
            (SELECT sum((a.details -> 'ingest_rows' ->> i.id::text)::bigint) FROM strata.audit_log a
              WHERE a.action = 'retention.drop' AND a.details -> 'ingests' @> jsonb_build_array(i.id::text)) AS dropped
       FROM strata.ingests i LEFT JOIN strata.streams s ON s.id = i.stream_id
      WHERE i.id = ANY($1::bigint[])`, [commits.map((c) => c.ingest)]);
  const byId = new Map(records.map((r) => [r.id, r]));
  const expected = new Map<string, Map<string, number>>();
  let totalRows = 0;
  for (const c of commits) {
    const r = byId.get(c.ingest);
    if (!r) { problems.push({ ingest: c.ingest, problem: 'committed (per the audit log) but its ingest record is missing' }); continue; }
    if (r.status !== 'committed' && r.status !== 'retracted') { problems.push({ ingest: c.ingest, problem: `committed per the audit log, but its record says ${r.status}` }); continue; }
    if (Number(r.rows) !== c.rows) { problems.push({ ingest: c.ingest, problem: `its record says ${r.rows} rows, its audit entry ${c.rows}` }); continue; }
    totalRows += c.rows;
    if (r.deleted || r.table_name === null) continue; // the stream was deleted: its rows went with it, and the audit log says so
    const left = r.status === 'retracted' ? 0 : c.rows - Number(r.dropped ?? 0);
    const t = expected.get(r.table_name) ?? new Map<string, number>();
    t.set(c.ingest, left);
    expected.set(r.table_name, t);
  }
  for (const [table, want] of expected) {
    const { rows } = await db.query<{ ingest_id: string; n: string }>(
      `SELECT ingest_id::text, count(*)::text AS n FROM ${qualified(DATA_SCHEMA, table)} WHERE ingest_id = ANY($1::bigint[]) GROUP BY 1`, [[...want.keys()]]);
    const have = new Map(rows.map((r) => [r.ingest_id, Number(r.n)]));
    for (const [id, n] of want) {
      const got = have.get(id) ?? 0;
      if (got !== n) problems.push({ ingest: id, problem: `${got} rows in ${table}, ${n} expected` });
    }
  }
  return { committed: commits.length, rows: totalRows, problems: problems.slice(0, LISTED) };
}

async function checkOriginals(db: Queryable, archiveDir: string): Promise<Omit<RestoreChecks['originals'], never>> {
  const { rows } = await db.query<{ id: string; sha256: string }>(
    `SELECT DISTINCT ON (sha256) id::text, sha256 FROM strata.ingests
      WHERE archive_path IS NOT NULL AND sha256 IS NOT NULL AND status <> 'rejected' ORDER BY sha256, id`);
  const out: RestoreChecks['originals'] = { checked: 0, missing: [], mismatched: [] };
  for (const r of rows) {
    out.checked++;
    const got = await sha256Of(path.join(archiveDir, archiveRelativePath(r.sha256))).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (got === null) out.missing.push({ ingest: r.id, sha256: r.sha256 });
    else if (got.sha256 !== r.sha256) out.mismatched.push({ ingest: r.id, sha256: r.sha256, actual: got.sha256 });
  }
  return out;
}

async function afterTarget(db: Queryable, target: Date | null): Promise<RestoreChecks['after_target']> {
  if (!target) return { ingests: [], audit_entries: [] };
  const ingests = await db.query<{ id: string }>('SELECT i.id::text AS id FROM strata.ingests i WHERE i.committed_at > $1 ORDER BY i.id LIMIT $2', [target, LISTED]);
  const audit = await db.query<{ seq: string }>('SELECT a.seq::text AS seq FROM strata.audit_log a WHERE a.at > $1 ORDER BY a.seq LIMIT $2', [target, LISTED]);
  return { ingests: ingests.rows.map((r) => r.id), audit_entries: audit.rows.map((r) => Number(r.seq)) };
}
