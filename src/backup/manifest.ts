// What a base backup holds and how to find the backups in a backup directory:
//   <dir>/base/<id>/manifest.json   this file (written last: a backup without it is incomplete)
//   <dir>/base/<id>/pg/…            the cluster's files as copied between pg_backup_start and _stop
//   <dir>/wal/                      archived WAL, shared by every backup (wal-archive.ts)
//   <dir>/originals/<xx>/<sha256>   copies of the originals, shared (content-addressed)
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';

export const MANIFEST_FORMAT = 1;

export interface ManifestFile { path: string; bytes: number; sha256: string }

export interface Manifest {
  format: number;
  id: string;
  started_at: string;
  finished_at: string;
  /** The WAL range the backup needs replayed: from start_lsn (in start_wal) to stop_lsn (in stop_wal). */
  start_lsn: string;
  stop_lsn: string;
  start_wal: string;
  stop_wal: string;
  timeline: number;
  wal_segment_bytes: number;
  system_identifier: string;
  postgresql_version: string;
  strata_version: string;
  /** The audit log's newest entry when the copy ended: a restored database must contain it. */
  audit_head: { seq: number; hash: string } | null;
  ingests: { committed: number; rows: number };
  files: ManifestFile[];
  originals: { sha256: string; bytes: number }[];
  bytes: number;
}

export function baseDir(backupDir: string): string {
  return path.join(backupDir, 'base');
}

export function originalsDir(backupDir: string): string {
  return path.join(backupDir, 'originals');
}

export async function readManifest(backupDir: string, id: string): Promise<Manifest> {
  const file = path.join(baseDir(backupDir), id, 'manifest.json');
  const m = JSON.parse(await readFile(file, 'utf8')) as Manifest;
  if (m.format !== MANIFEST_FORMAT) throw new Error(`${file}: manifest format ${m.format} is not one this Strata reads (${MANIFEST_FORMAT})`);
  return m;
}

/** The complete backups in a backup directory, oldest first. */
export async function listBackups(backupDir: string): Promise<Manifest[]> {
  const ids = (await readdir(baseDir(backupDir)).catch(() => [] as string[])).filter((n) => /^\d{8}T\d{6}(\d{3})?Z$/.test(n)).sort();
  const out: Manifest[] = [];
  for (const id of ids) {
    const m = await readManifest(backupDir, id).catch(() => null);
    if (m) out.push(m);
  }
  return out;
}
