// Arrow IPC decoder: stream bodies are framed (arrow-framing.ts) and decoded batch by batch as
// they arrive; file bodies are read from a spooled file through a file handle. Each record batch
// becomes a ColumnBatch bound to the stream's columns.
import { open, type FileHandle } from 'node:fs/promises';
import {
  type Data, type Field, type RecordBatch, RecordBatchReader, type Schema, type TimeUnit, Type, type Vector,
} from 'apache-arrow';
import { Message as FbMessage } from 'apache-arrow/fb/message';
import { Schema as FbSchema } from 'apache-arrow/fb/schema';
import { Type as FbType } from 'apache-arrow/fb/type';
import { ByteBuffer } from 'flatbuffers';
import { AppError, isAppError } from '../../errors/index.ts';
import { findUnstorable } from '../../db/storable.ts';
import type { ColumnBatch, ColumnData, StreamColumn } from '../../domain/types.ts';
import { type ArrowColumnPlan, type ConvertContext, decideColumn, timeUnitName, validityOf } from './arrow-types.ts';
import { type FramingState, frameArrowStream, releaseFrame } from './arrow-framing.ts';
import { registerArrowCodecs } from './arrow-codecs.ts';
import { checkFileFooter } from './arrow-footer.ts';
import { type BatchWhere, Yielder, checkColumn } from './arrow-validate.ts';
import { toMicros } from './timestamps.ts';
import type { DecodedSchema, Decoder, SourceColumn } from './decoder.ts';

registerArrowCodecs();

const ARROW_MAGIC = 'ARROW1';

type Reader = AsyncIterable<RecordBatch> & { schema: Schema; open(): Promise<unknown>; cancel?(): Promise<void>; return?(): Promise<unknown> };

/** Names the fields whose types apache-arrow cannot read, from the raw schema message. */
function describeUnreadableSchema(frame: Uint8Array | null): string | null {
  if (!frame) return null;
  try {
    const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const prefix = dv.getUint32(0, true) === 0xffffffff ? 8 : 4;
    const metaLen = dv.getUint32(prefix - 4, true);
    const msg = FbMessage.getRootAsMessage(new ByteBuffer(frame.subarray(prefix, prefix + metaLen)));
    const schema = msg.header(new FbSchema()) as FbSchema | null;
    if (!schema) return null;
    const bad: string[] = [];
    for (let i = 0; i < schema.fieldsLength(); i++) {
      const f = schema.fields(i);
      if (!f) continue;
      const t = f.typeType();
      if (!(t in Type) || t === FbType.RunEndEncoded || t === FbType.ListView || t === FbType.LargeListView || t === FbType.BinaryView) {
        bad.push(`${JSON.stringify(f.name())} has type ${FbType[t] ?? t}`);
      }
    }
    return bad.length > 0 ? bad.join('; ') : null;
  } catch {
    return null;
  }
}

function decodeError(err: unknown, what: string, state?: FramingState & { schemaFrame?: Uint8Array | null }): AppError {
  if (isAppError(err)) return err;
  const msg = (err as Error)?.message ?? String(err);
  if (/codec/i.test(msg)) {
    return new AppError(422, 'unsupported_codec', `cannot decode the Arrow body: ${msg}; Strata decodes LZ4_FRAME and ZSTD`, { cause: err });
  }
  if (/Unrecognized type|unknown type|not supported/i.test(msg)) {
    const named = describeUnreadableSchema(state?.schemaFrame ?? null);
    return new AppError(422, 'unsupported_type', `the Arrow schema has a type Strata cannot read: ${named ?? msg}`, { cause: err });
  }
  const at = state ? ` near byte ${state.bytes}` : '';
  return new AppError(400, 'malformed_arrow', `cannot read the Arrow ${what}${at}: ${msg}`, { cause: err });
}

interface Options {
  maxBatchBytes: number;
}

export class ArrowDecoder implements Decoder {
  readonly format: 'arrow-stream' | 'arrow-file';
  private reader!: Reader;
  private file: FileHandle | null = null;
  private onClose: (() => Promise<void>) | null = null;
  private readonly framing: FramingState & { schemaFrame: Uint8Array | null } =
    { messages: 0, recordBatches: 0, sawEos: false, bytes: 0, schemaFrame: null };
  private plans = new Map<string, ArrowColumnPlan>();
  private readonly ctx: ConvertContext = { dictionaries: new WeakMap(), subMicro: 0 };
  private decoded!: DecodedSchema;
  /** The messages apache-arrow read last (a stream body's): a record batch just read lives in one of them. */
  private readonly recentFrames: Uint8Array[] = [];
  /** Where each of recentFrames starts in the body, for naming the byte a check failed at. */
  private readonly frameStarts = new WeakMap<Uint8Array, number>();
  private readonly checkedDictionaries = new WeakSet<Vector>();
  recordBatches = 0;

  private constructor(format: 'arrow-stream' | 'arrow-file') {
    this.format = format;
  }

  /** Opens an Arrow IPC stream arriving as a byte stream, reading up to and including its schema. */
  static async openStream(body: AsyncIterable<Uint8Array>, opts: Options): Promise<ArrowDecoder> {
    const d = new ArrowDecoder('arrow-stream');
    const framing = d.framing;
    const frames = (async function* () {
      for await (const frame of frameArrowStream(body, { maxBatchBytes: opts.maxBatchBytes }, framing)) {
        if (framing.messages === 1) framing.schemaFrame = frame;
        d.frameStarts.set(frame, framing.bytes - frame.byteLength);
        d.recentFrames.push(frame);
        if (d.recentFrames.length > 4) d.recentFrames.shift();
        yield frame;
      }
    })();
    try {
      d.reader = (await RecordBatchReader.from(frames)) as unknown as Reader;
      await d.reader.open();
      if (!d.reader.schema) throw new AppError(400, 'malformed_arrow', 'the body holds no Arrow schema message');
    } catch (err) {
      throw decodeError(err, 'schema', framing);
    }
    d.decoded = d.describe(d.reader.schema);
    return d;
  }

  /** Opens an Arrow IPC file from disk (random access through a file handle). */
  static async openFile(path: string, size: number, opts: Options, onClose?: () => Promise<void>): Promise<ArrowDecoder> {
    const d = new ArrowDecoder('arrow-file');
    d.onClose = onClose ?? null;
    const fh = await open(path, 'r');
    d.file = fh;
    try {
      if (size === 0) throw new AppError(400, 'empty_body', 'the body is empty: an Arrow file starts with ARROW1');
      const head = Buffer.alloc(Math.min(8, size));
      await fh.read(head, 0, head.length, 0);
      if (head.toString('latin1', 0, 6) !== ARROW_MAGIC) {
        const hint = head.readUInt32LE(0) === 0xffffffff ? '; it looks like an Arrow stream — send it with Content-Type: application/vnd.apache.arrow.stream' : '';
        throw new AppError(400, 'malformed_arrow', `the body is not an Arrow IPC file: it does not start with ARROW1${hint}`);
      }
      const tail = Buffer.alloc(10);
      if (size < 18) throw new AppError(400, 'truncated_arrow', `the Arrow file is ${size} bytes long, too short to hold a footer: it was cut short`);
      await fh.read(tail, 0, 10, size - 10);
      if (tail.toString('latin1', 4, 10) !== ARROW_MAGIC) {
        throw new AppError(400, 'truncated_arrow', `the Arrow file does not end with ARROW1 (${size} bytes received): it was cut short or is not an Arrow file; nothing was stored`);
      }
      const footerLen = tail.readInt32LE(0);
      if (footerLen <= 0 || footerLen > size - 18) {
        throw new AppError(400, 'malformed_arrow', `the Arrow file's footer length (${footerLen}) does not fit in its ${size} bytes`);
      }
      await checkFileFooter(fh, size, footerLen, opts.maxBatchBytes);
      d.reader = (await RecordBatchReader.from(fh)) as unknown as Reader;
      await d.reader.open();
      if (!d.reader.schema) throw new AppError(400, 'malformed_arrow', 'the Arrow file holds no schema');
    } catch (err) {
      await d.file?.close().catch(() => undefined);
      throw decodeError(err, 'file', undefined);
    }
    d.decoded = d.describe(d.reader.schema);
    return d;
  }

  get schema(): DecodedSchema {
    return this.decoded;
  }

  get subMicrosecondCount(): number {
    return this.ctx.subMicro;
  }

  /** True when a stream body ended with its end-of-stream marker. */
  get complete(): boolean {
    return this.format === 'arrow-file' || this.framing.sawEos;
  }

  private describe(schema: Schema): DecodedSchema {
    const columns: SourceColumn[] = [];
    const timeCandidates: DecodedSchema['timeCandidates'] = [];
    const warnings: string[] = [];
    const rejected: string[] = [];
    for (const field of schema.fields as Field[]) {
      if (field.type.typeId === Type.Timestamp) {
        const t = field.type as { unit: TimeUnit; timezone?: string | null };
        timeCandidates.push({ name: field.name, type: String(field.type), timezone: t.timezone ?? null });
      }
      const decision = decideColumn(field);
      if (decision.kind === 'reject') rejected.push(`${JSON.stringify(field.name)} (${decision.reason})`);
      else if (decision.kind === 'skip') warnings.push(decision.reason);
      else {
        this.plans.set(field.name, decision.plan);
        columns.push({ name: field.name, sourceType: decision.plan.arrowType, type: decision.plan.storeAs, role: decision.plan.role, unit: decision.plan.unit });
      }
    }
    const metadata: Record<string, unknown> = {};
    if (schema.metadata.size > 0) metadata.schema = Object.fromEntries(schema.metadata);
    const fieldMeta: Record<string, Record<string, string>> = {};
    for (const f of schema.fields as Field[]) if (f.metadata.size > 0) fieldMeta[f.name] = Object.fromEntries(f.metadata);
    if (Object.keys(fieldMeta).length > 0) metadata.fields = fieldMeta;
    metadata.arrow_schema = (schema.fields as Field[]).map((f) => ({ name: f.name, type: String(f.type), nullable: f.nullable }));
    const unstorable = findUnstorable(metadata);
    if (unstorable) {
      throw new AppError(422, 'invalid_utf8',
        `the Arrow schema's metadata at ${unstorable.path} holds ${unstorable.reason}, which PostgreSQL cannot store; nothing was stored`,
        { detail: { path: unstorable.path } });
    }
    return { columns, timeCandidates, metadata, warnings, rejected };
  }

  /**
   * Decodes record batches into ColumnBatches for the given time column and bound stream columns
   * (source column name → stream column). Columns not bound are ignored.
   */
  async *batches(timeColumn: string, bound: ReadonlyMap<string, StreamColumn>): AsyncGenerator<ColumnBatch> {
    const fields = this.reader.schema.fields as Field[];
    const timeIndex = fields.findIndex((f) => f.name === timeColumn);
    const timeField = fields[timeIndex];
    const unit = timeUnitName((timeField.type as { unit: TimeUnit }).unit);
    const boundIdx = fields.map((f, i) => [f, i] as const).filter(([f]) => bound.has(f.name) && f.name !== timeColumn);
    const iterator = this.reader[Symbol.asyncIterator]();
    try {
      while (true) {
        let next: IteratorResult<RecordBatch>;
        try {
          next = await iterator.next();
        } catch (err) {
          throw decodeError(err, `record batch ${this.recordBatches + 1}`, this.format === 'arrow-stream' ? this.framing : undefined);
        }
        if (next.done) break;
        const batch = next.value;
        this.recordBatches++;
        if (batch.numRows === 0) continue;
        const y = new Yielder();
        const timeData = batch.data.children[timeIndex] as Data | undefined;
        await checkColumn(timeData, batch.numRows, this.where(timeColumn), this.checkedDictionaries, y);
        const timeValues = (timeData as Data).values as BigInt64Array;
        const t = toMicros(timeValues.subarray(0, batch.numRows), unit, validityOf(timeData as Data), timeColumn, true);
        this.ctx.subMicro += t.subMicro;
        const columns: ColumnData[] = [];
        for (const [field, i] of boundIdx) {
          const plan = this.plans.get(field.name) as ArrowColumnPlan;
          const data = batch.data.children[i] as Data | undefined;
          const checked = await checkColumn(data, batch.numRows, this.where(field.name), this.checkedDictionaries, y);
          const { values, validity } = plan.convert(data as Data, this.ctx, checked.offsets);
          columns.push({ column: bound.get(field.name) as StreamColumn, values, validity });
          await y.maybe();
        }
        yield { length: batch.numRows, time: t.micros, minTime: t.min, maxTime: t.max, columns, release: this.releaser(timeData as Data) };
      }
    } finally {
      await iterator.return?.();
    }
    if (this.format === 'arrow-stream' && !this.framing.sawEos) {
      throw new AppError(400, 'truncated_arrow', `the Arrow stream ended without its end-of-stream marker after ${this.recordBatches} record batches`);
    }
  }

  /** Where checks of the current record batch report a failure: the column, the batch and the byte. */
  private where(column: string): BatchWhere {
    return {
      column, batch: this.recordBatches,
      locate: (view, byteInView) => {
        for (const f of this.recentFrames) {
          if (f.buffer !== view.buffer || view.byteOffset < f.byteOffset || view.byteOffset >= f.byteOffset + f.byteLength) continue;
          const start = this.frameStarts.get(f);
          return start === undefined ? null : start + (view.byteOffset - f.byteOffset) + byteInView;
        }
        return null;
      },
    };
  }

  /**
   * How a batch's message buffer goes back to the pool once the batch is done with: when the
   * batch's values are views into one of the messages read last (uncompressed bodies; apache-arrow
   * reads a message ahead), that buffer holds this batch alone. Compressed bodies are decoded into
   * buffers of their own.
   */
  private releaser(timeData: Data): (() => void) | undefined {
    const values = timeData.values as { buffer?: ArrayBufferLike } | undefined;
    const at = this.recentFrames.findIndex((f) => f.buffer === values?.buffer);
    if (at < 0) return undefined;
    const [frame] = this.recentFrames.splice(at, 1);
    return () => releaseFrame(frame);
  }

  async close(): Promise<void> {
    await this.file?.close().catch(() => undefined);
    this.file = null;
    const cleanup = this.onClose;
    this.onClose = null;
    await cleanup?.();
  }
}
