// Checks a decoded record batch's buffers before anything reads a value from them. apache-arrow
// takes offsets, lengths, views and indices from the body as given; a damaged file would then
// send the encoders outside their buffers, into gigabyte allocations, or hand PostgreSQL bytes
// that are not UTF-8. Every check is one linear pass over a buffer the batch already holds; the
// walk gives the event loop a turn every few milliseconds.
//
//   every column    values long enough for its rows; validity bitmap long enough; 0 ≤ nulls ≤ rows
//   Utf8, LargeUtf8 offsets non-decreasing, within the data buffer; the text valid UTF-8, no NUL
//   Utf8View        views within the views buffer, each long value within its data buffer; UTF-8
//   Dictionary      a dictionary present, its text checked as above, every index within it
import { isUtf8 } from 'node:buffer';
import { type Data, type DataType, type Vector, DateUnit, Type } from 'apache-arrow';
import { AppError } from '../../errors/index.ts';

/** Where a failure is reported: the column, the record batch (1-based) and, when known, the byte in the body. */
export interface BatchWhere {
  column: string;
  batch: number;
  /** Position in the upload of a byte of a buffer the batch holds, or null when it is not a view of the body. */
  locate(view: ArrayBufferView, byteInView: number): number | null;
}

const YIELD_EVERY_MS = 4;
const ROWS_PER_CHECK = 16_384;

/** Gives the event loop a turn when the current pass has held it for a few milliseconds. */
export class Yielder {
  private last = performance.now();

  async maybe(): Promise<void> {
    if (performance.now() - this.last < YIELD_EVERY_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.last = performance.now();
  }
}

function corrupt(where: BatchWhere, what: string, view?: ArrayBufferView, byteInView?: number): AppError {
  const byte = view !== undefined && byteInView !== undefined ? where.locate(view, byteInView) : null;
  const at = byte === null ? '' : ` (byte ${byte} of the body)`;
  return new AppError(422, 'corrupt_batch',
    `column ${JSON.stringify(where.column)}, record batch ${where.batch}: ${what}${at}; the file is damaged, nothing was stored`,
    { detail: { column: where.column, batch: where.batch, byte } });
}

function badUtf8(where: BatchWhere, row: number, view: Uint8Array, start: number, end: number): AppError {
  const value = view.subarray(start, end);
  const nul = isUtf8(value);
  const byteInView = start + (nul ? value.indexOf(0) : 0);
  const byte = where.locate(view, byteInView);
  const at = byte === null ? `value starting at byte ${start} of its data buffer` : `byte ${byte} of the body`;
  const what = nul ? 'holds a NUL character (U+0000), which PostgreSQL text cannot store' : 'is not valid UTF-8';
  return new AppError(422, 'invalid_utf8',
    `column ${JSON.stringify(where.column)}, record batch ${where.batch}, row ${row}: the text ${what} (${at}); nothing was stored`,
    { detail: { column: where.column, batch: where.batch, row, byte } });
}

/** Bytes per value of a fixed-width type; 0 for the types that are not fixed width. */
function byteWidth(t: DataType): number {
  const x = t as DataType & { bitWidth?: number; precision?: number; unit?: number };
  switch (t.typeId) {
    case Type.Int: case Type.Time: case Type.Decimal: return (x.bitWidth as number) / 8;
    case Type.Float: return x.precision === 0 ? 2 : x.precision === 1 ? 4 : 8;
    case Type.Timestamp: case Type.Duration: return 8;
    case Type.Date: return x.unit === DateUnit.DAY ? 4 : 8;
    default: return 0;
  }
}

function isValidRow(bitmap: Uint8Array | null, offset: number, i: number): boolean {
  if (bitmap === null) return true;
  const bit = offset + i;
  return ((bitmap[bit >> 3] >> (bit & 7)) & 1) === 1;
}

/** The bitmap the encoders will read for this column's nulls (validityOf's rule), checked for length. */
function checkValidity(data: Data, where: BatchWhere): Uint8Array | null {
  const rows = data.length;
  if (!Number.isSafeInteger(rows) || rows < 0) throw corrupt(where, `it claims ${rows} rows`);
  if (data.nullCount > rows) throw corrupt(where, `it claims ${data.nullCount} nulls in ${rows} rows`);
  if (data.nullCount <= 0) return null;
  const bitmap = data.nullBitmap;
  const need = Math.ceil((data.offset + rows) / 8);
  if (!bitmap || bitmap.byteLength < need) {
    throw corrupt(where, `it has ${data.nullCount} nulls but a validity bitmap of ${bitmap?.byteLength ?? 0} bytes; ${rows} rows need ${need}`);
  }
  return bitmap;
}

function checkFixed(data: Data, where: BatchWhere, width: number): void {
  const values = data.values as ArrayBufferView | undefined;
  const need = data.length * width;
  if (!values || values.byteLength < need) {
    throw corrupt(where, `its values buffer holds ${values?.byteLength ?? 0} bytes; ${data.length} rows of ${String(data.type)} need ${need}`);
  }
}

/** True when bytes are valid UTF-8 without a NUL (which PostgreSQL text cannot hold). */
function storableText(bytes: Uint8Array): boolean {
  return isUtf8(bytes) && Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(0) < 0;
}

/** storableText for bytes [start, end); short ASCII runs never leave JavaScript. */
function utf8At(bytes: Uint8Array, start: number, end: number): boolean {
  if (end - start <= 32) {
    let plain = true;
    for (let k = start; k < end; k++) if (bytes[k] >= 0x80 || bytes[k] === 0) { plain = false; break; }
    if (plain) return true;
  }
  return storableText(bytes.subarray(start, end));
}

/**
 * Checks Utf8 / LargeUtf8 offsets and text; returns the offsets as numbers (LargeUtf8's int64
 * offsets converted once, here, after they are known to be in range).
 */
async function checkOffsets(data: Data, where: BatchWhere, bitmap: Uint8Array | null, y: Yielder): Promise<Int32Array | Float64Array> {
  const rows = data.length;
  const raw = data.valueOffsets as unknown as Int32Array | BigInt64Array | undefined;
  const bytes = (data.values as Uint8Array | undefined) ?? new Uint8Array(0);
  if (!raw || raw.length < rows + 1) {
    throw corrupt(where, `its offsets buffer holds ${raw?.length ?? 0} offsets; ${rows} rows need ${rows + 1}`);
  }
  let offsets: Int32Array | Float64Array;
  if (raw instanceof BigInt64Array) {
    // Read as int32 halves: a BigInt per row would cost more than the rest of the checks.
    const words = new Int32Array(raw.buffer, raw.byteOffset, (rows + 1) * 2);
    offsets = new Float64Array(rows + 1);
    for (let i = 0; i <= rows; i++) {
      const hi = words[2 * i + 1];
      const o = hi * 4294967296 + (words[2 * i] >>> 0);
      if (hi < 0 || o > bytes.byteLength) {
        throw corrupt(where, `value offset ${raw[i]} at row ${i} lies outside its ${bytes.byteLength}-byte data buffer`, raw, i * 8);
      }
      offsets[i] = o;
      if ((i & (ROWS_PER_CHECK - 1)) === 0) await y.maybe();
    }
  } else {
    offsets = raw.subarray(0, rows + 1);
  }
  const width = raw instanceof BigInt64Array ? 8 : 4;
  let prev = offsets[0];
  if (prev < 0 || prev > bytes.byteLength) {
    throw corrupt(where, `value offset ${prev} at row 0 lies outside its ${bytes.byteLength}-byte data buffer`, raw, 0);
  }
  for (let i = 1; i <= rows; i++) {
    const o = offsets[i];
    if (o < prev || o > bytes.byteLength) {
      const why = o < prev ? `decreases from ${prev} to ${o}` : `lies outside its ${bytes.byteLength}-byte data buffer`;
      throw corrupt(where, `value offset at row ${i} ${why}`, raw, i * width);
    }
    prev = o;
    if ((i & (ROWS_PER_CHECK - 1)) === 0) await y.maybe();
  }
  await checkOffsetText(bytes, offsets, rows, bitmap, data.offset, where, y);
  return offsets;
}

/**
 * The whole text range is checked at once, then every value boundary: if the range is UTF-8 and
 * no value starts or ends inside a character, every value is UTF-8. Otherwise (or when null rows
 * hold stray bytes) each value is checked on its own, which also finds the row to report.
 */
async function checkOffsetText(
  bytes: Uint8Array, offsets: Int32Array | Float64Array, rows: number, bitmap: Uint8Array | null, bitOffset: number,
  where: BatchWhere, y: Yielder,
): Promise<void> {
  const start = offsets[0];
  const end = offsets[rows];
  if (storableText(bytes.subarray(start, end))) {
    let whole = true;
    for (let i = 0; i < rows; i++) {
      const o = offsets[i];
      if (o < end && (bytes[o] & 0xc0) === 0x80) { whole = false; break; }
    }
    if (whole) return;
  }
  for (let i = 0; i < rows; i++) {
    if (!isValidRow(bitmap, bitOffset, i)) continue;
    const s = offsets[i];
    const e = offsets[i + 1];
    if (!utf8At(bytes, s, e)) throw badUtf8(where, i, bytes, s, e);
    if ((i & (ROWS_PER_CHECK - 1)) === 0) await y.maybe();
  }
}

/** Checks Utf8View's 16-byte views: inline values (≤ 12 bytes) and references into the data buffers. */
async function checkViews(data: Data, where: BatchWhere, bitmap: Uint8Array | null, y: Yielder): Promise<void> {
  const rows = data.length;
  const views = data.values as Uint8Array | undefined;
  if (!views || views.byteLength < rows * 16) {
    throw corrupt(where, `its views buffer holds ${views?.byteLength ?? 0} bytes; ${rows} rows need ${rows * 16}`);
  }
  const buffers = (data.variadicBuffers ?? []) as readonly Uint8Array[];
  const dv = new DataView(views.buffer, views.byteOffset, views.byteLength);
  for (let i = 0; i < rows; i++) {
    if (!isValidRow(bitmap, data.offset, i)) continue;
    const at = i * 16;
    const len = dv.getInt32(at, true);
    if (len < 0) throw corrupt(where, `the view of row ${i} claims a length of ${len}`, views, at);
    if (len <= 12) {
      if (!utf8At(views, at + 4, at + 4 + len)) throw badUtf8(where, i, views, at + 4, at + 4 + len);
    } else {
      const b = dv.getInt32(at + 8, true);
      const off = dv.getInt32(at + 12, true);
      const buf = buffers[b];
      if (b < 0 || buf === undefined) {
        throw corrupt(where, `the view of row ${i} refers to data buffer ${b}; the batch has ${buffers.length}`, views, at + 8);
      }
      if (off < 0 || off + len > buf.byteLength) {
        throw corrupt(where, `the view of row ${i} (bytes ${off}–${off + len} of data buffer ${b}) lies outside that ${buf.byteLength}-byte buffer`, views, at + 12);
      }
      if (!utf8At(buf, off, off + len)) throw badUtf8(where, i, buf, off, off + len);
    }
    if ((i & (ROWS_PER_CHECK - 1)) === 0) await y.maybe();
  }
}

async function checkText(data: Data, where: BatchWhere, y: Yielder): Promise<Int32Array | Float64Array | null> {
  const bitmap = checkValidity(data, where);
  if (data.type.typeId === Type.Utf8View) {
    await checkViews(data, where, bitmap, y);
    return null;
  }
  return checkOffsets(data, where, bitmap, y);
}

export interface CheckedColumn {
  /** Utf8 / LargeUtf8 offsets as checked (LargeUtf8's converted to numbers). */
  offsets: Int32Array | Float64Array | null;
}

/**
 * Checks one column of a decoded record batch; `rows` is the batch's row count. Dictionaries
 * already checked are remembered in `checkedDictionaries` (they are shared across batches).
 */
export async function checkColumn(
  data: Data | undefined, rows: number, where: BatchWhere, checkedDictionaries: WeakSet<Vector>, y: Yielder,
): Promise<CheckedColumn> {
  if (!data) throw corrupt(where, 'the record batch holds no data for it');
  if (data.length !== rows) throw corrupt(where, `it holds ${data.length} rows; the record batch holds ${rows}`);
  const t = data.type;
  switch (t.typeId) {
    case Type.Utf8: case Type.LargeUtf8: case Type.Utf8View:
      return { offsets: await checkText(data, where, y) };
    case Type.Bool: {
      checkValidity(data, where);
      const bits = data.values as Uint8Array | undefined;
      const need = Math.ceil((data.offset + rows) / 8);
      if (!bits || bits.byteLength < need) throw corrupt(where, `its values bitmap holds ${bits?.byteLength ?? 0} bytes; ${rows} rows need ${need}`);
      return { offsets: null };
    }
    case Type.Dictionary: {
      const bitmap = checkValidity(data, where);
      const indexType = (t as unknown as { indices: DataType }).indices;
      checkFixed(data, where, byteWidth(indexType));
      const dict = data.dictionary as Vector | undefined;
      if (!dict) throw corrupt(where, 'it refers to a dictionary that no dictionary batch defined before it');
      if (!checkedDictionaries.has(dict)) {
        for (const chunk of dict.data as Data[]) await checkText(chunk, { ...where, column: `${where.column} (dictionary)` }, y);
        checkedDictionaries.add(dict);
      }
      const idx = data.values as unknown as ArrayLike<number | bigint>;
      const size = dict.length;
      for (let i = 0; i < rows; i++) {
        if (!isValidRow(bitmap, data.offset, i)) continue;
        const k = Number(idx[i]);
        if (!(k >= 0 && k < size)) {
          throw corrupt(where, `row ${i} refers to dictionary entry ${String(idx[i])}; the dictionary holds ${size}`, data.values as ArrayBufferView, i * byteWidth(indexType));
        }
        if ((i & (ROWS_PER_CHECK - 1)) === 0) await y.maybe();
      }
      return { offsets: null };
    }
    case Type.Null:
      return { offsets: null };
    default: {
      checkValidity(data, where);
      const width = byteWidth(t);
      if (width === 0) throw corrupt(where, `it has type ${String(t)}, which Strata does not read`);
      checkFixed(data, where, width);
      return { offsets: null };
    }
  }
}
