// RFC 4180 records from a spooled CSV/TSV file, read in blocks, as byte ranges into the block
// they came from (no string per field). Quoted fields may hold delimiters, "" and line breaks;
// CRLF and LF end records; blank lines are skipped. Every record must have the header's number of
// fields. Each record keeps the physical line it starts on, for messages.
import type { FileHandle } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { AppError } from '../../../errors/index.ts';

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;

/**
 * Bytes read from the file at a time: about 16k rows of a 14-column logger file, so that a block
 * fills a batch (smaller reads made 4k-row batches, each with its own per-batch costs downstream).
 */
const READ_BYTES = 4 << 20;
/** Longest record accepted (an unclosed quote would otherwise swallow the file). */
export const MAX_RECORD_BYTES = 4 << 20;

export interface RecordBlock {
  /** The bytes the ranges point into. */
  buf: Buffer;
  rows: number;
  ncols: number;
  /** Field i of row r is buf[starts[r*ncols+i], ends[r*ncols+i]). */
  starts: Int32Array;
  ends: Int32Array;
  /** 1 where a quoted field holds "" (the text needs unescaping). */
  escaped: Uint8Array;
  /** 1-based line of the file each row starts on. */
  lines: Float64Array;
}

/** A field's text (unescaping "" when it was quoted with doubled quotes). */
export function fieldText(b: RecordBlock, k: number): string {
  const s = b.buf.toString('utf8', b.starts[k], b.ends[k]);
  return b.escaped[k] ? s.replaceAll('""', '"') : s;
}

function malformed(line: number, what: string): AppError {
  return new AppError(422, 'malformed_csv', `line ${line}: ${what}; nothing was stored`, { detail: { line } });
}

interface Cursor { pos: number; line: number }

/**
 * Reads records from `offset` (the header's first byte) to the end. `ncols` null: the first record
 * (the header) sets it. Yields blocks of at most `maxRows` rows.
 */
export async function* readRecords(fh: FileHandle, size: number, offset: number, firstLine: number, delimiter: number,
  ncols: number | null, maxRows: number): AsyncGenerator<RecordBlock> {
  let filePos = offset;
  let carry: Buffer = Buffer.alloc(0);
  let line = firstLine;
  let width = ncols;
  // One set of field arrays serves every block: a block is consumed before the next is made.
  const arrays = new BlockArrays(maxRows);
  const newBlock = (buf: Buffer, n: number): RecordBlock => arrays.block(buf, n);
  // Two read buffers taken in turn: a block (and the carried-over partial record) points into
  // the previous one while the next is filled. Regrown only for a record longer than a read.
  const spare: Buffer[] = [];
  let previous: Buffer | null = null;
  while (filePos < size || carry.length > 0) {
    const want = Math.min(READ_BYTES, size - filePos);
    let buf = spare.pop();
    if (!buf || buf.length < carry.length + want) buf = Buffer.allocUnsafe(Math.max(READ_BYTES, carry.length + want));
    carry.copy(buf, 0);
    const { bytesRead } = want > 0 ? await fh.read(buf, carry.length, want, filePos) : { bytesRead: 0 };
    filePos += bytesRead;
    const len = carry.length + bytesRead;
    const eof = filePos >= size;
    const cur: Cursor = { pos: 0, line };
    let block = newBlock(buf, width ?? 64);
    while (true) {
      const start = cur.pos;
      const startLine = cur.line;
      if (start >= len) break;
      const r = parseRecord(buf, len, eof, delimiter, cur, block, width);
      if (r === INCOMPLETE) {
        cur.pos = start;
        cur.line = startLine;
        break;
      }
      if (r === BLANK) continue;
      if (width === null) {
        if (r > scratch.starts.length) throw malformed(startLine, `the header has more than ${scratch.starts.length} fields`);
        width = r;
        block = newBlock(buf, width);
        block.starts.set(scratch.starts.subarray(0, r));
        block.ends.set(scratch.ends.subarray(0, r));
        block.escaped.set(scratch.escaped.subarray(0, r));
      } else if (r !== width) {
        throw malformed(startLine, `the record has ${r} fields where the header has ${width} (a ragged row, or a quote left open)`);
      }
      block.lines[block.rows] = startLine;
      block.rows++;
      if (block.rows === maxRows) {
        checkUtf8(buf, block);
        yield block;
        block = newBlock(buf, width);
      }
    }
    if (block.rows > 0) {
      checkUtf8(buf, block);
      yield block;
    }
    line = cur.line;
    if (previous) spare.push(previous); // its blocks are consumed and its carry copied out
    previous = buf;
    carry = buf.subarray(cur.pos, len);
    if (carry.length > MAX_RECORD_BYTES) throw malformed(line, `a record is longer than ${MAX_RECORD_BYTES} bytes (a quote that is never closed?)`);
    if (eof && carry.length > 0) throw malformed(line, 'the file ends inside a quoted field');
  }
}

function checkUtf8(buf: Buffer, block: RecordBlock): void {
  const n = block.rows * block.ncols;
  if (n === 0) return;
  const from = block.starts[0];
  const to = block.ends[n - 1];
  if (!isUtf8(buf.subarray(from, to))) {
    for (let r = 0; r < block.rows; r++) {
      const a = block.starts[r * block.ncols];
      const b = block.ends[r * block.ncols + block.ncols - 1];
      if (!isUtf8(buf.subarray(a, b))) {
        throw malformed(block.lines[r], 'the text is not valid UTF-8; save the file as UTF-8 (Excel: "CSV UTF-8")');
      }
    }
  }
}

/** The field arrays of a block, allocated once per read of the file (a few MB; zeroing them per block cost more than the parsing). */
class BlockArrays {
  private starts = new Int32Array(0);
  private ends = new Int32Array(0);
  private escaped = new Uint8Array(0);
  private readonly lines: Float64Array;

  constructor(private readonly maxRows: number) {
    this.lines = new Float64Array(maxRows);
  }

  block(buf: Buffer, ncols: number): RecordBlock {
    const cap = ncols * this.maxRows;
    if (this.starts.length !== cap) {
      this.starts = new Int32Array(cap);
      this.ends = new Int32Array(cap);
      this.escaped = new Uint8Array(cap);
    }
    return { buf, rows: 0, ncols, starts: this.starts, ends: this.ends, escaped: this.escaped, lines: this.lines };
  }
}

const INCOMPLETE = -1;
const BLANK = -2;
/** Where the header's fields go before its width is known. */
const scratch = { starts: new Int32Array(100_000), ends: new Int32Array(100_000), escaped: new Uint8Array(100_000) };

/**
 * Parses one record at cur.pos into the block's next row. Returns its field count, INCOMPLETE when
 * the buffer ends inside it (and more follows), or BLANK for an empty line.
 */
function parseRecord(b: Buffer, len: number, eof: boolean, delim: number, cur: Cursor, block: RecordBlock, width: number | null): number {
  let p = cur.pos;
  if (b[p] === LF || (b[p] === CR && p + 1 < len && b[p + 1] === LF)) {
    cur.pos = p + (b[p] === LF ? 1 : 2);
    cur.line++;
    return BLANK;
  }
  if (b[p] === CR && p + 1 >= len && !eof) return INCOMPLETE;
  const starts = width === null ? scratch.starts : block.starts;
  const ends = width === null ? scratch.ends : block.ends;
  const escaped = width === null ? scratch.escaped : block.escaped;
  const base = width === null ? 0 : block.rows * width;
  const cap = width === null ? scratch.starts.length : width;
  let f = 0;
  let breaks = 0;
  while (true) {
    let s: number;
    let e: number;
    let esc = 0;
    if (p < len && b[p] === QUOTE) {
      p++;
      s = p;
      while (true) {
        if (p >= len) {
          if (!eof) return INCOMPLETE;
          throw malformed(cur.line, 'the file ends inside a quoted field');
        }
        const c = b[p];
        if (c === QUOTE) {
          if (p + 1 >= len && !eof) return INCOMPLETE;
          if (p + 1 < len && b[p + 1] === QUOTE) { esc = 1; p += 2; continue; }
          e = p;
          p++;
          break;
        }
        if (c === LF) breaks++;
        p++;
      }
      if (p < len && b[p] !== delim && b[p] !== LF && b[p] !== CR) {
        throw malformed(cur.line + breaks, `a character follows the closing quote of field ${f + 1} (quotes inside a quoted field are written "")`);
      }
    } else {
      s = p;
      while (p < len && b[p] !== delim && b[p] !== LF) p++;
      if (p >= len && !eof) return INCOMPLETE;
      e = p;
      if (e > s && b[e - 1] === CR) e--;
    }
    if (f < cap) {
      starts[base + f] = s;
      ends[base + f] = e;
      escaped[base + f] = esc;
    }
    f++;
    if (p >= len) break;
    const c = b[p];
    if (c === delim) { p++; continue; }
    if (c === CR) {
      if (p + 1 >= len && !eof) return INCOMPLETE;
      p++;
    }
    if (p < len && b[p] === LF) p++;
    break;
  }
  cur.pos = p;
  cur.line += 1 + breaks;
  return f;
}
