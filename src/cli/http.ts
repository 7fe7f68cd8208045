// GET requests of the commands that read (query, verify-original): the answer as a Node stream,
// with retries on network errors, 5xx and 429 before any byte of the body was taken.
import http from 'node:http';
import https from 'node:https';
import { CliError, EXIT } from './command.ts';
import type { Connection } from './settings.ts';
import { backoffDelay, defaultPolicy } from './upload.ts';

export async function getOnce(conn: Connection, pathAndQuery: string): Promise<http.IncomingMessage> {
  const url = new URL(`${conn.url}${pathAndQuery}`);
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.get(url, { headers: { authorization: `Bearer ${conn.key}` }, agent: false }, resolve);
    req.on('error', reject);
  });
}

async function problem(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    const b = JSON.parse(text) as { code?: string; detail?: string; title?: string };
    return `${res.statusCode} ${b.code ?? ''}: ${b.detail ?? b.title ?? ''}`;
  } catch {
    return `${res.statusCode}: ${text.slice(0, 200)}`;
  }
}

/** A 200 answer, or a CliError saying why not (exit 1 for refusals, 3 when the server stayed away). */
export async function get(conn: Connection, pathAndQuery: string, retries = defaultPolicy.retries): Promise<http.IncomingMessage> {
  for (let attempt = 1; ; attempt++) {
    let reason: string;
    try {
      const res = await getOnce(conn, pathAndQuery);
      if (res.statusCode === 200) return res;
      reason = await problem(res);
      const status = res.statusCode ?? 0;
      if (status < 500 && status !== 429) throw new CliError(reason, EXIT.failed);
    } catch (err) {
      if (err instanceof CliError) throw err;
      reason = (err as Error).message;
    }
    if (attempt > retries) throw new CliError(`server unavailable: ${reason}`, EXIT.unavailable);
    await new Promise((r) => setTimeout(r, backoffDelay(attempt, defaultPolicy)));
  }
}
