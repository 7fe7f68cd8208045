// strata verify-original INGEST_ID FILE: does this local file hold the bytes of that ingest?
import { stat } from 'node:fs/promises';
import { flag, parse } from '../args.ts';
import { type CliCommand, EXIT, UsageError } from '../command.ts';
import { get } from '../http.ts';
import { CONNECTION_USAGE, connection, connectionOptions } from '../settings.ts';
import { fileSha256 } from '../upload.ts';

const usage = `usage: strata verify-original INGEST_ID FILE

Compares FILE with the body the server recorded for ingest INGEST_ID (GET /v1/ingests/ID): its
SHA-256 against the ingest's sha256 (the bytes as sent) and content_sha256 (after
Content-Encoding was undone, e.g. the file a gzip upload was made from), and its size.
Prints one JSON line {"ok", "ingest", "file", "sha256", "matched"}.
${CONNECTION_USAGE}
Exit: 0 the file holds the ingest's bytes, 1 it does not (or no such ingest), 2 bad argument,
      3 server unavailable.`;

export const verifyOriginal: CliCommand = {
  name: 'verify-original',
  usage,
  async run(args) {
    const p = parse(args, { ...connectionOptions });
    if (flag(p, 'help')) { process.stdout.write(`${usage}\n`); return EXIT.ok; }
    if (p.positionals.length !== 2) throw new UsageError(`needs INGEST_ID and FILE, got ${p.positionals.length} argument(s)`);
    const [id, file] = p.positionals;
    if (!/^\d{1,18}$/.test(id)) throw new UsageError(`INGEST_ID must be a number, got ${JSON.stringify(id)}`);
    try {
      if (!(await stat(file)).isFile()) throw new UsageError(`FILE ${file} is not a regular file`);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`FILE ${file}: ${(err as Error).message}`);
    }
    const conn = connection(p);
    const res = await get(conn, `/v1/ingests/${id}`);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { ingest?: Record<string, unknown> } & Record<string, unknown>;
    const ingest = (body.ingest ?? body) as { sha256?: string; content_sha256?: string | null; status?: string };
    const sha256 = await fileSha256(file);
    const matched = sha256 === ingest.sha256 ? 'sha256' : sha256 === ingest.content_sha256 ? 'content_sha256' : null;
    process.stdout.write(`${JSON.stringify({ ok: matched !== null, ingest: id, file, sha256, matched, ingest_sha256: ingest.sha256, ingest_status: ingest.status })}\n`);
    return matched ? EXIT.ok : EXIT.failed;
  },
};
