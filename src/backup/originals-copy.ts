// Copies of the originals in the backup directory. The archive of originals lives on the file
// system beside the database; a restored database refers to originals by SHA-256, so the backup
// keeps a content-addressed copy of every archived original, brought up to date by each base
// backup and, between backups, every archive_timeout (so that originals are lost no more than
// WAL is).
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Queryable } from '../db/pool.ts';
import { archiveRelativePath } from '../provenance/archive.ts';
import { copyHashed } from './files.ts';
import { originalsDir } from './manifest.ts';

export interface OriginalsSync {
  copied: number;
  bytes: number;
  /** Originals the database refers to that the archive does not have (copied by nobody). */
  missing: { ingest: string; sha256: string }[];
  /** Every original the database refers to at this moment (for a manifest), when asked for. */
  all?: { sha256: string; bytes: number }[];
}

/** Ingests committed this long before the last pass are looked at again (uploads commit out of id order). */
const OVERLAP_MS = 10 * 60_000;
const STATE_FILE = '.synced-until';

/** Copies files (paths relative to `from`) into `to`, each hashed; what it answers for the files it found. */
export type CopyFiles = (from: string, to: string, files: string[]) => Promise<{ path: string; bytes: number; sha256: string }[]>;

/** One file after another, in this process. */
const copyHere: CopyFiles = async (from, to, files) => {
  const out: { path: string; bytes: number; sha256: string }[] = [];
  for (const f of files) {
    try {
      out.push({ path: f, ...await copyHashed(path.join(from, f), path.join(to, f)) });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return out;
};

/**
 * Copies the originals not yet in the backup. `full` looks at every ingest (a base backup);
 * otherwise only at those committed since the last pass. `copy` does the copying (a base backup
 * hands it to its paced copy process).
 */
export async function syncOriginals(db: Queryable, archiveDir: string, backupDir: string, full: boolean, copy: CopyFiles = copyHere): Promise<OriginalsSync> {
  const dir = originalsDir(backupDir);
  await mkdir(dir, { recursive: true });
  const since = full ? null : await readFile(path.join(dir, STATE_FILE), 'utf8').then((t) => new Date(Date.parse(t.trim()) - OVERLAP_MS), () => null);
  const passStarted = new Date();
  const { rows } = await db.query<{ id: string; sha256: string; bytes: string }>(
    `SELECT DISTINCT ON (sha256) id, sha256, bytes FROM strata.ingests
      WHERE archive_path IS NOT NULL AND sha256 IS NOT NULL AND status <> 'rejected'
        AND ($1::timestamptz IS NULL OR committed_at >= $1)
      ORDER BY sha256, id`, [since]);
  const out: OriginalsSync = { copied: 0, bytes: 0, missing: [], ...(full ? { all: [] } : {}) };
  const sizes = new Map<string, number>();
  const wanted: { id: string; sha256: string; rel: string }[] = [];
  for (const r of rows) {
    const rel = archiveRelativePath(r.sha256);
    const have = await stat(path.join(dir, rel)).catch(() => null);
    if (have) sizes.set(r.sha256, have.size);
    else wanted.push({ id: r.id, sha256: r.sha256, rel });
  }
  const copied = new Map((await copy(archiveDir, dir, wanted.map((w) => w.rel))).map((c) => [c.path, c]));
  for (const w of wanted) {
    const c = copied.get(w.rel);
    if (!c || c.sha256 !== w.sha256) {
      // Not in the archive, or copied bytes that are not the original: never kept under its name.
      if (c) await rm(path.join(dir, w.rel), { force: true });
      out.missing.push({ ingest: w.id, sha256: w.sha256 });
      continue;
    }
    out.copied++;
    out.bytes += c.bytes;
    sizes.set(w.sha256, c.bytes);
  }
  for (const r of rows) {
    const size = sizes.get(r.sha256);
    if (size !== undefined) out.all?.push({ sha256: r.sha256, bytes: size });
  }
  await writeFile(path.join(dir, STATE_FILE), `${passStarted.toISOString()}\n`);
  return out;
}
