// The column names pandas keeps in a to_hdf(format="table") table's values_block_<i>_kind
// attribute: a Python list of names, pickled with protocol 0, e.g. "(lp0\nVtemp\np1\naVrh\np2\na.".
// This is not an unpickler. It reads one small grammar — a list (or tuple) of str, int or float
// items — and refuses everything else: no opcode that imports, calls or builds an object is
// recognised, so nothing is ever executed or constructed.
//
//   pickle  := "(" ("l" | "t") memo? item* "."          (MARK, LIST or TUPLE, STOP)
//            | "(" "l" memo? (item "a")* "."            (APPEND after each item, as pandas writes)
//   item    := ("V" text "\n" | "I" int "\n" | "L" int "L"? "\n" | "F" float "\n" | "g" n "\n") memo?
//   memo    := "p" n "\n"                               (PUT: remembers the last item for GET)
//
// "V" text is raw-unicode-escape: latin-1 bytes, with \uXXXX and \UXXXXXXXX for the rest.

/** Why a pickle was not read: the first thing outside the grammar. */
export class PickleRefused extends Error {}

function refuse(what: string, at: number): never {
  throw new PickleRefused(`${what} at byte ${at}`);
}

/** The bytes of an HDF5 string attribute as read (ASCII attributes come back decoded as windows-1252). */
const CP1252 = new Map<string, number>();
{
  const dec = new TextDecoder('windows-1252');
  for (let b = 0x80; b < 0xa0; b++) {
    const c = dec.decode(new Uint8Array([b]));
    if (c.charCodeAt(0) > 0xff) CP1252.set(c, b);
  }
}

/** The attribute's text back to its bytes (one char per byte), or null when it cannot be. */
export function attributeBytes(text: string): Uint8Array | null {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0xff) out[i] = c;
    else {
      const b = CP1252.get(text[i]);
      if (b === undefined) return null;
      out[i] = b;
    }
  }
  return out;
}

const MAX_ITEMS = 100_000;
const MAX_BYTES = 4 << 20;

function line(b: Uint8Array, p: number): number {
  const nl = b.indexOf(0x0a, p);
  if (nl < 0) refuse('a line without its end', p);
  return nl;
}

function ascii(b: Uint8Array, s: number, e: number): string {
  let out = '';
  for (let i = s; i < e; i++) out += String.fromCharCode(b[i]);
  return out;
}

/** raw-unicode-escape: each byte is its code point, except \uXXXX and \UXXXXXXXX. */
function rawUnicode(b: Uint8Array, s: number, e: number): string {
  let out = '';
  for (let i = s; i < e; i++) {
    const c = b[i];
    if (c === 0x5c && i + 1 < e && (b[i + 1] === 0x75 || b[i + 1] === 0x55)) {
      const n = b[i + 1] === 0x75 ? 4 : 8;
      const hex = ascii(b, i + 2, i + 2 + n);
      if (hex.length !== n || !/^[0-9a-fA-F]+$/.test(hex)) refuse('a broken \\u escape', i);
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) refuse('an escape that is not a character', i);
      out += String.fromCodePoint(cp);
      i += 1 + n;
    } else out += String.fromCharCode(c);
  }
  return out;
}

/**
 * The names in a protocol-0 pickle of a list or tuple of str/int/float. Throws PickleRefused for
 * anything else (other opcodes, nesting, dicts, globals, binary protocols).
 */
export function readPickledNames(bytes: Uint8Array): string[] {
  if (bytes.length > MAX_BYTES) refuse('a pickle too long to be a list of names', 0);
  const b = bytes;
  let p = 0;
  const memo = new Map<string, string>();
  const items: string[] = [];
  let last: string | null = null;
  if (b[p++] !== 0x28) refuse('not a MARK', 0); // (
  const kind = b[p++];
  if (kind !== 0x6c && kind !== 0x74) { // l (list) … or items then t (tuple)
    p--;
  }
  const closed = kind === 0x6c; // LIST came first: the list exists, items are APPENDed
  let tupleEnd = false;
  while (p < b.length) {
    const op = b[p];
    const at = p;
    p++;
    switch (op) {
      case 0x2e: { // . STOP
        if (p !== b.length) refuse('bytes after STOP', p);
        if (!closed && !tupleEnd) refuse('STOP before the list or tuple is built', at);
        return items;
      }
      case 0x70: { // p PUT n
        const nl = line(b, p);
        const key = ascii(b, p, nl);
        if (!/^\d{1,9}$/.test(key)) refuse('a PUT without a number', at);
        if (last !== null) memo.set(key, last);
        p = nl + 1;
        break;
      }
      case 0x67: { // g GET n
        const nl = line(b, p);
        const v = memo.get(ascii(b, p, nl));
        if (v === undefined) refuse('a GET of nothing remembered', at);
        pushItem(v);
        p = nl + 1;
        break;
      }
      case 0x56: { // V unicode
        const nl = line(b, p);
        pushItem(rawUnicode(b, p, nl));
        p = nl + 1;
        break;
      }
      case 0x49: { // I int (I00 / I01 are False / True)
        const nl = line(b, p);
        const t = ascii(b, p, nl);
        if (!/^[-+]?\d{1,20}$/.test(t)) refuse('an INT that is not an integer', at);
        pushItem(t === '00' ? 'False' : t === '01' ? 'True' : BigInt(t).toString());
        p = nl + 1;
        break;
      }
      case 0x4c: { // L long
        const nl = line(b, p);
        const t = ascii(b, p, nl).replace(/L$/, '');
        if (!/^[-+]?\d{1,40}$/.test(t)) refuse('a LONG that is not an integer', at);
        pushItem(BigInt(t).toString());
        p = nl + 1;
        break;
      }
      case 0x46: { // F float
        const nl = line(b, p);
        const t = ascii(b, p, nl);
        const v = Number(t);
        if (!/^[-+]?(\d+\.?\d*([eE][-+]?\d+)?|inf|nan)$/.test(t) || (Number.isNaN(v) && t !== 'nan')) refuse('a FLOAT that is not a number', at);
        pushItem(Number.isInteger(v) ? v.toFixed(1) : String(v));
        p = nl + 1;
        break;
      }
      case 0x61: { // a APPEND
        if (!closed || last === null) refuse('an APPEND outside a list', at);
        last = null;
        break;
      }
      case 0x74: { // t TUPLE (after the items, in a tuple pickle)
        if (closed || tupleEnd) refuse('a TUPLE where none belongs', at);
        tupleEnd = true;
        break;
      }
      default:
        refuse(`opcode ${JSON.stringify(String.fromCharCode(op))}, which a list of names never holds`, at);
    }
  }
  return refuse('no STOP', p);

  function pushItem(v: string): void {
    if (tupleEnd) refuse('an item after the tuple', p);
    if (closed && last !== null) refuse('two items without APPEND', p);
    if (items.length >= MAX_ITEMS) refuse('too many names', p);
    items.push(v);
    last = v;
  }
}
