// Continuous WAL archiving of the embedded PostgreSQL. PostgreSQL hands every finished WAL segment
// (and, after archive_timeout, a segment that was switched early) to archive_command; ours is a
// small shell script Strata writes into the backup directory at each start. It copies the segment
// atomically (temporary name, fsync, rename, fsync of the directory) and writes its SHA-256 beside
// it, so that a restore can refuse a damaged segment by name instead of letting recovery stop at
// the damage as if the WAL simply ended there. The script needs a POSIX shell with cp, cmp,
// sha256sum and sync(1) with file operands (GNU coreutils ≥ 8.24): Linux. Other systems get no
// archiving from the embedded server (README, "Backups and recovery").
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, chown, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { OsIds } from '../db/embedded-layout.ts';

export const ARCHIVE_SCRIPT_NAME = 'strata-archive-wal.sh';

const SCRIPT = `#!/bin/sh
# Written by Strata at each start: archive_command of its embedded PostgreSQL (src/backup/wal-archive.ts).
# Copies one WAL file into the archive atomically and durably, with its SHA-256 beside it.
# $1: the file's path (relative to the data directory), $2: its name, $3: the archive directory.
set -eu
src=$1; name=$2; dir=$3
if [ -f "$dir/$name" ]; then
  # Archived already (PostgreSQL tries again after a crash): a success only when identical.
  cmp -s "$src" "$dir/$name"
  exit $?
fi
tmp="$dir/.$name.$$"
cp "$src" "$tmp"
sum=$(sha256sum "$tmp" | cut -d' ' -f1)
printf '%s\\n' "$sum" > "$tmp.sha256"
sync "$tmp" "$tmp.sha256"
mv "$tmp.sha256" "$dir/$name.sha256"
mv "$tmp" "$dir/$name"
sync "$dir"
`;

/** The directory of archived WAL inside a backup directory. */
export function walDir(backupDir: string): string {
  return path.join(backupDir, 'wal');
}

/** Paths that go into a postgres -c value inside single quotes: no quotes, no white space. */
function assertPlainPath(p: string, what: string): void {
  if (/['"\s\\$`]/.test(p)) throw new Error(`cannot archive WAL: the ${what} ${JSON.stringify(p)} contains a quote, a space or a shell character; choose a plainer STRATA_BACKUP_DIR`);
}

/**
 * Writes the archive script and makes the WAL directory writable by the OS user PostgreSQL runs
 * as; returns the settings that turn archiving on (archive_mode needs a restart, so they are
 * given on the postmaster's command line at every start).
 */
export async function prepareArchiving(backupDir: string, timeoutMs: number, ids: OsIds): Promise<Record<string, string>> {
  if (process.platform === 'win32') throw new Error('cannot archive WAL from the embedded PostgreSQL on Windows (its archive_command is a POSIX shell script); run PostgreSQL yourself with DATABASE_URL and back it up with its own tools');
  const dir = walDir(backupDir);
  assertPlainPath(dir, 'WAL archive directory');
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await chmod(backupDir, 0o755).catch(() => undefined);
  if (ids.uid !== undefined) await chown(dir, ids.uid, ids.gid as number);
  const script = path.join(backupDir, ARCHIVE_SCRIPT_NAME);
  await writeFile(script, SCRIPT, { mode: 0o755 });
  await chmod(script, 0o755);
  return {
    archive_mode: 'on',
    archive_command: `${script} %p %f ${dir}`,
    archive_timeout: `${Math.max(1, Math.round(timeoutMs / 1000))}s`,
    wal_level: 'replica',
  };
}

/** Settings of a server restored from the archive (recovery reads segments back with cp). */
export function restoreCommand(backupDir: string): string {
  const dir = walDir(backupDir);
  assertPlainPath(dir, 'WAL archive directory');
  return `cp ${dir}/%f %p`;
}

const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;

export interface SegmentName { timeline: number; log: number; seg: number }

export function parseSegment(name: string): SegmentName | null {
  const m = SEGMENT.exec(name);
  return m ? { timeline: parseInt(m[1], 16), log: parseInt(m[2], 16), seg: parseInt(m[3], 16) } : null;
}

/** Segments per 4 GiB "log" number (256 for the default 16 MiB segments). */
function segmentsPerLog(segmentBytes: number): number {
  return 0x1_0000_0000 / segmentBytes;
}

/** A segment's position in the WAL, comparable across "log" numbers. */
export function segmentNumber(s: SegmentName, segmentBytes: number): number {
  return s.log * segmentsPerLog(segmentBytes) + s.seg;
}

export function segmentName(timeline: number, n: number, segmentBytes: number): string {
  const per = segmentsPerLog(segmentBytes);
  const hex = (v: number): string => v.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(Math.floor(n / per))}${hex(n % per)}`;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface WalCheck {
  ok: boolean;
  /** Segments checked (from the backup's first segment on). */
  segments: number;
  /** The last segment of the backup's timeline present in the archive. */
  last: string | null;
  /** The first problem, naming the segment. */
  problem: { segment: string; reason: string } | null;
}

/**
 * Checks the archived WAL a restore of a backup needs: every segment of its timeline from
 * `firstSegment` on, without a gap, each matching the SHA-256 written beside it when it was archived.
 */
export async function checkArchivedWal(backupDir: string, firstSegment: string, segmentBytes: number, mustReach?: string): Promise<WalCheck> {
  const dir = walDir(backupDir);
  const first = parseSegment(firstSegment);
  if (!first) throw new Error(`not a WAL segment name: ${firstSegment}`);
  const names = (await readdir(dir).catch(() => [] as string[]))
    .map((n) => ({ n, s: parseSegment(n) }))
    .filter((x): x is { n: string; s: SegmentName } => x.s !== null && x.s.timeline === first.timeline
      && segmentNumber(x.s, segmentBytes) >= segmentNumber(first, segmentBytes))
    .sort((a, b) => segmentNumber(a.s, segmentBytes) - segmentNumber(b.s, segmentBytes));
  let expected = segmentNumber(first, segmentBytes);
  let checked = 0;
  for (const { n, s } of names) {
    const at = segmentNumber(s, segmentBytes);
    if (at !== expected) {
      return { ok: false, segments: checked, last: null, problem: { segment: segmentName(first.timeline, expected, segmentBytes), reason: 'missing from the archive (the segments after it cannot be replayed)' } };
    }
    const recorded = (await readFile(path.join(dir, `${n}.sha256`), 'utf8').catch(() => '')).trim();
    if (!/^[0-9a-f]{64}$/.test(recorded)) {
      return { ok: false, segments: checked, last: null, problem: { segment: n, reason: 'its checksum file is missing or unreadable' } };
    }
    const actual = await sha256File(path.join(dir, n));
    if (actual !== recorded) {
      return { ok: false, segments: checked, last: null, problem: { segment: n, reason: `damaged: its SHA-256 is ${actual}, ${recorded} when it was archived` } };
    }
    checked++;
    expected++;
  }
  const last = checked > 0 ? segmentName(first.timeline, expected - 1, segmentBytes) : null;
  if (mustReach && (last === null || last < mustReach)) {
    return { ok: false, segments: checked, last, problem: { segment: last === null ? firstSegment : segmentName(first.timeline, expected, segmentBytes), reason: `missing from the archive: the backup needs every segment up to ${mustReach}` } };
  }
  return { ok: true, segments: checked, last, problem: null };
}
