// Originals: the body of every committed ingest, kept byte for byte, content-addressed by its
// SHA-256 under <archive>/<first two hex digits>/<sha256>. Identical bodies share one file.
import { createHash } from 'node:crypto';
import { type FileHandle, copyFile, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/** Relative path of an original in the archive; derived from the hash alone, never from user input. */
export function archiveRelativePath(sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error('not a SHA-256 hex digest');
  return path.join(sha256.slice(0, 2), sha256);
}

/** Moves a spooled body into the archive; returns its relative path. */
export async function archiveOriginal(archiveDir: string, spoolPath: string, sha256: string): Promise<string> {
  const rel = archiveRelativePath(sha256);
  const dest = path.join(archiveDir, rel);
  const exists = await stat(dest).then(() => true, () => false);
  if (exists) {
    await rm(spoolPath, { force: true });
    return rel;
  }
  await mkdir(path.dirname(dest), { recursive: true });
  try {
    await rename(spoolPath, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const tmp = `${dest}.part`;
    await copyFile(spoolPath, tmp);
    await rename(tmp, dest);
    await rm(spoolPath, { force: true });
  }
  return rel;
}

export type OriginalCheck =
  | { state: 'ok'; bytes: number; read(): AsyncGenerator<Uint8Array> }
  | { state: 'missing' }
  | { state: 'mismatch'; sha256: string; bytes: number };

/**
 * Opens an original and re-checks its SHA-256 before anyone may read it. The bytes served are
 * read through the same open file as the bytes hashed, so a file swapped in between (renamed
 * over) is never served under the old hash. The caller must read() to the end or return() it,
 * which closes the file; for 'missing' and 'mismatch' nothing stays open.
 */
export async function openVerifiedOriginal(archiveDir: string, rel: string, expectedSha256: string): Promise<OriginalCheck> {
  let fh: FileHandle;
  try {
    fh = await open(path.join(archiveDir, rel), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw err;
  }
  try {
    const h = createHash('sha256');
    let bytes = 0;
    for await (const chunk of fh.createReadStream({ start: 0, autoClose: false, highWaterMark: 1 << 20 })) {
      h.update(chunk as Buffer);
      bytes += (chunk as Buffer).byteLength;
    }
    const sha256 = h.digest('hex');
    if (sha256 !== expectedSha256) {
      await fh.close();
      return { state: 'mismatch', sha256, bytes };
    }
    return {
      state: 'ok',
      bytes,
      async *read() {
        try {
          for await (const chunk of fh.createReadStream({ start: 0, autoClose: false, highWaterMark: 1 << 20 })) yield chunk as Buffer;
        } finally {
          await fh.close();
        }
      },
    };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}
