// HDF5 and netCDF-4 uploads (Content-Type application/x-hdf5 or application/x-netcdf). The body
// is spooled to a temp file (STRATA_MAX_HDF5_BYTES), then read in a worker thread (hdf5/worker.ts)
// in chunk-aligned slices, so neither memory nor the server's event loop depends on the file's
// size. The mapping comes from ?mapping=, the stream's "hdf5_mapping" setting, or detection.
import { open } from 'node:fs/promises';
import type { ColumnBatch, ColumnData, StreamColumn } from '../../domain/types.ts';
import { AppError } from '../../errors/index.ts';
import { registerStreamSetting } from '../../streams/settings.ts';
import type { IngestBody } from '../body.ts';
import { type SpooledFile, spoolToFile } from '../spool.ts';
import type { DecodedSchema, Decoder } from './decoder.ts';
import { type DecoderOptions, registerDecoder } from './index.ts';
import { DEFAULT_TIME_WINDOW } from './epoch-units.ts';
import { fromWire } from './hdf5/errors.ts';
import { type TimeUnit, parseTimeUnit } from './hdf5/time.ts';
import { type Mapping, type MappingOrigin, type ResolvedMapping, checkMapping, mappingFromQuery } from './hdf5/mapping.ts';
import { type DecoderWorker, acquireWorker, releaseWorker } from './hdf5/pool.ts';
import { type FromWorker, type OpenedSchema, sliceBatch, toColumnValues } from './hdf5/protocol.ts';

/** Decoded bytes per batch: whole chunks up to this much (or STRATA_MAX_BATCH_BYTES if smaller). */
const BATCH_BYTES = 16 * 1024 * 1024;
/**
 * Largest decoded chunk read (or STRATA_MAX_BATCH_BYTES if smaller): HDF5 decodes a whole chunk
 * into the worker's wasm heap, which never shrinks. Producers' defaults are ≤ 4 MiB.
 */
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;
/** Batches the worker may read ahead of the COPY. */
const READ_AHEAD = 2;
/** Rows handed to the COPY writer at a time (see batches()). */
const HANDOFF_ROWS = 8192;

const SETTING = 'hdf5_mapping';

registerStreamSetting<Mapping>({
  key: SETTING,
  defaultValue: () => null,
  parse: (value) => (value === null ? null : checkMapping(value, 'hdf5_mapping')),
});

/** Refuses files that are plainly something else, with a hint, before a worker is started. */
async function sniff(file: SpooledFile): Promise<void> {
  if (file.size === 0) throw new AppError(400, 'empty_body', 'the body is empty: an HDF5 file starts with the signature \\x89HDF\\r\\n\\x1a\\n');
  const fh = await open(file.path, 'r');
  const head = Buffer.alloc(8);
  try {
    await fh.read(head, 0, 8, 0);
  } finally {
    await fh.close();
  }
  if (head.toString('latin1', 0, 3) === 'CDF' && [1, 2, 5].includes(head[3])) {
    throw new AppError(400, 'malformed_hdf5',
      'the body is a netCDF-3 (classic) file, which is not HDF5-based; convert it to netCDF-4 (nccopy -k nc4 in.nc out.nc) and upload that');
  }
  if (head.toString('latin1', 0, 6) === 'ARROW1' || head.readUInt32LE(0) === 0xffffffff) {
    throw new AppError(400, 'malformed_hdf5', 'the body is an Arrow IPC file or stream, not HDF5; send it with Content-Type application/vnd.apache.arrow.file or .stream');
  }
}

/** ?time_unit=: the unit of numeric times the file does not declare (s, ms, us, ns, min, h, d). */
function requestedTimeUnit(raw: string | undefined): TimeUnit | null {
  if (raw === undefined || raw === '') return null;
  const unit = parseTimeUnit(raw);
  if (!unit) throw new AppError(400, 'invalid_request', `time_unit ${JSON.stringify(raw.slice(0, 40))} is not a time unit; use s, ms, us, ns, min, h or d`);
  return unit;
}

function chooseMapping(opts: DecoderOptions): { mapping: Mapping | null; origin: MappingOrigin } {
  const fromQuery = mappingFromQuery(opts.params.mapping);
  if (fromQuery) return { mapping: fromQuery, origin: 'request' };
  const stored = opts.streamSettings[SETTING];
  if (stored) return { mapping: checkMapping(stored, "the stream's hdf5_mapping"), origin: 'stream' };
  return { mapping: null, origin: 'auto' };
}

export class Hdf5Decoder implements Decoder {
  readonly format = 'hdf5';
  private opened!: OpenedSchema;
  private decoded!: DecodedSchema;
  private subMicro = 0;
  private released = false;

  private constructor(private readonly worker: DecoderWorker, private readonly file: SpooledFile) {}

  static async open(body: IngestBody, opts: DecoderOptions): Promise<Hdf5Decoder> {
    const { mapping, origin } = chooseMapping(opts);
    const timeUnit = requestedTimeUnit(opts.params.time_unit);
    const file = await spoolToFile(body, opts.spoolDir, opts.identityEncoding, { maxBytes: opts.maxHdf5Bytes, setting: 'STRATA_MAX_HDF5_BYTES' });
    let decoder: Hdf5Decoder | null = null;
    try {
      await sniff(file);
      decoder = new Hdf5Decoder(await acquireWorker(), file);
      const batchBytes = Math.min(BATCH_BYTES, opts.maxBatchBytes);
      decoder.worker.post({
        type: 'open', path: file.path, bytes: file.size, mapping, origin,
        limits: {
          batchBytes, maxChunkBytes: Math.min(MAX_CHUNK_BYTES, opts.maxBatchBytes), maxDecodedBytes: opts.maxInflatedBytes,
          time: { unit: timeUnit, window: opts.timeWindow ?? DEFAULT_TIME_WINDOW },
        },
      });
      const msg = await decoder.worker.next();
      if (msg.type !== 'opened') throw decoder.failure(msg);
      decoder.opened = msg.schema;
      decoder.decoded = decoder.describe(msg.schema);
      return decoder;
    } catch (err) {
      if (decoder) await decoder.close();
      else await file.remove();
      throw err;
    }
  }

  private failure(msg: FromWorker): AppError {
    if (msg.type === 'error') return fromWire(msg.error);
    return new AppError(500, 'decoder_crashed', `the HDF5 decoder sent ${msg.type} out of turn; nothing was stored`);
  }

  private describe(s: OpenedSchema): DecodedSchema {
    return {
      columns: s.columns.map((c) => ({ ...c })),
      timeCandidates: [{ name: s.time.name, type: s.time.sourceType, timezone: 'UTC' }],
      metadata: { ...s.metadata, hdf5: { ...(s.metadata.hdf5 as object), h5wasm: this.worker.versions.h5wasm, 'h5wasm-plugins': this.worker.versions['h5wasm-plugins'] } },
      warnings: s.warnings,
      rejected: [],
    };
  }

  get schema(): DecodedSchema {
    return this.decoded;
  }

  get subMicrosecondCount(): number {
    return this.subMicro;
  }

  /** The complete mapping used (run-ingest.ts stores it with the ingest). */
  get mappingUsed(): ResolvedMapping {
    return this.opened.mapping;
  }

  /** Decoder versions recorded with the ingest: the HDF5 library inside h5wasm, and the plugins. */
  get versions(): Record<string, string> {
    const v = this.worker.versions;
    return { hdf5: v.hdf5 ?? 'unknown', 'h5wasm-plugins': v['h5wasm-plugins'] ?? 'unknown' };
  }

  async *batches(_timeColumn: string, bound: ReadonlyMap<string, StreamColumn>): AsyncGenerator<ColumnBatch> {
    const targets = this.opened.columns.map((c) => bound.get(c.name) ?? null);
    this.worker.post({ type: 'credit', n: READ_AHEAD });
    while (true) {
      const msg = await this.worker.next();
      if (msg.type === 'end') {
        this.subMicro = msg.subMicro;
        return;
      }
      if (msg.type !== 'batch') throw this.failure(msg);
      const b = msg.batch;
      const columns: ColumnData[] = [];
      b.columns.forEach((c, i) => {
        const column = targets[i];
        if (column) columns.push({ column, ...toColumnValues(c) });
      });
      this.worker.post({ type: 'credit', n: 1 });
      const whole: ColumnBatch = { length: b.length, time: b.time, minTime: b.minTime, maxTime: b.maxTime, columns };
      // A slice of whole chunks can be 100 000+ rows; its COPY encoding runs on this thread, so
      // it is handed on in parts with a turn of the event loop between them (other requests,
      // e.g. /healthz, are never held up for long).
      for (let start = 0; start < b.length; start += HANDOFF_ROWS) {
        yield b.length <= HANDOFF_ROWS ? whole : sliceBatch(whole, start, Math.min(b.length, start + HANDOFF_ROWS));
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }

  async close(): Promise<void> {
    if (!this.released) {
      this.released = true;
      await releaseWorker(this.worker);
    }
    await this.file.remove();
  }
}

registerDecoder('hdf5', (body, opts) => Hdf5Decoder.open(body, opts));
