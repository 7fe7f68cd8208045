// Copying files into and out of a backup: every copy is hashed as it is made, written under a
// temporary name, fsynced and renamed, so that a backup directory never holds half a file under
// its real name.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

export interface Copied { bytes: number; sha256: string }

/**
 * Copies src to dest (atomically, durably), returning the SHA-256 of the bytes copied. ENOENT: src is missing.
 * With `syncEvery`, the copy is fdatasynced after each that many bytes written, so that its dirty pages
 * in the page cache stay few: otherwise a 1 GB relation segment is written back all at once, at its
 * fsync or when the kernel's dirty threshold is reached, and PostgreSQL's WAL fsyncs wait behind it.
 */
export async function copyHashed(src: string, dest: string, pace?: (bytes: number) => Promise<void>, syncEvery = 0): Promise<Copied> {
  await mkdir(path.dirname(dest), { recursive: true });
  const input = await open(src, 'r');
  // A name of its own: two copies of one file may run at once (a backup's pass and the periodic one).
  const tmp = `${dest}.${process.pid}-${randomBytes(4).toString('hex')}.part`;
  const out = await open(tmp, 'w', 0o600);
  const h = createHash('sha256');
  let bytes = 0;
  let unsynced = 0;
  try {
    for await (const chunk of input.createReadStream({ highWaterMark: 1 << 20 })) {
      const b = chunk as Buffer;
      h.update(b);
      bytes += b.byteLength;
      await out.write(b);
      unsynced += b.byteLength;
      if (syncEvery > 0 && unsynced >= syncEvery) {
        await out.datasync();
        unsynced = 0;
      }
      await pace?.(b.byteLength);
    }
    await out.sync();
  } catch (err) {
    await out.close().catch(() => undefined);
    await input.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw Object.assign(new Error(`cannot copy ${src}: ${(err as Error).message}`, { cause: err }), { code: 'ECOPY' });
  }
  await input.close().catch(() => undefined);
  await out.close();
  await rename(tmp, dest);
  return { bytes, sha256: h.digest('hex') };
}

export async function sha256Of(file: string): Promise<Copied> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).byteLength;
  }
  return { bytes, sha256: h.digest('hex') };
}

/** fsync of a directory, so that the renames into it survive a crash. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
