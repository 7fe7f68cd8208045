// Spools a decoded body to a temporary file, for formats that need random access (Arrow IPC
// files, HDF5). The file is removed by whoever owns the returned handle.
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { AppError } from '../errors/index.ts';
import type { IngestBody } from './body.ts';
import { spoolFileName } from './upload-claims.ts';

export interface SpooledFile {
  path: string;
  size: number;
  /** Removes the file unless it is the body's own spool (kept for the archive). */
  remove(): Promise<void>;
}

/** A cap on the decoded bytes spooled, named after its setting in the 413 message. */
export interface SpoolLimit {
  maxBytes: number;
  setting: string;
}

function checkLimit(size: number, limit: SpoolLimit | undefined): void {
  if (limit && size > limit.maxBytes) {
    throw new AppError(413, 'body_too_large', `the file exceeds the limit of ${limit.maxBytes} bytes (${limit.setting})`,
      { detail: { limit: limit.maxBytes } });
  }
}

export async function spoolToFile(body: IngestBody, spoolDir: string, reuseRawSpool: boolean, limit?: SpoolLimit): Promise<SpooledFile> {
  if (reuseRawSpool && body.spoolPath) {
    let size = 0;
    for await (const chunk of body.chunks()) {
      size += chunk.byteLength;
      checkLimit(size, limit);
    }
    return { path: body.spoolPath, size, remove: async () => undefined };
  }
  await mkdir(spoolDir, { recursive: true });
  const file = path.join(spoolDir, spoolFileName('decoded', randomUUID()));
  const out = createWriteStream(file, { flags: 'wx' });
  let failure: Error | null = null;
  out.on('error', (err) => { failure ??= err; });
  let size = 0;
  try {
    for await (const chunk of body.chunks()) {
      size += chunk.byteLength;
      checkLimit(size, limit);
      if (failure) throw failure;
      if (!out.write(chunk)) await once(out, 'drain');
    }
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  } catch (err) {
    out.destroy();
    await rm(file, { force: true });
    throw err;
  }
  return { path: file, size, remove: () => rm(file, { force: true }) };
}
