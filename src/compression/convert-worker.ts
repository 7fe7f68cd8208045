// The compression worker thread: reads one chunk's rows with a binary COPY on a connection of its
// own (in scan order, no sort), groups them into segments (group-rows.ts), encodes them
// (segment.ts, codecs/) and sends them to the server thread as binary COPY rows for the segments
// table, about SEND_BYTES at a time and only against a credit, so that it runs at most a few
// batches ahead of the COPY that writes them. Its reads see the chunk as the converting
// transaction does: that transaction holds the chunk's table locked against writes. The thread
// and its connection's backend run at the jobs' lower CPU priority.
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import { lowerBackendPriority, lowerThreadPriority } from '../db/priority.ts';
import { Foreground } from '../jobs/foreground.ts';
import { Pacer } from '../jobs/pause.ts';
import { type CopyData, copyOut, forEachPart } from './copy-out.ts';
import { CopyRowParser } from './copy-rows.ts';
import type { ConvertJob, FromWorker } from './convert-protocol.ts';
import { RowGrouper } from './group-rows.ts';
import type { EncodedSegment } from './segment.ts';
import { reserveSegmentIds, segmentCopyRows } from './segment-copy.ts';

const SEND_BYTES = 1 << 20;

const port = parentPort as NonNullable<typeof parentPort>;
const job = workerData as ConvertJob;

let credit = 0;
let wake: (() => void) | null = null;
port.on('message', (m: { type: string; n: number }) => {
  if (m.type === 'credit') {
    credit += m.n;
    const w = wake;
    wake = null;
    w?.();
  }
});

const ready: EncodedSegment[] = [];
let readyBytes = 0;
let batches = 0;

function encodedBytes(s: EncodedSegment): number {
  return s.timeData.length + s.data.reduce((a, d) => a + (d?.length ?? 0), 0);
}

let ids: pg.Client | null = null;
const idClient = (): pg.Client => {
  if (!ids) throw new Error('the compression worker has no connection for segment ids');
  return ids;
};

async function send(): Promise<void> {
  if (ready.length === 0) return;
  while (credit === 0) await new Promise<void>((resolve) => { wake = resolve; });
  credit--;
  const segs = ready.splice(0);
  readyBytes = 0;
  const { segments: data, parts } = segmentCopyRows(job.streamId, job.chunkId, segs, await reserveSegmentIds(idClient(), segs.length));
  const m: FromWorker = {
    type: 'segments', data, parts, rows: segs.reduce((a, s) => a + s.rowCount, 0), segments: segs.length, bytes: segs.reduce((a, s) => a + encodedBytes(s), 0),
  };
  port.postMessage(m, [data.buffer as ArrayBuffer, parts.buffer as ArrayBuffer]);
  if (job.exitAfterBatches !== undefined && ++batches >= job.exitAfterBatches) process.exit(70);
}

async function run(): Promise<void> {
  const grouper = new RowGrouper(job.tags, job.fields, (s) => {
    ready.push(s);
    readyBytes += encodedBytes(s);
  });
  // A background job: when the CPU is short, uploads and queries go first (STRATA_JOB_NICE).
  lowerThreadPriority(job.nice);
  const client = new pg.Client({ connectionString: job.url, application_name: 'strata compression' });
  await client.connect();
  // Segment ids come from a second connection: the first is busy with the chunk's COPY.
  ids = new pg.Client({ connectionString: job.url, application_name: 'strata compression ids' });
  await ids.connect();
  lowerBackendPriority(client, job.nice);
  let rows = 0;
  // While uploads run, reading stops now and then (PostgreSQL's backend waits on the socket meanwhile).
  const uploads = new Foreground(job.foreground);
  const pacing = new Pacer({ idlePercent: 0, busyPercent: job.busyPausePercent, busy: () => uploads.busy() });
  try {
    const parser = new CopyRowParser(job.columns.length, (buf, off, len) => { rows++; grouper.add(buf, off, len); });
    const push = (buf: Buffer, start: number, end: number): void => parser.push(buf, start, end);
    const copy = client.query(copyOut(`COPY ${job.table} (${job.columns.join(', ')}) TO STDOUT (FORMAT binary)`));
    for await (const data of copy) {
      forEachPart(data as CopyData, push);
      if (readyBytes >= SEND_BYTES) await send();
      await pacing.step();
    }
    if (!parser.done) throw new Error('the chunk\'s rows ended before the COPY trailer');
    grouper.finish();
    await send();
  } finally {
    await client.end().catch(() => undefined);
    await ids.end().catch(() => undefined);
  }
  port.postMessage({ type: 'end', rows, pausedMs: Math.round(pacing.pausedMs) } satisfies FromWorker);
}

run().catch((err: unknown) => {
  const message = `the compression worker failed: ${err instanceof Error ? err.message : String(err)}`;
  port.postMessage({ type: 'error', error: { status: 500, code: 'decoder_crashed', message } } satisfies FromWorker);
});
