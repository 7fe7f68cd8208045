// Messages between the CSV decoder (server thread, csv.ts) and its parsing worker (csv/worker.ts).
import type { ColumnData, StreamColumn } from '../../../domain/types.ts';
import type { EpochUnit } from '../epoch-units.ts';
import type { ErrorMessage } from '../worker-thread.ts';

/** What the worker needs to run the second pass on its own: the layout, the time plan, the columns. */
export interface ParseJob {
  path: string;
  size: number;
  headerOffset: number;
  headerLine: number;
  delimiter: number;
  decimalComma: boolean;
  ncols: number;
  batchRows: number;
  time: { index: number; iso: boolean; unit: EpochUnit | null; tz: string | null };
  plans: { index: number; name: string; target: StreamColumn }[];
}


/** A batch as sent: the column values are transferred, not copied (their ArrayBuffers move). */
export interface WireBatch {
  length: number;
  time: BigInt64Array;
  minTime: bigint;
  maxTime: bigint;
  columns: ColumnData[];
  subMicro: number;
}

export type ToWorker = { type: 'credit'; n: number };

export type FromWorker =
  | { type: 'batch'; batch: WireBatch }
  | { type: 'end'; values: { nulls: number; nans: number }[] }
  | ErrorMessage;
