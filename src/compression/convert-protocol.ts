// Messages between the compression job (compress-chunk.ts, on the server's thread) and the worker
// thread that reads a chunk's rows and encodes them (convert-worker.ts).
import type { StreamColumn } from '../domain/types.ts';
import type { ErrorMessage } from '../ingest/decoders/worker-thread.ts';

export interface ConvertJob {
  /** The database, for the worker's own connection that reads the chunk. */
  url: string;
  /** The chunk's table, qualified and quoted. */
  table: string;
  /** The COPY's columns, quoted: "time", ingest_id, the tags, the fields. */
  columns: string[];
  tags: StreamColumn[];
  fields: StreamColumn[];
  streamId: number;
  chunkId: number;
  /** The nice value of the worker thread and of its connection's backend (STRATA_JOB_NICE; 0: unchanged). */
  nice: number;
  /** Uploads in flight (Foreground.shared): the read pauses for busyPausePercent of its time while they run. */
  foreground: SharedArrayBuffer;
  /** STRATA_COMPRESSION_BUSY_PAUSE. */
  busyPausePercent: number;
  /** Tests: the worker exits (as a crashed thread does) after sending this many batches. */
  exitAfterBatches?: number;
}

/** Segments as rows of binary COPYs (no header or trailer): into strata_data.segments, and their parts. */
export interface SegmentsMessage {
  type: 'segments';
  data: Uint8Array;
  parts: Uint8Array;
  rows: number;
  segments: number;
  /** Bytes of the encoded columns. */
  bytes: number;
}

export interface EndMessage {
  type: 'end';
  /** Rows the worker read from the chunk. */
  rows: number;
  /** Milliseconds its reading paused for uploads. */
  pausedMs: number;
}

export type FromWorker = SegmentsMessage | EndMessage | ErrorMessage;
