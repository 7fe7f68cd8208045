// An Arrow IPC file's footer, checked before apache-arrow follows it: apache-arrow seeks to each
// block's offset and reads whatever message it finds there, with the lengths that message claims.
// A block that points into the middle of a message, at the schema, or past the footer made it read
// garbage lengths (allocating gigabytes, or never answering). Here every block must point at a
// message of its kind (dictionary blocks at dictionary batches, record batch blocks at record
// batches) that lies wholly between the ARROW1 preamble and the footer, with the body length the
// block records; each message then passes the same checks as a stream's (arrow-messages.ts).
import type { FileHandle } from 'node:fs/promises';
import { Message, MessageHeader } from 'apache-arrow';
import { Footer } from 'apache-arrow/ipc/metadata/file';
import { AppError } from '../../errors/index.ts';
import { MAX_METADATA_BYTES } from './arrow-framing.ts';
import { checkMessage, newMessageOrder } from './arrow-messages.ts';

const PREAMBLE = 8;

function bad(what: string, byte: number): AppError {
  return new AppError(400, 'malformed_arrow', `the Arrow file is damaged: ${what}; nothing was stored`, { detail: { byte } });
}

interface Block { offset: number; metaDataLength: number; bodyLength: number }

async function readAt(fh: FileHandle, at: number, n: number): Promise<Buffer> {
  const buf = Buffer.alloc(n);
  const { bytesRead } = await fh.read(buf, 0, n, at);
  return buf.subarray(0, bytesRead);
}

/** Reads and checks the message a footer block points at. */
async function readBlock(fh: FileHandle, block: Block, kind: MessageHeader, footerStart: number, label: string, maxBatchBytes: number): Promise<Message> {
  const { offset, metaDataLength, bodyLength } = block;
  if (!Number.isSafeInteger(offset) || offset < PREAMBLE || offset >= footerStart) {
    throw bad(`${label} points at byte ${offset}, outside the messages (bytes ${PREAMBLE}–${footerStart})`, offset);
  }
  if (!(metaDataLength > 0) || metaDataLength > MAX_METADATA_BYTES || !(bodyLength >= 0)
    || offset + metaDataLength + bodyLength > footerStart) {
    throw bad(`${label} at byte ${offset} claims ${metaDataLength} metadata and ${bodyLength} body bytes, beyond the footer at byte ${footerStart}`, offset);
  }
  if (bodyLength > maxBatchBytes) {
    throw new AppError(413, 'batch_too_large',
      `${label} at byte ${offset} has a body of ${bodyLength} bytes; the limit is ${maxBatchBytes} (STRATA_MAX_BATCH_BYTES)`,
      { detail: { byte: offset, body_bytes: bodyLength, limit: maxBatchBytes } });
  }
  const head = await readAt(fh, offset, Math.min(metaDataLength, 8));
  let prefix = 4;
  let metaLen = head.length >= 4 ? head.readInt32LE(0) : 0;
  if (metaLen === -1 && head.length >= 8) { prefix = 8; metaLen = head.readInt32LE(4); }
  if (!(metaLen > 0) || prefix + metaLen > metaDataLength) {
    throw bad(`${label} at byte ${offset} does not point at the start of a message (it reads a metadata length of ${metaLen}; the block allows ${metaDataLength - prefix})`, offset);
  }
  let message: Message;
  try {
    message = Message.decode(await readAt(fh, offset + prefix, metaLen));
  } catch (err) {
    throw bad(`${label} at byte ${offset} points at bytes that are not an Arrow message (${(err as Error).message})`, offset);
  }
  if (message.headerType !== kind) {
    throw bad(`${label} at byte ${offset} points at a ${MessageHeader[message.headerType] ?? message.headerType} message, not a ${MessageHeader[kind]}`, offset);
  }
  if (message.bodyLength !== bodyLength || offset + prefix + metaLen + bodyLength > footerStart) {
    throw bad(`${label} at byte ${offset} records a body of ${bodyLength} bytes; its message claims ${message.bodyLength}`, offset);
  }
  return message;
}

/**
 * Checks every block of the footer of an Arrow file of `size` bytes whose footer is `footerLen`
 * bytes long; throws a 4xx AppError naming the first bad block.
 */
export async function checkFileFooter(fh: FileHandle, size: number, footerLen: number, maxBatchBytes: number): Promise<void> {
  const footerStart = size - 10 - footerLen;
  let footer: Footer;
  try {
    footer = Footer.decode(await readAt(fh, footerStart, footerLen));
  } catch (err) {
    // A schema with a type apache-arrow cannot read is the decoder's to name (unsupported_type).
    if (/Unrecognized type|unknown type|not supported/i.test((err as Error).message)) throw err;
    throw bad(`its footer (bytes ${footerStart}–${footerStart + footerLen}) does not decode: ${(err as Error).message}`, footerStart);
  }
  const order = newMessageOrder();
  order.schema = footer.schema;
  for (let i = 0; i < footer.numDictionaries; i++) {
    const block = footer.getDictionaryBatch(i) as Block;
    const message = await readBlock(fh, block, MessageHeader.DictionaryBatch, footerStart, `dictionary block ${i + 1}`, maxBatchBytes);
    checkMessage(message, order, block.offset, maxBatchBytes);
  }
  for (let i = 0; i < footer.numRecordBatches; i++) {
    const block = footer.getRecordBatch(i) as Block;
    const message = await readBlock(fh, block, MessageHeader.RecordBatch, footerStart, `record batch block ${i + 1}`, maxBatchBytes);
    checkMessage(message, order, block.offset, maxBatchBytes);
  }
}
