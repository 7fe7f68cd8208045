// Arrow bodies for tests, written by nodejs-polars (an independent producer). Multi-batch
// streams are the stream inside polars' IPC file output (polars' stream writer merges small
// chunks into one batch): the bytes between the 8-byte ARROW1 preamble and the footer.
import pl from 'nodejs-polars';

export { pl };

export interface LoggerRows {
  /** µs since the epoch */
  time: BigInt64Array;
  sample?: string[];
  value?: Float64Array;
}

export function loggerFrame(rows: LoggerRows): pl.DataFrame {
  const n = rows.time.length;
  const cols: pl.Series[] = [pl.Series('time', rows.time, pl.Int64).cast(pl.Datetime('us', 'UTC'))];
  cols.push(pl.Series('sample', rows.sample ?? Array.from({ length: n }, (_, i) => `S-${i % 3}`), pl.Utf8));
  cols.push(pl.Series('value', rows.value ?? Float64Array.from({ length: n }, (_, i) => i * 0.5), pl.Float64));
  return pl.DataFrame(cols);
}

/** An Arrow IPC stream with one record batch per frame. */
export function arrowStream(frames: pl.DataFrame[], compression: 'uncompressed' | 'lz4' | 'zstd' = 'uncompressed'): Buffer {
  const df = frames.length === 1 ? frames[0] : pl.concat(frames, { how: 'vertical', rechunk: false });
  const f = df.writeIPC({ compression });
  const footerStart = f.length - 10 - f.readInt32LE(f.length - 10);
  return Buffer.from(f.subarray(8, footerStart));
}

/** An Arrow IPC file (ARROW1 … ARROW1). */
export function arrowFile(frames: pl.DataFrame[], compression: 'uncompressed' | 'lz4' | 'zstd' = 'uncompressed'): Buffer {
  const df = frames.length === 1 ? frames[0] : pl.concat(frames, { how: 'vertical', rechunk: false });
  return df.writeIPC({ compression });
}

export const DAY_US = 86_400_000_000n;
export const T0 = 1_709_251_200_000_000n; // 2024-03-01T00:00:00Z

/** n timestamps from `start` every `stepUs`. */
export function times(start: bigint, n: number, stepUs: bigint): BigInt64Array {
  return BigInt64Array.from({ length: n }, (_, i) => start + BigInt(i) * stepUs);
}
