// The request body as an async iterable of byte chunks, read with backpressure: from Node's
// IncomingMessage when served by @hono/node-server, or from the Fetch body in in-process tests.
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';

export function requestBody(c: Context): AsyncIterable<Uint8Array> {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming && typeof incoming[Symbol.asyncIterator] === 'function') {
    // Our own generator: apache-arrow destroys a source it was handed when it stops reading,
    // which would kill the socket before the response is written.
    return (async function* () {
      for await (const chunk of incoming) yield chunk as Buffer;
    })();
  }
  const body = c.req.raw.body;
  return (async function* () {
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
  })();
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
