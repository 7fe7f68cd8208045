// strata push FILE… --stream S: uploads files with retries and one Idempotency-Key per file and
// stream, shows progress, and ends with a summary table.
import { stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { count, flag, parse, seconds, str, tags } from '../args.ts';
import { type CliCommand, EXIT, UsageError } from '../command.ts';
import { detectFileType } from '../content-type.ts';
import { ProgressLine, formatBytes } from '../progress.ts';
import { CONNECTION_USAGE, connection, connectionOptions } from '../settings.ts';
import { type UploadResult, fileSha256, uploadWithRetry } from '../upload.ts';

const usage = `usage: strata push FILE… --stream S [--tag k=v]… [--provenance JSON|@FILE]
                   [--content-type TYPE] [--retries N] [--backoff SECONDS] [--max-backoff SECONDS]

Uploads each FILE to stream S, one after another. The content type comes from the file's first
bytes (HDF5, netCDF4, Parquet, Arrow file or stream, CSV, TSV; gzip is sent with
Content-Encoding: gzip) unless --content-type is given. Network errors, 5xx and 429 are retried
(--retries, default 8) with exponential backoff and jitter (--backoff first wait, default 0.5 s;
--max-backoff, default 30 s), each retry with the same Idempotency-Key (the file's SHA-256 and
the stream), so no file is stored twice. Ends with a summary table on stdout.

  --stream S          the stream (created by the first upload unless it exists)
  --tag k=v           a constant tag on every row (repeatable)
  --provenance JSON   the Strata-Provenance header: JSON text, or @FILE to read it from a file
  --json              print the summary as JSON lines instead of a table
${CONNECTION_USAGE}
Exit: 0 all stored (or already stored), 1 a file was refused or unreadable,
      2 bad argument, 3 server unavailable after every retry.`;

export function readProvenance(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let text = value;
  if (value.startsWith('@')) {
    try { text = readFileSync(value.slice(1), 'utf8'); } catch (err) { throw new UsageError(`--provenance ${value}: ${(err as Error).message}`); }
  }
  try { return JSON.stringify(JSON.parse(text)); } catch (err) { throw new UsageError(`--provenance is not JSON: ${(err as Error).message}`); }
}

interface Row { file: string; result: UploadResult | { ok: false; permanent: true; code: string; message: string; status: null; attempts: number } }

export const push: CliCommand = {
  name: 'push',
  usage,
  async run(args) {
    const p = parse(args, {
      ...connectionOptions, stream: { type: 'string', short: 's' }, tag: { type: 'string', multiple: true }, provenance: { type: 'string' },
      'content-type': { type: 'string' }, retries: { type: 'string' }, backoff: { type: 'string' }, 'max-backoff': { type: 'string' }, json: { type: 'boolean' },
    });
    if (flag(p, 'help')) { process.stdout.write(`${usage}\n`); return EXIT.ok; }
    const stream = str(p, 'stream');
    if (!stream) throw new UsageError('--stream is required');
    if (p.positionals.length === 0) throw new UsageError('no FILE given');
    const policy = { retries: count(p, 'retries', 8), baseMs: seconds(p, 'backoff', 0.5) * 1000, maxMs: seconds(p, 'max-backoff', 30) * 1000 };
    const tagList = tags(p);
    const provenance = readProvenance(str(p, 'provenance'));
    const conn = connection(p);
    const rows: Row[] = [];
    // The Idempotency-Key needs a file's SHA-256 before its first byte is sent: the next file is
    // hashed while this one uploads, so only the first file's hash is a pass of its own.
    const hashes = new Map<string, Promise<string>>();
    const hashOf = (file: string): Promise<string> => {
      let h = hashes.get(file);
      if (!h) {
        h = fileSha256(file);
        h.catch(() => undefined); // read (and reported) when the file's turn comes
        hashes.set(file, h);
      }
      return h;
    };
    for (const [i, file] of p.positionals.entries()) rows.push({ file, result: await pushOne(file, p.positionals[i + 1]) });

    async function pushOne(file: string, next: string | undefined): Promise<Row['result']> {
      const fail = (code: string, message: string): Row['result'] => ({ ok: false, permanent: true, code, message, status: null, attempts: 0 });
      let size: number;
      try {
        const st = await stat(file);
        if (!st.isFile()) return fail('not_a_file', 'not a regular file');
        size = st.size;
      } catch (err) { return fail((err as NodeJS.ErrnoException).code ?? 'unreadable', (err as Error).message); }
      const forced = str(p, 'content-type');
      const type = forced ? { contentType: forced, name: forced } : await detectFileType(file);
      if (!type) return fail('unknown_format', 'not a format Strata reads (HDF5, netCDF4, Parquet, Arrow, CSV, TSV); give --content-type to send it anyway');
      let sha256: string;
      try { sha256 = await hashOf(file); } catch (err) { return fail((err as NodeJS.ErrnoException).code ?? 'unreadable', (err as Error).message); }
      if (next !== undefined) void stat(next).then((st) => { if (st.isFile()) void hashOf(next); }, () => undefined);
      const bar = new ProgressLine(path.basename(file), size);
      const result = await uploadWithRetry({
        conn, stream: stream as string, path: file, filename: path.basename(file), size, sha256,
        contentType: type.contentType, contentEncoding: type.contentEncoding, tags: tagList, provenance,
        onProgress: (sent) => bar.update(sent),
      }, {
        ...policy,
        onRetry: (attempt, delay, reason) => bar.finish(`${file}: attempt ${attempt} failed (${reason}); retrying in ${(delay / 1000).toFixed(1)} s`),
      });
      const secs = bar.elapsedSeconds;
      bar.finish(result.ok
        ? `${file}: ${formatBytes(size)} in ${secs.toFixed(1)} s (${formatBytes(size / Math.max(secs, 1e-3))}/s), ingest ${result.ingestId}, ${result.rows} rows${result.duplicate ? ' (already stored: duplicate)' : ''}`
        : `${file}: failed: ${result.code}: ${result.message}`);
      return result;
    }

    printSummary(rows, flag(p, 'json'));
    const failed = rows.filter((r) => !r.result.ok);
    for (const r of failed) if (!r.result.ok) process.stderr.write(`strata push: ${r.file} failed: ${r.result.code}: ${r.result.message}\n`);
    if (failed.length === 0) return EXIT.ok;
    return failed.every((r) => !r.result.ok && !r.result.permanent) ? EXIT.unavailable : EXIT.failed;
  },
};

function printSummary(rows: Row[], json: boolean): void {
  if (json) {
    for (const { file, result: r } of rows) {
      process.stdout.write(`${JSON.stringify(r.ok
        ? { file, status: r.duplicate ? 'duplicate' : 'stored', ingest: r.ingestId, rows: r.rows, attempts: r.attempts }
        : { file, status: 'failed', code: r.code, message: r.message, attempts: r.attempts })}\n`);
    }
    return;
  }
  const table = [['file', 'status', 'ingest', 'rows', 'attempts', 'note']];
  for (const { file, result: r } of rows) {
    table.push(r.ok
      ? [file, r.duplicate ? 'duplicate' : 'stored', r.ingestId, String(r.rows), String(r.attempts), '']
      : [file, 'failed', '', '', String(r.attempts), `${r.code}: ${r.message}`]);
  }
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table) process.stdout.write(`${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()}\n`);
}
