// Uploads of small lab-logger Arrow streams written by polars, for tests that need committed
// ingests to trace, retract or authorise against.
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import type { TestApp } from './app.ts';
import { ARROW_STREAM } from './fixtures.ts';
import { T0, arrowStream, loggerFrame, times } from './polars.ts';

export interface LoggerUpload {
  /** First timestamp, µs since the epoch (default T0). */
  start?: bigint;
  n?: number;
  /** µs between rows (default 1 s). */
  stepUs?: bigint;
  sample?: string | string[];
  /** Values; default distinct random values so that no two uploads are byte-identical. */
  value?: Float64Array;
  key?: string | null;
  headers?: Record<string, string>;
}

export interface Uploaded {
  res: Response;
  status: number;
  body: { ingest: { id: string; sha256: string; rows: number; status: string } & Record<string, unknown> } & Record<string, unknown>;
  bytes: Buffer;
  sha256: string;
}

export function loggerBody(u: LoggerUpload = {}): Buffer {
  const n = u.n ?? 10;
  const sample = u.sample === undefined ? undefined : Array.isArray(u.sample) ? u.sample : Array(n).fill(u.sample);
  const value = u.value ?? Float64Array.from({ length: n }, () => Math.random());
  return arrowStream([loggerFrame({ time: times(u.start ?? T0, n, u.stepUs ?? 1_000_000n), sample, value })]);
}

export async function upload(t: TestApp, stream: string, u: LoggerUpload = {}): Promise<Uploaded> {
  const bytes = loggerBody(u);
  const res = await t.request(`/v1/streams/${stream}/ingest`, {
    method: 'POST', key: u.key, headers: { 'content-type': ARROW_STREAM, ...(u.headers ?? {}) }, body: bytes,
  });
  const body = await res.clone().json() as Uploaded['body'];
  return { res, status: res.status, body, bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Uploads and expects a committed ingest; returns its id. */
export async function committed(t: TestApp, stream: string, u: LoggerUpload = {}): Promise<Uploaded & { id: string }> {
  const r = await upload(t, stream, u);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return { ...r, id: r.body.ingest.id };
}

export function json(init: { method: string; body: unknown; key?: string | null }): RequestInit & { key?: string | null } {
  return { method: init.method, key: init.key, headers: { 'content-type': 'application/json' }, body: JSON.stringify(init.body) };
}
