// Other modules follow what ingest and retraction write (rollups record invalidations from it)
// without ingest/ depending on them. An observer is made per upload; its hooks run inside the
// upload's transaction, so what they write commits or rolls back with the rows.
import type { PoolClient } from '../db/pool.ts';
import type { ColumnBatch } from '../domain/types.ts';
import type { Stream } from '../streams/catalog.ts';

export interface IngestObserver {
  /** Once, in the upload's transaction, before the first batch is read. */
  beforeRows?(tx: PoolClient): Promise<void>;
  /** Every batch, after it was written to the COPY. */
  onBatch?(batch: ColumnBatch): void;
  /** Once all rows are written, before the ingest record and COMMIT. */
  beforeCommit?(tx: PoolClient): Promise<void>;
}

export type IngestObserverFactory = (stream: Stream, ingestId: bigint) => IngestObserver;

/** Called inside a retraction's transaction, after the ingest's rows were deleted. */
export type RetractionObserver = (tx: PoolClient, info: { stream: Stream; ingestId: bigint; timeMin: bigint | null; timeMax: bigint | null }) => Promise<void>;

const ingestFactories: IngestObserverFactory[] = [];
const retractionObservers: RetractionObserver[] = [];

export function registerIngestObserver(factory: IngestObserverFactory): void {
  ingestFactories.push(factory);
}

export function observersFor(stream: Stream, ingestId: bigint): IngestObserver[] {
  return ingestFactories.map((f) => f(stream, ingestId));
}

export function registerRetractionObserver(observer: RetractionObserver): void {
  retractionObservers.push(observer);
}

export async function notifyRetraction(tx: PoolClient, info: Parameters<RetractionObserver>[1]): Promise<void> {
  for (const o of retractionObservers) await o(tx, info);
}
