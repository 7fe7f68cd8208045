// A `COPY … TO STDOUT` stream (pg-copy-streams' `to`, in object mode) that leaves the rows' bytes
// where the socket put them. pg-copy-streams takes every CopyData message — PostgreSQL sends one
// per row — as a buffer of its own before it joins them, and copying a piece's messages out, even
// at once, is a native call a row. Here each piece read from the socket goes to the reader as it
// is, with the ranges of its whole CopyData messages' contents (and of the rest of one the library
// began); anything else (the messages around the data: CopyOutResponse, CopyDone, an error; a
// message header cut between pieces) goes the library's way, with the library's own state, from
// where the direct reading stopped, and the content it takes out comes as a Buffer of its own.
import { to as copyTo } from 'pg-copy-streams';

type CopyToStream = ReturnType<typeof copyTo>;

/** Contents of CopyData messages left in the piece read from the socket: bytes ranges[2k] … ranges[2k + 1], k < count, in order. */
export interface CopyDataRanges {
  piece: Buffer;
  ranges: Int32Array;
  count: number;
}

/** What the stream yields, in order: contents in place, or a Buffer the library took out. */
export type CopyData = CopyDataRanges | Buffer;

/** Hands each part of what the stream yielded, in order, to `take` (bytes start … end of buf). */
export function forEachPart(data: CopyData, take: (buf: Buffer, start: number, end: number) => void): void {
  if (Buffer.isBuffer(data)) take(data, 0, data.length);
  else for (let k = 0; k < data.count; k++) take(data.piece, data.ranges[2 * k], data.ranges[2 * k + 1]);
}

/** The parts of pg-copy-streams 7's CopyToQueryStream (copy-to.js) this reads and takes over. */
interface Internals {
  _state: number;
  _code: number;
  _unreadMessageContentLength: number;
  /** Null once the stream ended. */
  _buffer: { size: number } | null;
  _parse(chunk: Buffer): boolean;
  push(chunk: CopyData | null): boolean;
}

const COPY_DATA = 0x64;
/** copy-to.js's decoder states: before a message's code byte; inside its content. */
const PG_CODE = 0;
const PG_MESSAGE = 2;

export function copyOut(sql: string): CopyToStream {
  // Object mode: what is pushed reaches the reader as it is, never joined with what came before.
  const stream = copyTo(sql, { objectMode: true, highWaterMark: 16 });
  const s = stream as unknown as Internals;
  const libraryParse = s._parse.bind(s);
  s._parse = (chunk: Buffer): boolean => {
    // Where the library is mid-header, or inside a message other than CopyData: its way.
    if (s._buffer === null || s._buffer.size > 0 || !(s._state === PG_CODE || (s._state === PG_MESSAGE && s._code === COPY_DATA))) return libraryParse(chunk);
    // Room for a message every 128 bytes (rows are rarely shorter); grown when they are.
    let ranges = new Int32Array(Math.max(64, chunk.length >> 6));
    let count = 0;
    let pos = 0;
    const range = (start: number, end: number): void => {
      if (2 * count + 2 > ranges.length) { const grown = new Int32Array(2 * ranges.length); grown.set(ranges); ranges = grown; }
      ranges[2 * count] = start;
      ranges[2 * count + 1] = end;
      count++;
    };
    if (s._state === PG_MESSAGE) {
      pos = Math.min(chunk.length, s._unreadMessageContentLength);
      if (pos > 0) range(0, pos);
      s._unreadMessageContentLength -= pos;
      if (s._unreadMessageContentLength === 0) s._state = PG_CODE;
    }
    while (s._state === PG_CODE && pos + 5 <= chunk.length && chunk[pos] === COPY_DATA) {
      const end = pos + 1 + chunk.readUInt32BE(pos + 1);
      if (end > chunk.length) break;
      if (end > pos + 5) range(pos + 5, end);
      pos = end;
    }
    let drained = true;
    if (count > 0) drained = s.push({ piece: chunk, ranges, count } satisfies CopyDataRanges);
    if (pos < chunk.length) drained = libraryParse(chunk.subarray(pos)) && drained;
    return drained;
  };
  return stream;
}
