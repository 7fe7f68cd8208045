// strata query STREAM: raw rows or aggregates to a file or stdout, with a progress line.
import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { flag, list, parse, str, tags } from '../args.ts';
import { type CliCommand, EXIT, UsageError } from '../command.ts';
import { get } from '../http.ts';
import { ProgressLine, formatBytes } from '../progress.ts';
import { CONNECTION_USAGE, connection, connectionOptions } from '../settings.ts';

const FORMATS = ['csv', 'arrow', 'parquet', 'json'];

const usage = `usage: strata query STREAM --from T --to T [--resolution R] [--fields F,…] [--tag k=v]…
                    [--format csv|arrow|parquet|json] [--limit N] [-o FILE]

Exports rows of STREAM (GET /v1/streams/STREAM/query): raw rows by default, or aggregates with
--resolution (a rollup level or interval, see "Queries"). T is an RFC 3339 instant with a zone.
Writes to FILE, or to stdout; the progress line (bytes, rate) goes to stderr when it is a
terminal, and a final line with the size otherwise.

  --format F   csv (default), arrow (IPC stream), parquet or json
  --fields     comma-separated column names (default all)
  --tag k=v    only rows with this tag value (repeatable)
${CONNECTION_USAGE}
Exit: 0 written, 1 refused by the server (the message says why), 2 bad argument, 3 server unavailable.`;

export const query: CliCommand = {
  name: 'query',
  usage,
  async run(args) {
    const p = parse(args, {
      ...connectionOptions, from: { type: 'string' }, to: { type: 'string' }, resolution: { type: 'string' }, fields: { type: 'string', multiple: true },
      tag: { type: 'string', multiple: true }, format: { type: 'string' }, limit: { type: 'string' }, output: { type: 'string', short: 'o' },
    });
    if (flag(p, 'help')) { process.stdout.write(`${usage}\n`); return EXIT.ok; }
    if (p.positionals.length !== 1) throw new UsageError(p.positionals.length === 0 ? 'no STREAM given' : `one STREAM only, got ${p.positionals.join(' ')}`);
    const format = str(p, 'format') ?? 'csv';
    if (!FORMATS.includes(format)) throw new UsageError(`--format ${JSON.stringify(format)}: use ${FORMATS.join(', ')}`);
    const q = new URLSearchParams({ format });
    for (const name of ['from', 'to', 'resolution', 'limit']) { const v = str(p, name); if (v !== undefined) q.set(name, v); }
    const fields = list(p, 'fields');
    if (fields.length) q.set('fields', fields.join(','));
    for (const [k, v] of tags(p)) q.append(`tag.${k}`, v);
    const conn = connection(p);
    const res = await get(conn, `/v1/streams/${encodeURIComponent(p.positionals[0])}/query?${q}`);
    const out = str(p, 'output');
    const bar = new ProgressLine(out ?? 'stdout', null);
    let bytes = 0;
    const counter = new Transform({ transform(chunk: Buffer, _e, cb) { bytes += chunk.length; bar.update(bytes); cb(null, chunk); } });
    await pipeline(res, counter, out ? createWriteStream(out) : process.stdout);
    const secs = bar.elapsedSeconds;
    bar.finish(`${out ?? 'stdout'}: ${formatBytes(bytes)} of ${format} in ${secs.toFixed(1)} s (${formatBytes(bytes / Math.max(secs, 1e-3))}/s)`);
    return EXIT.ok;
  },
};
