// One file to one stream over HTTP, with the retry rules every uploader follows: network errors,
// 5xx (503 included) and 429 are retried with exponential backoff and full jitter (honouring
// Retry-After), each time with the same Idempotency-Key, derived from the file's SHA-256 and the
// stream, so a retry whose first attempt did commit is answered "duplicate" and stores nothing.
// Other 4xx answers are final: the file is wrong for this stream and retrying will not help.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Connection } from './settings.ts';

export interface UploadSpec {
  conn: Connection;
  stream: string;
  path: string;
  /** The name recorded as the ingest's filename. */
  filename: string;
  size: number;
  sha256: string;
  contentType: string;
  contentEncoding?: string;
  tags: [string, string][];
  provenance?: string;
  onProgress?: (sent: number) => void;
}

/** What one attempt got. */
export type UploadAnswer =
  | { ok: true; status: number; ingestId: string; rows: number; duplicate: boolean }
  | { ok: false; permanent: boolean; status: number | null; code: string; message: string; retryAfterMs?: number };

export type UploadResult = UploadAnswer & { attempts: number };

export interface RetryPolicy {
  /** Retries after the first attempt (Infinity: until it succeeds or fails for good). */
  retries: number;
  baseMs: number;
  maxMs: number;
  onRetry?: (attempt: number, delayMs: number, reason: string) => void;
  /** Resolves early when the caller stops (the wait between attempts ends). */
  signal?: AbortSignal;
}

export const defaultPolicy: RetryPolicy = { retries: 8, baseMs: 500, maxMs: 30_000 };

export async function fileSha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The Idempotency-Key of a file in a stream (the Python client makes the same). */
export function idempotencyKey(sha256: string, stream: string): string {
  const key = `sha256:${sha256}:stream:${stream}`;
  return key.length <= 256 ? key : `sha256:${sha256}:stream-sha256:${createHash('sha256').update(stream).digest('hex')}`;
}

function asciiFilename(name: string): string {
  return name.replace(/[^\x20-\x7e]|["\\]/g, '_');
}

export function uploadOnce(spec: UploadSpec): Promise<UploadAnswer> {
  const url = new URL(`${spec.conn.url}/v1/streams/${encodeURIComponent(spec.stream)}/ingest`);
  for (const [k, v] of spec.tags) url.searchParams.append(`tag.${k}`, v);
  const headers: Record<string, string | number> = {
    authorization: `Bearer ${spec.conn.key}`,
    'content-type': spec.contentType,
    'content-length': spec.size,
    'idempotency-key': idempotencyKey(spec.sha256, spec.stream),
    'content-disposition': `attachment; filename="${asciiFilename(spec.filename)}"; filename*=UTF-8''${encodeURIComponent(spec.filename)}`,
  };
  if (spec.contentEncoding) headers['content-encoding'] = spec.contentEncoding;
  if (spec.provenance) headers['strata-provenance'] = spec.provenance;
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: UploadAnswer): void => { if (!settled) { settled = true; resolve(r); } };
    const req = lib.request(url, { method: 'POST', headers, agent: false });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => done({ ok: false, permanent: false, status: null, code: 'network', message: err.message }));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const text = Buffer.concat(chunks).toString('utf8');
        let body: Record<string, unknown> = {};
        try { body = JSON.parse(text) as Record<string, unknown>; } catch { /* not JSON: described by status */ }
        if (status === 200 || status === 201) {
          const ingest = body.ingest as { id: string | number; rows: number } | undefined;
          if (!ingest) { done({ ok: false, permanent: false, status, code: 'bad_answer', message: `answer ${status} without an ingest record` }); return; }
          done({ ok: true, status, ingestId: String(ingest.id), rows: Number(ingest.rows), duplicate: body.duplicate === true });
          return;
        }
        const retryable = status >= 500 || status === 429 || status === 408;
        const ra = Number(res.headers['retry-after']);
        done({
          ok: false, permanent: !retryable, status, code: typeof body.code === 'string' ? body.code : `http_${status}`,
          message: typeof body.detail === 'string' ? body.detail : typeof body.title === 'string' ? body.title : text.slice(0, 200) || `HTTP ${status}`,
          ...(Number.isFinite(ra) && ra >= 0 ? { retryAfterMs: ra * 1000 } : {}),
        });
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, permanent: false, status: null, code: err.code ?? 'network', message: err.message }));
    let sent = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) { sent += chunk.length; spec.onProgress?.(sent); cb(null, chunk); },
    });
    pipeline(createReadStream(spec.path, { highWaterMark: 1 << 20 }), counter, req).catch((err: NodeJS.ErrnoException) => {
      // The server may answer (and close) before the whole body is sent; its answer wins.
      setTimeout(() => done({ ok: false, permanent: err.code === 'ENOENT', status: null, code: err.code ?? 'network', message: err.message }), 200);
    });
  });
}

export function backoffDelay(attempt: number, policy: RetryPolicy, retryAfterMs?: number): number {
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt - 1, 30));
  const jittered = Math.random() * cap;
  return Math.min(policy.maxMs, Math.max(jittered, retryAfterMs ?? 0));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

export async function uploadWithRetry(spec: UploadSpec, policy: RetryPolicy): Promise<UploadResult> {
  for (let attempt = 1; ; attempt++) {
    const r = await uploadOnce(spec);
    if (r.ok || r.permanent || attempt > policy.retries || policy.signal?.aborted) return { ...r, attempts: attempt };
    const delay = backoffDelay(attempt, policy, r.retryAfterMs);
    policy.onRetry?.(attempt, delay, r.status ? `${r.status} ${r.code}` : `${r.code}: ${r.message}`);
    await sleep(delay, policy.signal);
  }
}
