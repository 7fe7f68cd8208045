// The Parquet reader's thread: parquet-wasm (the Rust parquet crate compiled to wasm) reads the
// spooled file through a file-backed Blob, one row group at a time, and hands each record batch
// to the server thread as Arrow IPC messages. Plain JavaScript, so the worker starts without the
// TypeScript loader. A wasm heap only grows, so a worker serves one upload and is then ended.
import { openAsBlob } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { Compression, ParquetFile } from 'parquet-wasm/node';

const { path, maxRowGroupBytes, batchRows } = workerData;
let credit = 0;
let wake = null;

parentPort.on('message', (m) => {
  if (m.type === 'credit') {
    credit += m.n;
    const w = wake;
    wake = null;
    w?.();
  }
});

function fail(status, code, message) {
  parentPort.postMessage({ type: 'error', error: { status, code, message } });
}

/** Where an IPC stream's schema message ends (it has no body). */
function schemaEnd(ipc) {
  const dv = new DataView(ipc.buffer, ipc.byteOffset, ipc.byteLength);
  const prefix = dv.getUint32(0, true) === 0xffffffff ? 8 : 4;
  return prefix + dv.getUint32(prefix - 4, true);
}

/** Sends the schema message (a copy: the wasm memory under `ipc` is reused). */
function sendSchema(ipc, metadata) {
  parentPort.postMessage({ type: 'schema', ipc: ipc.slice(0, schemaEnd(ipc)), metadata });
}

async function waitForCredit() {
  while (credit === 0) await new Promise((resolve) => { wake = resolve; });
  credit--;
}

function describeMetadata(meta) {
  const file = meta.fileMetadata();
  const kv = {};
  for (const [k, v] of file.keyValueMetadata()) if (k !== 'ARROW:schema') kv[k] = v;
  const groups = meta.rowGroups();
  const codecs = new Set();
  for (const g of groups) for (const c of g.columns()) codecs.add(Compression[c.compression()] ?? String(c.compression()));
  return {
    created_by: file.createdBy() ?? null, version: file.version(), rows: Number(file.numRows()),
    row_groups: groups.length, codecs: [...codecs].sort(), key_value: kv,
  };
}

async function run() {
  let file;
  try {
    file = await ParquetFile.fromFile(await openAsBlob(path));
  } catch (err) {
    fail(400, 'malformed_parquet', `cannot read the Parquet footer: ${err?.message ?? err}; the file is truncated, corrupt or not Parquet`);
    return;
  }
  const meta = file.metadata();
  const groups = meta.rowGroups();
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i];
    const largest = Math.max(g.compressedSize(), g.totalByteSize());
    if (largest > maxRowGroupBytes) {
      fail(413, 'row_group_too_large',
        `row group ${i} holds ${largest} bytes (${g.numRows()} rows); the limit is ${maxRowGroupBytes} (STRATA_MAX_BATCH_BYTES): write the file with smaller row groups (pandas/pyarrow: row_group_size=, polars: row_group_size=)`);
      return;
    }
  }
  // The schema sent is that of the batches as read: the file's Arrow schema may name types the
  // reader does not produce (e.g. Utf8View where it reads Utf8).
  const metadata = describeMetadata(meta);
  let schemaSent = false;
  for (let i = 0; i < groups.length; i++) {
    try {
      const stream = await file.stream({ rowGroups: [i], batchSize: batchRows });
      for await (const batch of stream) {
        const ipc = batch.intoIPCStream();
        if (!schemaSent) {
          sendSchema(ipc, metadata);
          schemaSent = true;
        }
        await waitForCredit();
        const own = ipc.slice(schemaEnd(ipc), ipc.byteLength - 8);
        parentPort.postMessage({ type: 'batch', ipc: own }, [own.buffer]);
      }
    } catch (err) {
      fail(400, 'malformed_parquet', `cannot read row group ${i} of the Parquet file: ${err?.message ?? err}; the file is truncated or corrupt`);
      return;
    }
  }
  if (!schemaSent) sendSchema(file.schema().intoIPCStream(), metadata);
  parentPort.postMessage({ type: 'end' });
}

run().catch((err) => fail(400, 'malformed_parquet', `cannot read the Parquet file: ${err?.message ?? err}`));
