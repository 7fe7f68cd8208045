// Tag-set codes: one small integer per row of a batch for its whole tag set (equal tag sets, equal
// codes), computed from the bytes of the tag columns without decoding each row's text. Uploads
// use them twice: to follow the time ranges each tag set writes (invalidate.ts) and to group rows
// into partial aggregates (pending.ts).
import type { ColumnBatch, ColumnData } from '../domain/types.ts';
import type { Stream } from '../streams/catalog.ts';
import { tagColumns } from './layout.ts';

/** A tag set: the stream's tag columns' values in order (null where a row has none). */
export type TagValues = (string | null)[];

const decoder = new TextDecoder();

/** A batch's tag column as small integer codes per row (equal values, equal codes; 0 is null). */
interface ColumnCodes {
  codes: Int32Array;
  /** The value of each code. */
  values: (string | null)[];
}

function isNullAt(col: ColumnData, i: number): boolean {
  const v = col.validity;
  return v !== null && ((v.bitmap[(v.offset + i) >> 3] >> ((v.offset + i) & 7)) & 1) === 0;
}

/**
 * Codes for text held as bytes (utf8, utf8view): an open-addressing table keyed by the bytes of
 * each distinct value, so that a row costs a hash and a compare of a few bytes, not a decode.
 */
function byteCodes(col: ColumnData, n: number, at: ByteAt): ColumnCodes {
  const codes = new Int32Array(n);
  const values: (string | null)[] = [null];
  let size = 64;
  let reps = new Int32Array(size).fill(-1);
  let slotCodes = new Int32Array(size);
  const hash = (i: number): number => {
    const b = at.buf(i); const off = at.off(i); const len = at.len(i);
    let h = 0x811c9dc5 ^ len;
    for (let k = 0; k < len; k++) h = Math.imul(h ^ b[off + k], 16777619);
    return h >>> 0;
  };
  const equal = (a: number, c: number): boolean => {
    const la = at.len(a);
    if (la !== at.len(c)) return false;
    const ba = at.buf(a); const oa = at.off(a); const bc = at.buf(c); const oc = at.off(c);
    for (let k = 0; k < la; k++) if (ba[oa + k] !== bc[oc + k]) return false;
    return true;
  };
  const insert = (i: number, code: number, h: number): void => {
    let slot = h & (size - 1);
    while (reps[slot] !== -1) slot = (slot + 1) & (size - 1);
    reps[slot] = i;
    slotCodes[slot] = code;
  };
  let prev = -1;
  for (let i = 0; i < n; i++) {
    if (isNullAt(col, i)) { prev = -1; continue; }
    // Runs of one value are common: compare with the row before first.
    if (prev >= 0 && equal(prev, i)) { codes[i] = codes[prev]; prev = i; continue; }
    const h = hash(i);
    let slot = h & (size - 1);
    let code = 0;
    while (reps[slot] !== -1) {
      if (equal(reps[slot], i)) { code = slotCodes[slot]; break; }
      slot = (slot + 1) & (size - 1);
    }
    if (code === 0) {
      const off = at.off(i);
      code = values.length;
      values.push(decoder.decode(at.buf(i).subarray(off, off + at.len(i))));
      if (values.length * 2 > size) {
        const old = { reps, slotCodes };
        size *= 2;
        reps = new Int32Array(size).fill(-1);
        slotCodes = new Int32Array(size);
        for (let k = 0; k < old.reps.length; k++) if (old.reps[k] !== -1) insert(old.reps[k], old.slotCodes[k], hash(old.reps[k]));
      }
      insert(i, code, h);
    }
    codes[i] = code;
    prev = i;
  }
  return { codes, values };
}

const mix5 = (a: number, b: number, c: number, d: number, e: number): number =>
  Math.imul(Math.imul(Math.imul(Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b, 0xc2b2ae35) ^ c, 0x27d4eb2f) ^ d, 0x165667b1) ^ e;

/**
 * Codes for short text values held as five integers each (whatever the layout, they hold every
 * byte of the value and its length): an open-addressing table, so that a row costs a hash and a
 * compare of five integers, not a decode. Code 0 is null; `values` holds each code's text.
 */
class FiveIntCodes {
  private size = 64;
  private keys = new Int32Array(this.size * 5);
  private slotCodes = new Int32Array(this.size);
  readonly values: (string | null)[] = [null];

  /** The key's code, or 0 when it has none yet. */
  find(a: number, b: number, c: number, d: number, e: number): number {
    const { keys, slotCodes } = this;
    const mask = this.size - 1;
    let slot = mix5(a, b, c, d, e) & mask;
    while (slotCodes[slot] !== 0) {
      const k = slot * 5;
      if (keys[k] === a && keys[k + 1] === b && keys[k + 2] === c && keys[k + 3] === d && keys[k + 4] === e) return slotCodes[slot];
      slot = (slot + 1) & mask;
    }
    return 0;
  }

  /** Gives the key (not in the table) the next code, for `text`; returns the code. */
  add(a: number, b: number, c: number, d: number, e: number, text: string): number {
    const code = this.values.length;
    this.values.push(text);
    this.put(a, b, c, d, e, code);
    if (this.values.length * 2 > this.size) {
      const { keys, slotCodes } = this;
      this.size *= 2;
      this.keys = new Int32Array(this.size * 5);
      this.slotCodes = new Int32Array(this.size);
      for (let k = 0; k < slotCodes.length; k++) {
        if (slotCodes[k] !== 0) this.put(keys[k * 5], keys[k * 5 + 1], keys[k * 5 + 2], keys[k * 5 + 3], keys[k * 5 + 4], slotCodes[k]);
      }
    }
    return code;
  }

  private put(a: number, b: number, c: number, d: number, e: number, code: number): void {
    const mask = this.size - 1;
    let slot = mix5(a, b, c, d, e) & mask;
    while (this.slotCodes[slot] !== 0) slot = (slot + 1) & mask;
    const k = slot * 5;
    this.keys[k] = a; this.keys[k + 1] = b; this.keys[k + 2] = c; this.keys[k + 3] = d; this.keys[k + 4] = e;
    this.slotCodes[slot] = code;
  }
}

/**
 * Codes for Utf8 / LargeUtf8 values of at most 16 bytes (the usual tag): a value is its length and
 * four little-endian words read at fixed places (overlapping where it is shorter), which together
 * hold every byte.
 */
function shortUtf8Codes(col: ColumnData, n: number, offsets: Int32Array | Float64Array, data: Uint8Array): ColumnCodes {
  const codes = new Int32Array(n);
  const table = new FiveIntCodes();
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const bits = col.validity?.bitmap;
  const bitOff = col.validity?.offset ?? 0;
  for (let i = 0; i < n; i++) {
    if (bits !== undefined && ((bits[(bitOff + i) >> 3] >> ((bitOff + i) & 7)) & 1) === 0) continue;
    const s = offsets[i];
    const len = offsets[i + 1] - s;
    let a = 0; let b = 0; let c = 0; let d = 0;
    if (len >= 4) {
      const m = len - 4;
      a = dv.getInt32(s, true);
      b = dv.getInt32(s + (m < 4 ? m : 4), true);
      c = dv.getInt32(s + (m < 8 ? m : 8), true);
      d = dv.getInt32(s + m, true);
    } else {
      for (let k = 0; k < len; k++) a |= data[s + k] << (8 * k);
    }
    const code = table.find(len, a, b, c, d);
    codes[i] = code !== 0 ? code : table.add(len, a, b, c, d, decoder.decode(data.subarray(s, s + len)));
  }
  return { codes, values: table.values };
}

/**
 * Codes for Utf8View values that are all inline (≤ 12 bytes, the usual tag): a view's four words
 * (length and bytes, zero-padded) are the value.
 */
function inlineViewCodes(col: ColumnData, n: number, w: Int32Array, views: Uint8Array): ColumnCodes {
  const codes = new Int32Array(n);
  const table = new FiveIntCodes();
  const bits = col.validity?.bitmap;
  const bitOff = col.validity?.offset ?? 0;
  for (let i = 0; i < n; i++) {
    if (bits !== undefined && ((bits[(bitOff + i) >> 3] >> ((bitOff + i) & 7)) & 1) === 0) continue;
    const a = w[i * 4]; const b = w[i * 4 + 1]; const c = w[i * 4 + 2]; const d = w[i * 4 + 3];
    const code = table.find(a, b, c, d, 0);
    codes[i] = code !== 0 ? code : table.add(a, b, c, d, 0, decoder.decode(views.subarray(i * 16 + 4, i * 16 + 4 + a)));
  }
  return { codes, values: table.values };
}

/** Where row i's bytes are. */
interface ByteAt {
  buf(i: number): Uint8Array;
  off(i: number): number;
  len(i: number): number;
}

function columnCodes(col: ColumnData | undefined, n: number): ColumnCodes {
  if (!col) return { codes: new Int32Array(n), values: [null] };
  const v = col.values;
  switch (v.kind) {
    case 'dictionary': {
      const codes = new Int32Array(n);
      for (let i = 0; i < n; i++) codes[i] = isNullAt(col, i) ? 0 : Number(v.indices[i]) + 1;
      return { codes, values: [null, ...v.entries.map((e) => (e ? decoder.decode(e) : null))] };
    }
    case 'utf8': {
      const o = v.offsets;
      let short = true;
      for (let i = 0; i < n && short; i++) short = o[i + 1] - o[i] <= 16;
      return short ? shortUtf8Codes(col, n, o, v.data) : byteCodes(col, n, { buf: () => v.data, off: (i) => o[i], len: (i) => o[i + 1] - o[i] });
    }
    case 'utf8view': {
      const w = new Int32Array(v.views.buffer, v.views.byteOffset, v.views.byteLength >> 2);
      let inline = true;
      for (let i = 0; i < n && inline; i++) inline = w[i * 4] <= 12;
      if (inline) return inlineViewCodes(col, n, w, v.views);
      return byteCodes(col, n, {
        buf: (i) => (w[i * 4] <= 12 ? v.views : v.buffers[w[i * 4 + 2]]),
        off: (i) => (w[i * 4] <= 12 ? i * 16 + 4 : w[i * 4 + 3]),
        len: (i) => w[i * 4],
      });
    }
    default: {
      const codes = new Int32Array(n);
      const values: (string | null)[] = [null];
      const index = new Map<string, number>();
      for (let i = 0; i < n; i++) {
        const s = v.kind === 'strings' ? v.values[i] : null;
        if (s === null || isNullAt(col, i)) continue;
        let code = index.get(s);
        if (code === undefined) { code = values.length; values.push(s); index.set(s, code); }
        codes[i] = code;
      }
      return { codes, values };
    }
  }
}

/**
 * One code per row of a batch for its whole tag set (the tag column codes combined; equal tag
 * sets, equal codes), and the tag values of each code.
 */
export function tagSetCodes(stream: Pick<Stream, 'columns'>, batch: ColumnBatch): { combined: Int32Array; tuple(code: number): TagValues } {
  const n = batch.length;
  const byName = new Map(batch.columns.map((c) => [c.column.columnName, c]));
  const cols = tagColumns(stream).map((t) => columnCodes(byName.get(t.columnName), n));
  if (cols.length === 0) return { combined: new Int32Array(n), tuple: () => [] };
  if (cols.length === 1) return { combined: cols[0].codes, tuple: (code) => [cols[0].values[code]] };
  const combined = new Int32Array(n);
  const index = new Map<string, number>();
  const tuples: TagValues[] = [];
  let prev: string | null = null;
  let prevCode = -1;
  for (let i = 0; i < n; i++) {
    let key = '';
    for (const c of cols) key += `${c.codes[i]},`;
    if (key !== prev) {
      let code = index.get(key);
      if (code === undefined) { code = tuples.length; tuples.push(cols.map((c) => c.values[c.codes[i]])); index.set(key, code); }
      prev = key;
      prevCode = code;
    }
    combined[i] = prevCode;
  }
  return { combined, tuple: (code) => tuples[code] };
}
