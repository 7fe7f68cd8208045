// The request body as an async iterable of byte chunks, read with backpressure: from Node's
// IncomingMessage when served by @hono/node-server, or from the Fetch body in in-process tests.
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { AppError } from '../errors/index.ts';

/**
 * The request body, chunk by chunk. When the client sends nothing for `idleTimeoutMs` while the
 * server waits for bytes, reading fails with 408 body_timeout: a stalled or crawling client must
 * not hold an upload slot and a database transaction for ever. Time the server spends not reading
 * (storing what it has, backpressure) does not count.
 */
export function requestBody(c: Context, opts: { idleTimeoutMs?: number } = {}): AsyncIterable<Uint8Array> {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  const source: AsyncIterable<Uint8Array> = incoming && typeof incoming[Symbol.asyncIterator] === 'function'
    // Our own generator: apache-arrow destroys a source it was handed when it stops reading,
    // which would kill the socket before the response is written.
    ? (async function* () {
      for await (const chunk of incoming) yield chunk as Buffer;
    })()
    : fetchBody(c.req.raw.body);
  return opts.idleTimeoutMs ? withIdleTimeout(source, opts.idleTimeoutMs) : source;
}

async function* fetchBody(body: ReadableStream<Uint8Array> | null): AsyncGenerator<Uint8Array> {
  if (!body) return;
  const reader = body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

async function* withIdleTimeout(source: AsyncIterable<Uint8Array>, idleMs: number): AsyncGenerator<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  let received = 0;
  let finished = false;
  try {
    while (true) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AppError(408, 'body_timeout',
          `no body bytes arrived for ${idleMs / 1000} s after ${received} bytes (STRATA_BODY_IDLE_TIMEOUT); the upload was not stored`,
          { detail: { received_bytes: received, idle_timeout_ms: idleMs } })), idleMs);
      });
      let next: IteratorResult<Uint8Array>;
      try {
        next = await Promise.race([it.next(), idle]);
      } finally {
        clearTimeout(timer);
      }
      if (next.done) {
        finished = true;
        return;
      }
      received += next.value.byteLength;
      yield next.value;
    }
  } finally {
    // A pending next() of the source is left to settle on its own (the connection is closed
    // after the 408); returning the source ends it.
    if (!finished) void Promise.resolve(it.return?.()).catch(() => undefined);
  }
}

/** A header value decoded as UTF-8 (Node reads header bytes as Latin-1); null when not valid UTF-8. */
export function utf8Header(c: Context, name: string): string | undefined | null {
  const raw = c.req.header(name);
  if (raw === undefined) return undefined;
  if (!/[\u0080-\u00ff]/.test(raw)) return raw;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(raw, 'latin1'));
  } catch {
    return null;
  }
}

/**
 * The filename from Content-Disposition (filename*= UTF-8 form preferred), kept as data only and
 * verbatim: its length and characters are checked by the ingest, which refuses what it cannot keep.
 * Null when filename*= is not valid percent-encoded UTF-8.
 */
export function dispositionFilename(header: string | undefined): string | undefined | null {
  if (!header) return undefined;
  const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim());
    } catch {
      return null; // not percent-encoded UTF-8: refused rather than silently dropped
    }
  }
  const quoted = /filename\s*=\s*"((?:[^"\\]|\\.)*)"/.exec(header);
  if (quoted) return quoted[1].replace(/\\(.)/g, '$1');
  const bare = /filename\s*=\s*([^;\s]+)/.exec(header);
  return bare ? bare[1] : undefined;
}
