// The copy of a base backup's files, in a child process of its own (started by base-backup.ts at
// nice 19): reading, SHA-256 and writing a cluster of gigabytes is CPU work that would otherwise run
// on the server's event loop, between the COPY rows of the uploads. Receives one job, answers one
// message per file in the order given, then `done`.
import { copyHashed } from './files.ts';
import path from 'node:path';
import { Pacer, rateLimit } from '../jobs/pause.ts';

export interface CopyJob { pgDir: string; dest: string; files: string[]; pausePercent: number; busyPausePercent: number; maxBytesPerSecond: number }
/** From the server while the copy runs: whether uploads are running (it then pauses for busyPausePercent). */
export interface CopyNotice { type: 'busy'; busy: boolean }
export type CopyAnswer =
  | { type: 'file'; path: string; bytes: number; sha256: string }
  | { type: 'gone'; path: string }
  | { type: 'error'; message: string }
  | { type: 'done'; pausedMs: number };

/**
 * The copy is written back every this many bytes (fdatasync): a few MiB at a time, steadily, instead
 * of up to a GB per file at its end, which stalled PostgreSQL's WAL fsyncs behind it.
 */
const SYNC_EVERY_BYTES = 8 * 1024 * 1024;

function send(m: CopyAnswer): Promise<void> {
  return new Promise((resolve, reject) => {
    process.send?.(m, undefined, {}, (err) => (err ? reject(err) : resolve()));
  });
}

async function run(job: CopyJob): Promise<void> {
  const pacer = new Pacer({ idlePercent: job.pausePercent, busyPercent: job.busyPausePercent, busy: () => uploadsRunning });
  // Beside uploads the bound is the share of it the pauses leave: 1 / (1 + busy pause).
  const rate = rateLimit(job.maxBytesPerSecond, () => pacer.busySlowdown());
  // The pauses are a share of the copying time only: the rate bound's sleeps are not copying.
  const pace = async (bytes: number): Promise<void> => {
    await pacer.step();
    await rate(bytes);
    pacer.rested();
  };
  for (const f of job.files) {
    try {
      const c = await copyHashed(path.join(job.pgDir, f), path.join(job.dest, f), pace, SYNC_EVERY_BYTES);
      await send({ type: 'file', path: f, ...c });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // a relation dropped meanwhile: the WAL says so
      await send({ type: 'gone', path: f });
    }
  }
  await send({ type: 'done', pausedMs: Math.round(pacer.pausedMs) });
}

let uploadsRunning = false;
let started = false;
process.on('message', (m: CopyJob | CopyNotice) => {
  if ('type' in m) {
    uploadsRunning = m.busy;
    return;
  }
  if (started) return;
  started = true;
  run(m).then(() => process.disconnect(), async (err: unknown) => {
    await send({ type: 'error', message: (err as Error).message }).catch(() => undefined);
    process.disconnect();
  });
});
