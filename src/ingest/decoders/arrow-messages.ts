// What an Arrow IPC message's header claims, checked against its body and its place in the body
// before apache-arrow reads it: apache-arrow pads a column shorter than its batch with a null
// bitmap sized by the batch's row count, cuts buffers that reach past the body short without a
// word, and looks up dictionaries by id without asking whether one was sent. So:
//
//   exactly one schema, first; dictionary batches only for the schema's dictionary ids, each
//   before the first record batch that needs it; per batch, every buffer inside the body, every
//   column as long as the batch (flat schemas), nulls ≤ rows, and no more rows than the body
//   (or, compressed, the batch size limit) could hold at one bit per row.
import { type Message, MessageHeader, type Schema } from 'apache-arrow';
import { AppError } from '../../errors/index.ts';

interface BatchHeader {
  length: number;
  nodes: { length: number; nullCount: number }[];
  buffers: { offset: number; length: number }[];
  compression: unknown;
}

/** What the messages read so far established. */
export interface MessageOrder {
  schema: Schema | null;
  /** Dictionary ids whose dictionary batch has been read. */
  dictionaries: Set<number>;
  recordBatches: number;
}

export function newMessageOrder(): MessageOrder {
  return { schema: null, dictionaries: new Set(), recordBatches: 0 };
}

function bad(what: string, byte: number): AppError {
  return new AppError(400, 'malformed_arrow', `the Arrow body is damaged: ${what} (message at byte ${byte}); nothing was stored`,
    { detail: { byte } });
}

function corrupt(what: string, byte: number, batch: number): AppError {
  return new AppError(422, 'corrupt_batch', `record batch ${batch}: ${what} (message at byte ${byte}); the file is damaged, nothing was stored`,
    { detail: { byte, batch } });
}

/** Checks a batch header's nodes and buffers against its body length. */
function checkBatchHeader(h: BatchHeader, bodyLength: number, maxBatchBytes: number, flat: boolean, byte: number, batch: number, what: string): void {
  const rows = h.length;
  if (!Number.isSafeInteger(rows) || rows < 0) throw corrupt(`the ${what} claims ${rows} rows`, byte, batch);
  const capacity = h.compression ? maxBatchBytes : bodyLength;
  if (rows > capacity * 8) {
    throw corrupt(`the ${what} claims ${rows} rows, more than its ${capacity}-byte ${h.compression ? 'batch size limit' : 'body'} can hold`, byte, batch);
  }
  for (const [i, n] of h.nodes.entries()) {
    if (!(n.length >= 0) || !(n.nullCount >= 0) || n.nullCount > n.length) {
      throw corrupt(`column ${i} of the ${what} claims ${n.nullCount} nulls in ${n.length} rows`, byte, batch);
    }
    if (flat && n.length !== rows) throw corrupt(`column ${i} of the ${what} holds ${n.length} rows; the batch holds ${rows}`, byte, batch);
  }
  for (const [i, b] of h.buffers.entries()) {
    if (!(b.offset >= 0) || !(b.length >= 0) || b.offset + b.length > bodyLength) {
      throw corrupt(`buffer ${i} of the ${what} (bytes ${b.offset}–${b.offset + b.length}) lies outside its ${bodyLength}-byte body`, byte, batch);
    }
  }
}

function isFlat(schema: Schema): boolean {
  return schema.fields.every((f) => (f.type.children?.length ?? 0) === 0);
}

/**
 * Checks one message in the order it is read; `byte` is where the message starts in the body.
 * Record batches are counted in `order`.
 */
export function checkMessage(message: Message, order: MessageOrder, byte: number, maxBatchBytes: number): void {
  let header: unknown;
  try {
    header = message.header();
  } catch (err) {
    // A schema with a type apache-arrow cannot read is the decoder's to name (unsupported_type):
    // apache-arrow fails on it when it reads it.
    if (message.headerType === MessageHeader.Schema && order.schema === null) return;
    throw bad(`a message header does not decode (${(err as Error).message})`, byte);
  }
  if (message.headerType === MessageHeader.Schema) {
    if (order.schema !== null) throw bad('a second schema message; an Arrow stream holds exactly one', byte);
    order.schema = header as Schema;
    return;
  }
  const schema = order.schema;
  if (schema === null) throw bad('a batch before the schema message', byte);
  const flat = isFlat(schema);
  if (message.headerType === MessageHeader.DictionaryBatch) {
    const d = header as { id: number; data: BatchHeader };
    if (!schema.dictionaries.has(d.id)) {
      throw bad(`a dictionary batch for dictionary id ${d.id}, which no field of the schema uses`, byte);
    }
    checkBatchHeader(d.data, message.bodyLength, maxBatchBytes, flat, byte, order.recordBatches + 1, `dictionary batch for id ${d.id}`);
    order.dictionaries.add(d.id);
    return;
  }
  if (message.headerType !== MessageHeader.RecordBatch) throw bad(`message type ${message.headerType} is not allowed`, byte);
  order.recordBatches++;
  for (const id of schema.dictionaries.keys()) {
    if (!order.dictionaries.has(id)) {
      throw bad(`record batch ${order.recordBatches} uses dictionary id ${id} before any dictionary batch defines it`, byte);
    }
  }
  const h = header as BatchHeader;
  if (flat && h.nodes.length !== schema.fields.length) {
    throw corrupt(`it describes ${h.nodes.length} columns; the schema has ${schema.fields.length}`, byte, order.recordBatches);
  }
  checkBatchHeader(h, message.bodyLength, maxBatchBytes, flat, byte, order.recordBatches, 'record batch');
}
