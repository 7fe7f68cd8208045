// JSON request bodies (definitions, keys, holds): bounded in size and parsed with a clear error.
import type { Context } from 'hono';
import { AppError } from '../errors/index.ts';
import { findUnstorable } from '../db/storable.ts';
import { jsonDepth } from '../validation/json-schemas.ts';

export const MAX_JSON_BODY_BYTES = 1024 * 1024;
/** Deeper bodies are refused before validation walks them (no request body needs more). */
export const MAX_JSON_BODY_DEPTH = 64;

export async function readJson(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/([a-z.+-]*\+)?json\b/i.test(type)) {
    throw new AppError(415, 'unsupported_media_type', `send the body as JSON with Content-Type: application/json (got ${JSON.stringify(type)})`);
  }
  const length = Number(c.req.header('content-length') ?? 0);
  if (length > MAX_JSON_BODY_BYTES) throw new AppError(413, 'body_too_large', `JSON bodies are limited to ${MAX_JSON_BODY_BYTES} bytes`);
  const bytes = await readCapped(c.req.raw.body, MAX_JSON_BODY_BYTES);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new AppError(400, 'invalid_body', 'the body is not valid UTF-8; send JSON encoded as UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (err) {
    throw new AppError(400, 'invalid_body', `the body is not valid JSON: ${(err as Error).message}`);
  }
  if (jsonDepth(value, MAX_JSON_BODY_DEPTH) > MAX_JSON_BODY_DEPTH) {
    throw new AppError(400, 'invalid_body', `the body nests deeper than ${MAX_JSON_BODY_DEPTH} levels`);
  }
  const bad = findUnstorable(value);
  if (bad) throw new AppError(400, 'invalid_body', `the body cannot be stored: at ${bad.path} it contains ${bad.reason}`);
  return value;
}

/** The body's bytes, refused as soon as they pass `max` (a body without Content-Length too). */
async function readCapped(body: ReadableStream<Uint8Array> | null, max: number): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      throw new AppError(413, 'body_too_large', `JSON bodies are limited to ${max} bytes`);
    }
    parts.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.byteLength; }
  return out;
}
