// A `COPY … TO STDOUT` stream (pg-copy-streams' `to`) that takes the rows' bytes out of each piece
// read from the socket with one copy. pg-copy-streams takes every CopyData message — PostgreSQL
// sends one per row — as a buffer of its own before it joins them, which cost the compression
// worker about a tenth of its time. Here the whole CopyData messages of a piece, and the rest of
// one the library began, are copied out directly; anything else (the messages around the data:
// CopyOutResponse, CopyDone, an error; a message header cut between pieces) goes the library's
// way, with the library's own state, from where the direct reading stopped.
import { to as copyTo } from 'pg-copy-streams';

type CopyToStream = ReturnType<typeof copyTo>;

/** The parts of pg-copy-streams 7's CopyToQueryStream (copy-to.js) this reads and takes over. */
interface Internals {
  _state: number;
  _code: number;
  _unreadMessageContentLength: number;
  /** Null once the stream ended. */
  _buffer: { size: number } | null;
  _parse(chunk: Buffer): boolean;
  push(chunk: Buffer): boolean;
}

const COPY_DATA = 0x64;
/** copy-to.js's decoder states: before a message's code byte; inside its content. */
const PG_CODE = 0;
const PG_MESSAGE = 2;

export function copyOut(sql: string): CopyToStream {
  const stream = copyTo(sql);
  const s = stream as unknown as Internals;
  const libraryParse = s._parse.bind(s);
  let ranges = new Int32Array(1024);
  s._parse = (chunk: Buffer): boolean => {
    // Where the library is mid-header, or inside a message other than CopyData: its way.
    if (s._buffer === null || s._buffer.size > 0 || !(s._state === PG_CODE || (s._state === PG_MESSAGE && s._code === COPY_DATA))) return libraryParse(chunk);
    let count = 0;
    let total = 0;
    let pos = 0;
    const range = (start: number, end: number): void => {
      if (2 * count + 2 > ranges.length) { const grown = new Int32Array(2 * ranges.length); grown.set(ranges); ranges = grown; }
      ranges[2 * count] = start;
      ranges[2 * count + 1] = end;
      count++;
      total += end - start;
    };
    if (s._state === PG_MESSAGE) {
      pos = Math.min(chunk.length, s._unreadMessageContentLength);
      range(0, pos);
      s._unreadMessageContentLength -= pos;
      if (s._unreadMessageContentLength === 0) s._state = PG_CODE;
    }
    while (s._state === PG_CODE && pos + 5 <= chunk.length && chunk[pos] === COPY_DATA) {
      const end = pos + 1 + chunk.readUInt32BE(pos + 1);
      if (end > chunk.length) break;
      range(pos + 5, end);
      pos = end;
    }
    let drained = true;
    if (total > 0) {
      const out = Buffer.allocUnsafe(total);
      let at = 0;
      for (let k = 0; k < count; k++) at += chunk.copy(out, at, ranges[2 * k], ranges[2 * k + 1]);
      drained = s.push(out);
    }
    if (pos < chunk.length) drained = libraryParse(chunk.subarray(pos)) && drained;
    return drained;
  };
  return stream;
}
