// Binary COPY tuples written row after row by code made for the batch's column layout: each row's
// values go out in one sequential pass, every load and store in the loop is of one known type,
// and no per-row cursors are kept. The layouts ingest sees (numbers from typed arrays, int8 and
// timestamps as int64, bool bits, text as Utf8, Utf8View or a dictionary, each with or without
// nulls) are compiled once per layout and cached; for anything else encoder.ts's column-by-column
// path is used. The generated code is built from this file's templates and column positions only,
// never from user data.
import type { ColumnBatch, ColumnData } from '../domain/types.ts';
import { PG_OFFSET_HI, PG_OFFSET_LO } from './binary-format.ts';
import { copyBytes, viewWords } from './text-bytes.ts';

type Encode = (batch: ColumnBatch, ingestId: bigint, start: number, end: number, alloc: (bytes: number) => Buffer) => Buffer;

/** One column's part of the code: its data bound to locals, how many bytes a row takes, and how it is written. */
interface Part { bind: string; size: string; fixed: number; write: string }

const bit = (bm: string, off: string): string => `((${bm}[(${off} + i) >> 3] >> ((${off} + i) & 7)) & 1)`;

function part(col: ColumnData, k: number): Part | null {
  const v = col.values;
  const nullable = col.validity !== null;
  const c = `c${k}`;
  const bind = [`const ${c} = cols[${k}];`, `const a${k} = ${c}.values;`];
  if (nullable) bind.push(`const vb${k} = ${c}.validity.bitmap, vo${k} = ${c}.validity.offset;`);
  const isNull = nullable ? `${bit(`vb${k}`, `vo${k}`)} === 0` : 'false';
  const fixedValue = (width: number, write: string): Part => ({
    bind: bind.join('\n'),
    size: nullable ? `if (${isNull}) size -= ${width};` : '',
    fixed: 4 + width,
    write: nullable
      ? `if (${isNull}) { dv.setInt32(p, -1); p += 4; } else { dv.setInt32(p, ${width}); ${write} p += ${4 + width}; }`
      : `dv.setInt32(p, ${width}); ${write} p += ${4 + width};`,
  });
  switch (col.column.type) {
    case 'float8': case 'float4': case 'int4': case 'int2': {
      if (v.kind !== 'number') return null;
      bind.push(`const x${k} = a${k}.values;`);
      if (col.column.type === 'float8') return fixedValue(8, `dv.setFloat64(p + 4, x${k}[i]);`);
      if (col.column.type === 'float4') return fixedValue(4, `dv.setFloat32(p + 4, x${k}[i]);`);
      if (col.column.type === 'int4') return fixedValue(4, `dv.setInt32(p + 4, x${k}[i]);`);
      return fixedValue(2, `dv.setInt16(p + 4, x${k}[i]);`);
    }
    case 'int8': case 'timestamptz': {
      if (v.kind !== 'bigint' || v.unsigned === true) return null;
      bind.push(`const w${k} = new Int32Array(a${k}.values.buffer, a${k}.values.byteOffset, a${k}.values.length * 2);`);
      const [hiOff, loOff] = col.column.type === 'timestamptz' ? [PG_OFFSET_HI, PG_OFFSET_LO] : [0, 0];
      return fixedValue(8, `{ let lo = (w${k}[2 * i] >>> 0) - ${loOff}; let hi = w${k}[2 * i + 1] - ${hiOff}; `
        + 'if (lo < 0) { lo += 4294967296; hi -= 1; } dv.setInt32(p + 4, hi); dv.setUint32(p + 8, lo); }');
    }
    case 'bool':
      if (v.kind !== 'bits') return null;
      bind.push(`const b${k} = a${k}.bitmap, bo${k} = a${k}.offset;`);
      return fixedValue(1, `dv.setUint8(p + 4, ${bit(`b${k}`, `bo${k}`)});`);
    case 'text': {
      // len: the value's byte length, or −1 for null; copy: its bytes to buf at q.
      let len: string;
      let copy: string;
      if (v.kind === 'utf8' && v.offsets instanceof Int32Array) {
        bind.push(`const o${k} = a${k}.offsets, d${k} = a${k}.data;`);
        len = `o${k}[i + 1] - o${k}[i]`;
        copy = `copyBytes(buf, q, d${k}, o${k}[i], len);`;
      } else if (v.kind === 'utf8view') {
        bind.push(`const vw${k} = viewWords(a${k}.views), vv${k} = a${k}.views, vbuf${k} = a${k}.buffers;`);
        len = `vw${k}[i * 4]`;
        copy = `if (len <= 12) copyBytes(buf, q, vv${k}, i * 16 + 4, len); else copyBytes(buf, q, vbuf${k}[vw${k}[i * 4 + 2]], vw${k}[i * 4 + 3], len);`;
      } else if (v.kind === 'dictionary' && !(v.indices instanceof BigInt64Array)) {
        bind.push(`const e${k} = a${k}.entries, ix${k} = a${k}.indices;`);
        bind.push(`const el${k} = new Int32Array(e${k}.length); for (let j = 0; j < e${k}.length; j++) el${k}[j] = e${k}[j] == null ? -1 : e${k}[j].length;`);
        len = `(el${k}[ix${k}[i]] ?? -1)`;
        copy = `copyBytes(buf, q, e${k}[ix${k}[i]], 0, len);`;
      } else {
        return null;
      }
      const valueLen = nullable ? `(${isNull} ? -1 : ${len})` : len;
      return {
        bind: bind.join('\n'),
        size: `{ const len = ${valueLen}; if (len > 0) size += len; }`,
        fixed: 4,
        write: `{ const len = ${valueLen}; dv.setInt32(p, len); if (len > 0) { const q = p + 4; ${copy} } p += 4 + (len > 0 ? len : 0); }`,
      };
    }
    default:
      return null;
  }
}

function compile(batch: ColumnBatch): Encode | null {
  const parts: Part[] = [];
  for (const [k, col] of batch.columns.entries()) {
    const p = part(col, k);
    if (p === null) return null;
    parts.push(p);
  }
  // field count (2), time (4 + 8), the columns, ingest_id (4 + 8)
  const fixed = 14 + parts.reduce((s, x) => s + x.fixed, 0) + 12;
  const sizing = parts.map((x) => x.size).filter(Boolean);
  const body = `
    const cols = batch.columns;
    ${parts.map((x) => x.bind).join('\n')}
    const n = end - start;
    let size = n * ${fixed};
    ${sizing.length > 0 ? `for (let i = start; i < end; i++) { ${sizing.join('\n')} }` : ''}
    const buf = alloc(size);
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const t32 = new Int32Array(batch.time.buffer, batch.time.byteOffset, batch.time.length * 2);
    const idHi = Number(BigInt.asIntN(32, ingestId >> 32n));
    const idLo = Number(BigInt.asUintN(32, ingestId));
    let p = 0;
    for (let i = start; i < end; i++) {
      dv.setInt16(p, ${parts.length + 2});
      { let lo = (t32[2 * i] >>> 0) - ${PG_OFFSET_LO}; let hi = t32[2 * i + 1] - ${PG_OFFSET_HI};
        if (lo < 0) { lo += 4294967296; hi -= 1; }
        dv.setInt32(p + 2, 8); dv.setInt32(p + 6, hi); dv.setUint32(p + 10, lo); }
      p += 14;
      ${parts.map((x) => x.write).join('\n')}
      dv.setInt32(p, 8); dv.setInt32(p + 4, idHi); dv.setUint32(p + 8, idLo);
      p += 12;
    }
    if (p !== size) throw new Error('row encoder: ' + p + ' bytes written for ' + size + ' planned');
    return buf;`;
  const make = new Function('copyBytes', 'viewWords', `return function encodeRowsCompiled(batch, ingestId, start, end, alloc) {${body}}`);
  return make(copyBytes, viewWords) as Encode;
}

/** A layout's key: each column's type, value kind and whether it has nulls. */
function layoutKey(batch: ColumnBatch): string {
  let key = '';
  for (const c of batch.columns) {
    const v = c.values;
    const sub = v.kind === 'utf8' ? (v.offsets instanceof Int32Array ? '32' : '64')
      : v.kind === 'dictionary' ? (v.indices instanceof BigInt64Array ? 'big' : '')
        : v.kind === 'bigint' ? (v.unsigned === true ? 'u' : '') : '';
    key += `${c.column.type}:${v.kind}${sub}:${c.validity === null ? 0 : 1};`;
  }
  return key;
}

const compiled = new Map<string, Encode | null>();
const MAX_LAYOUTS = 256;

/** The compiled encoder for the batch's layout, or null when encoder.ts's general path must serve. */
export function rowEncoderFor(batch: ColumnBatch): Encode | null {
  const key = layoutKey(batch);
  let enc = compiled.get(key);
  if (enc === undefined) {
    enc = compile(batch);
    if (compiled.size >= MAX_LAYOUTS) compiled.clear();
    compiled.set(key, enc);
  }
  return enc;
}
