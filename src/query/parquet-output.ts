// Parquet output: the Arrow IPC record batches of an answer, written by parquet-wasm (the Rust
// parquet crate) as they arrive. Each batch is at most one row group (RAW_BATCH_ROWS rows), so
// the writer holds one batch at a time; the file's bytes stream out row group by row group.
import { Compression, EnabledStatistics, Table as WasmTable, WriterPropertiesBuilder, transformParquetStream } from 'parquet-wasm/node';
import { ARROW_EOS } from './batch-formats.ts';

const ROW_GROUP_ROWS = 65_536;

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.byteLength; }
  return out;
}

/**
 * `arrow` yields the IPC schema message first, then one record batch message per piece (the end
 * marker, if it comes, is ignored); the result is the Parquet file, piece by piece.
 */
export async function* parquetFromArrow(arrow: AsyncIterator<Uint8Array>, metadata: Map<string, string>, textColumns: readonly string[] = []): AsyncGenerator<Uint8Array> {
  const first = await arrow.next();
  if (first.done) return;
  const schema = first.value;
  const input = new ReadableStream({
    async pull(controller) {
      while (true) {
        const r = await arrow.next();
        if (r.done) { controller.close(); return; }
        if (r.value.byteLength <= ARROW_EOS.byteLength) continue;
        const table = WasmTable.fromIPCStream(concat([schema, r.value, ARROW_EOS]));
        for (const batch of table.recordBatches()) controller.enqueue(batch);
        table.free();
        return;
      }
    },
    async cancel() { await arrow.return?.(undefined); },
  }, { highWaterMark: 0 });
  // Dictionary encoding only where values repeat (text tags): on measured floats it costs time
  // and saves nothing. Statistics per column chunk (row group), not per page.
  let builder = new WriterPropertiesBuilder()
    .setCompression(Compression.SNAPPY)
    .setDictionaryEnabled(false)
    .setStatisticsEnabled(EnabledStatistics.Chunk);
  for (const name of textColumns) builder = builder.setColumnDictionaryEnabled(name, true);
  const props = builder
    .setMaxRowGroupSize(ROW_GROUP_ROWS)
    .setKeyValueMetadata(metadata)
    .setCreatedBy('Strata')
    .build();
  const output = (await transformParquetStream(input, props)) as ReadableStream<Uint8Array>;
  const reader = output.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
