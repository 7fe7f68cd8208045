// Pruning by policy: the newest `keep` base backups stay, older ones go, and with them the WAL
// segments that only they needed — never a segment from the oldest kept backup's first one on,
// and never a timeline history file. Copies of originals are never pruned (ingest records are
// kept for ever, and so are the originals they refer to).
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { type Manifest, baseDir, listBackups } from './manifest.ts';
import { parseSegment, segmentNumber, walDir } from './wal-archive.ts';

export interface PruneResult { backups: string[]; wal_segments: number }

export async function pruneBackups(backupDir: string, keep: number): Promise<PruneResult> {
  const all = await listBackups(backupDir);
  if (all.length <= keep) return { backups: [], wal_segments: 0 };
  const doomed = all.slice(0, all.length - keep);
  const oldestKept = all[all.length - keep];
  for (const b of doomed) await rm(path.join(baseDir(backupDir), b.id), { recursive: true, force: true });
  return { backups: doomed.map((b) => b.id), wal_segments: await pruneWal(backupDir, oldestKept) };
}

/** Removes archived segments (of any timeline up to the kept backup's) older than the backup's first segment. */
async function pruneWal(backupDir: string, oldestKept: Manifest): Promise<number> {
  const first = parseSegment(oldestKept.start_wal);
  if (!first) return 0;
  const limit = segmentNumber(first, oldestKept.wal_segment_bytes);
  let removed = 0;
  for (const name of await readdir(walDir(backupDir)).catch(() => [] as string[])) {
    const base = name.replace(/\.(sha256|partial|partial\.sha256)$/, '').replace(/\.[0-9A-F]{8}\.backup(\.sha256)?$/, '');
    const s = parseSegment(base);
    if (!s || s.timeline > first.timeline || segmentNumber(s, oldestKept.wal_segment_bytes) >= limit) continue;
    await rm(path.join(walDir(backupDir), name), { force: true });
    if (name === base) removed++;
  }
  return removed;
}
