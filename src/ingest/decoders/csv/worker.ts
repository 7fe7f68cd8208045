// The CSV decoder's second pass in a worker thread: reads the spooled file from the header on,
// decodes each block of rows into typed column arrays and transfers them to the server thread,
// at most `credit` batches ahead of the COPY (the server thread grants one per batch it takes).
// The first bad value ends the pass with its error (the same AppError as on the server thread).
import { open } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { isAppError } from '../../../errors/index.ts';
import { type ColumnPlan, type TimePlan, decodeBlock } from './infer.ts';
import type { FromWorker, ParseJob, ToWorker, WireBatch } from './protocol.ts';
import { readRecords } from './records.ts';
import { zoneReader } from './timezone.ts';

const port = parentPort as NonNullable<typeof parentPort>;
const job = workerData as ParseJob;

let credit = 0;
let wake: (() => void) | null = null;
port.on('message', (m: ToWorker) => {
  if (m.type === 'credit') {
    credit += m.n;
    const w = wake;
    wake = null;
    w?.();
  }
});

function send(m: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(m, transfer);
}

/** The batch's own buffers (each array here was made for this batch alone). */
function buffersOf(batch: WireBatch): ArrayBuffer[] {
  const set = new Set<ArrayBuffer>([batch.time.buffer as ArrayBuffer]);
  for (const c of batch.columns) {
    const v = c.values;
    if (v.kind === 'number' || v.kind === 'bigint') set.add(v.values.buffer as ArrayBuffer);
    else if (v.kind === 'bits') set.add(v.bitmap.buffer as ArrayBuffer);
    else if (v.kind === 'utf8') { set.add(v.offsets.buffer as ArrayBuffer); set.add(v.data.buffer as ArrayBuffer); }
    if (c.validity) set.add(c.validity.bitmap.buffer as ArrayBuffer);
  }
  return [...set];
}

async function run(): Promise<void> {
  const t = job.time;
  const time: TimePlan = { index: t.index, iso: t.iso, unit: t.unit, zone: t.tz ? zoneReader(t.tz) : null, describe: {} };
  const plans: ColumnPlan[] = job.plans.map((p) => ({ ...p, nulls: 0, nans: 0 }));
  const fh = await open(job.path, 'r');
  try {
    let header = true;
    for await (const block of readRecords(fh, job.size, job.headerOffset, job.headerLine, job.delimiter, job.ncols, job.batchRows)) {
      const from = header ? 1 : 0;
      header = false;
      if (block.rows === from) continue;
      const out = decodeBlock(block, from, time, plans, job.decimalComma);
      while (credit === 0) await new Promise<void>((resolve) => { wake = resolve; });
      credit--;
      const batch: WireBatch = { length: out.length, time: out.time, minTime: out.minTime, maxTime: out.maxTime, columns: out.columns, subMicro: out.subMicro };
      send({ type: 'batch', batch }, buffersOf(batch));
    }
  } finally {
    await fh.close();
  }
  send({ type: 'end', values: plans.map((p) => ({ nulls: p.nulls, nans: p.nans })) });
}

run().catch((err: unknown) => {
  if (isAppError(err)) send({ type: 'error', error: { status: err.status, code: err.code, message: err.message, detail: err.detail } });
  else send({ type: 'error', error: { status: 500, code: 'decoder_crashed', message: `the CSV reader failed: ${err instanceof Error ? err.message : String(err)}; nothing was stored` } });
});
