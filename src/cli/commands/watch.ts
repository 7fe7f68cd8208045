// strata watch DIR --stream S: the instrument-folder uploader. See "From an instrument PC" in the
// README for the guarantees; in short: a file goes up once it is complete (size and mtime stable
// for the settle time), exactly once (journal + Idempotency-Key), in order of modification, and
// waits on this machine, retried with backoff, while the server is away.
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { copyFile, mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { count, flag, parse, seconds, str, tags } from '../args.ts';
import { type CliCommand, EXIT, UsageError } from '../command.ts';
import { detectFileType } from '../content-type.ts';
import { globToRegExp } from '../glob.ts';
import { Journal, fileKey } from '../journal.ts';
import { CONNECTION_USAGE, connection, connectionOptions } from '../settings.ts';
import { fileSha256, uploadWithRetry } from '../upload.ts';
import { readProvenance } from './push.ts';

const usage = `usage: strata watch DIR --stream S [--pattern GLOB] [--done-dir DIR] [--settle SECONDS]
                    [--poll SECONDS] [--journal FILE] [--tag k=v]… [--provenance JSON|@FILE] [--once]

Uploads every file that appears in DIR (not its subfolders) to stream S, once, after it is
complete: its size and modification time have not changed for --settle seconds (default 5).
Files whose names start with "." or "~" or end in .tmp, .part, .partial or .crdownload are
never taken: an instrument that writes under such a name and renames the file when it is done
has it taken at once. Files go up oldest first, one at a time.

  --pattern GLOB     only names matching GLOB (*, ?, [abc], {a,b}); default every file
  --done-dir DIR     move each stored file there (default: leave it, recorded as done)
  --journal FILE     the journal (default DIR/.strata-watch.jsonl): which files were stored,
                     with their size, SHA-256 and ingest id; append-only, fsync'ed
  --poll SECONDS     how often the folder is scanned besides change notifications (default 2)
  --backoff SECONDS  first wait before a retry (default 1), doubling up to --max-backoff
  --max-backoff SECONDS  longest wait between retries while the server is away (default 60)
  --retries N        give up on a file after N retries (default: never; with --once, exit 3)
  --once             upload what is in DIR, then exit
${CONNECTION_USAGE}
Every upload is logged on stdout with its ingest id. A file the server refuses (4xx) is logged,
recorded in the journal and left in place; it is tried again only if its bytes change.
Exit: 0 stopped (Ctrl-C, SIGTERM) or --once done, 1 --once and a file was refused, 2 bad argument,
      3 --once and --retries ran out while the server was away.`;

const SKIP = /^[.~]|\.(tmp|part|partial|crdownload|swp)$/i;

interface Seen { size: number; mtimeMs: number; since: number }

function log(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

async function moveInto(file: string, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const { name, ext } = path.parse(file);
  for (let i = 0; ; i++) {
    const to = path.join(dir, i === 0 ? `${name}${ext}` : `${name}.${i}${ext}`);
    try {
      await stat(to);
      continue; // taken: an earlier file of the same name
    } catch { /* free */ }
    try {
      await rename(file, to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      await copyFile(file, to);
      await unlink(file);
    }
    return to;
  }
}

export const watch: CliCommand = {
  name: 'watch',
  usage,
  async run(args) {
    const p = parse(args, {
      ...connectionOptions, stream: { type: 'string', short: 's' }, pattern: { type: 'string' }, 'done-dir': { type: 'string' },
      settle: { type: 'string' }, poll: { type: 'string' }, journal: { type: 'string' }, tag: { type: 'string', multiple: true },
      provenance: { type: 'string' }, 'max-backoff': { type: 'string' }, backoff: { type: 'string' }, once: { type: 'boolean' }, retries: { type: 'string' },
    });
    if (flag(p, 'help')) { process.stdout.write(`${usage}\n`); return EXIT.ok; }
    if (p.positionals.length !== 1) throw new UsageError(p.positionals.length === 0 ? 'no DIR given' : `one DIR only, got ${p.positionals.length}`);
    const dir = path.resolve(p.positionals[0]);
    const stream = str(p, 'stream');
    if (!stream) throw new UsageError('--stream is required');
    try {
      if (!(await stat(dir)).isDirectory()) throw new UsageError(`${dir} is not a directory`);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`DIR ${dir}: ${(err as Error).message}`);
    }
    let pattern: RegExp | null = null;
    try { pattern = str(p, 'pattern') ? globToRegExp(str(p, 'pattern') as string) : null; } catch (err) { throw new UsageError(`--pattern: ${(err as Error).message}`); }
    const doneDir = str(p, 'done-dir') ? path.resolve(str(p, 'done-dir') as string) : null;
    const settleMs = seconds(p, 'settle', 5) * 1000;
    const pollMs = Math.max(seconds(p, 'poll', 2) * 1000, 50);
    const tagList = tags(p);
    const provenance = readProvenance(str(p, 'provenance'));
    const conn = connection(p);
    const once = flag(p, 'once');
    const journal = new Journal(path.resolve(str(p, 'journal') ?? path.join(dir, '.strata-watch.jsonl')));
    const policy = { retries: count(p, 'retries', Number.MAX_SAFE_INTEGER), baseMs: seconds(p, 'backoff', 1) * 1000, maxMs: seconds(p, 'max-backoff', 60) * 1000 };
    const fault = process.env.STRATA_WATCH_FAULT;

    const stop = new AbortController();
    const onSignal = (): void => { log('stopping'); stop.abort(); wake(); };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let wake: () => void = () => undefined;
    let watcher: FSWatcher | null = null;
    try {
      // Notifications make the watcher quick; the scan every --poll makes it right where they do not exist.
      watcher = fsWatch(dir, { persistent: false }, () => wake());
      watcher.on('error', () => { watcher?.close(); watcher = null; });
    } catch { watcher = null; }

    const seen = new Map<string, Seen>();
    /** Files known finished at this size and mtime, so that they are not hashed again each scan. */
    const finished = new Map<string, string>();
    let refused = 0;
    let gaveUp = 0;
    log(`watching ${dir} for stream ${stream}${doneDir ? `, moving stored files to ${doneDir}` : ''}; journal ${journal.file}`);

    async function settledFiles(): Promise<{ files: string[]; waiting: number }> {
      const now = Date.now();
      const entries = await readdir(dir, { withFileTypes: true });
      const ready: { name: string; mtimeMs: number }[] = [];
      let waiting = 0;
      const present = new Set<string>();
      for (const e of entries) {
        if (!e.isFile() || SKIP.test(e.name) || (pattern && !pattern.test(e.name))) continue;
        const full = path.join(dir, e.name);
        if (full === journal.file) continue;
        let st;
        try { st = await stat(full); } catch { continue; }
        present.add(e.name);
        if (finished.get(e.name) === `${st.size}:${st.mtimeMs}`) continue;
        const prev = seen.get(e.name);
        if (!prev || prev.size !== st.size || prev.mtimeMs !== st.mtimeMs) {
          // First sight of an old file (present at start, renamed into place): its quiet time began at its mtime.
          seen.set(e.name, { size: st.size, mtimeMs: st.mtimeMs, since: prev ? now : Math.min(now, st.mtimeMs) });
        }
        const s = seen.get(e.name) as Seen;
        if (now - s.since >= settleMs) ready.push({ name: e.name, mtimeMs: st.mtimeMs });
        else waiting++;
      }
      for (const name of seen.keys()) if (!present.has(name)) seen.delete(name);
      ready.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : 1));
      return { files: ready.map((r) => r.name), waiting };
    }

    async function handle(name: string): Promise<void> {
      const full = path.join(dir, name);
      const before = await stat(full);
      const sha256 = await fileSha256(full);
      const after = await stat(full);
      if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
        seen.set(name, { size: after.size, mtimeMs: after.mtimeMs, since: Date.now() });
        return; // changed while it was read: not complete after all
      }
      const size = after.size;
      const k = fileKey(name, size, sha256);
      const done = journal.finished.get(k);
      if (done) {
        if (done.event === 'stored' && doneDir && !journal.moved.has(`${name}\n${sha256}`)) await moveDone(full, name, sha256);
        finished.set(name, `${size}:${after.mtimeMs}`);
        return;
      }
      const type = await detectFileType(full);
      if (!type) {
        journal.append({ event: 'refused', file: name, size, sha256, code: 'unknown_format', message: 'not a format Strata reads', at: new Date().toISOString() });
        log(`refused ${name}: unknown_format: not a format Strata reads (HDF5, netCDF4, Parquet, Arrow, CSV, TSV)`);
        refused++;
        finished.set(name, `${size}:${after.mtimeMs}`);
        return;
      }
      const resend = journal.unfinished.has(k);
      journal.append({ event: 'sending', file: name, size, sha256, at: new Date().toISOString() });
      if (resend) log(`sending ${name} again: its last upload has no recorded outcome`);
      const r = await uploadWithRetry({
        conn, stream: stream as string, path: full, filename: name, size, sha256, contentType: type.contentType,
        contentEncoding: type.contentEncoding, tags: tagList, provenance,
      }, {
        ...policy, signal: stop.signal,
        onRetry: (attempt, delay, reason) => process.stderr.write(`${new Date().toISOString()} ${name}: attempt ${attempt} failed (${reason}); next in ${(delay / 1000).toFixed(1)} s\n`),
      });
      if (!r.ok && !r.permanent) { gaveUp++; return; } // stopping, or out of --retries: the file stays for the next run
      if (r.ok && fault === 'kill-after-upload') process.kill(process.pid, 'SIGKILL');
      const at = new Date().toISOString();
      if (r.ok) {
        journal.append({ event: 'stored', file: name, size, sha256, ingest: r.ingestId, rows: r.rows, duplicate: r.duplicate, at });
        log(`stored ${name} ingest=${r.ingestId} rows=${r.rows}${r.duplicate ? ' duplicate' : ''} sha256=${sha256}`);
        if (doneDir) await moveDone(full, name, sha256);
      } else {
        journal.append({ event: 'refused', file: name, size, sha256, code: r.code, message: r.message, at });
        log(`refused ${name}: ${r.status} ${r.code}: ${r.message}`);
        refused++;
      }
      finished.set(name, `${size}:${after.mtimeMs}`);
    }

    async function moveDone(full: string, name: string, sha256: string): Promise<void> {
      const to = await moveInto(full, doneDir as string);
      journal.append({ event: 'moved', file: name, sha256, to, at: new Date().toISOString() });
      finished.delete(name);
      seen.delete(name);
    }

    try {
      while (!stop.signal.aborted) {
        const { files, waiting } = await settledFiles();
        for (const name of files) {
          if (stop.signal.aborted) break;
          try {
            await handle(name);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // gone before it could be read
            throw err;
          }
        }
        if (once && (gaveUp > 0 || (waiting === 0 && (await settledFiles()).files.length === 0))) break;
        if (stop.signal.aborted) break;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, once ? Math.min(pollMs, 200) : pollMs);
          wake = () => { clearTimeout(t); setTimeout(resolve, 100); };
        });
      }
    } finally {
      (watcher as FSWatcher | null)?.close();
      journal.close();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    if (stop.signal.aborted) return EXIT.ok;
    return refused > 0 ? EXIT.failed : gaveUp > 0 ? EXIT.unavailable : EXIT.ok;
  },
};
