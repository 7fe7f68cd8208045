// Strata's own HDF5 LZF filter (id 32000, h5py's), used instead of the one in h5wasm-plugins.
//
// Why: that plugin sizes its output buffer from the dataset's filter parameter cd_values[2]
// (the decoded chunk size, which h5py's set_local writes) and fails when it is missing. h5py
// writes no parameters for LZF on variable-length string datasets, so every such chunk failed to
// decode; h5wasm then freed the unread vlen buffer and the wasm module aborted. This filter
// decodes LZF in JavaScript into a buffer that grows as needed, so the parameters are a hint.
//
// How: HDF5 finds filters by loading plugin libraries from its search path. The worker writes a
// tiny side module (assembled below, ~250 bytes) into a directory searched first; its filter
// and H5PLget_plugin_info are forwards to JavaScript functions, supplied through its imports
// (installImports patches WebAssembly.Instance in the worker thread for modules that ask for them).
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

interface Heap {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
}

const H5Z_FLAG_REVERSE = 0x0100;
const LZF_FILTER_ID = 32000;
const FILTER_IMPORT = 'strata_lzf_filter';
const INFO_IMPORT = 'strata_lzf_info';

/**
 * Decodes one LZF block (liblzf's format: literal runs and back references). Null when the
 * input is not valid LZF; `sizeHint` is the expected output size (grown if too small).
 */
export function lzfDecompress(input: Uint8Array, sizeHint: number): Uint8Array | null {
  let out = new Uint8Array(Math.max(sizeHint, input.length * 2, 64));
  let op = 0;
  let ip = 0;
  const ensure = (n: number): void => {
    if (op + n <= out.length) return;
    let size = out.length * 2;
    while (size < op + n) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(out.subarray(0, op));
    out = bigger;
  };
  while (ip < input.length) {
    const ctrl = input[ip++];
    if (ctrl < 32) {
      const len = ctrl + 1;
      if (ip + len > input.length) return null;
      ensure(len);
      out.set(input.subarray(ip, ip + len), op);
      ip += len;
      op += len;
    } else {
      let len = ctrl >> 5;
      let ref = op - ((ctrl & 0x1f) << 8) - 1;
      if (len === 7) {
        if (ip >= input.length) return null;
        len += input[ip++];
      }
      if (ip >= input.length) return null;
      ref -= input[ip++];
      len += 2;
      if (ref < 0) return null;
      ensure(len);
      for (let i = 0; i < len; i++) out[op++] = out[ref++];
    }
  }
  return out.subarray(0, op);
}

// ---- the side module ----------------------------------------------------------------------

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

const str = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'utf8')];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const I32 = 0x7f;

/** The plugin library: dylink.0 (one table slot), two imported JS functions, three functions. */
export function pluginModuleBytes(): Uint8Array {
  const dylink = [...str('dylink.0'), 1, ...uleb(4), 0, 0, 1, 0]; // WASM_DYLINK_MEM_INFO: memory 0, table 1
  const types = vec([
    [0x60, 6, I32, I32, I32, I32, I32, I32, 1, I32], // size_t filter(flags, cd_nelmts, cd_values, nbytes, *buf_size, **buf)
    [0x60, 0, 1, I32], // () → i32
    [0x60, 1, I32, 1, I32], // (i32) → i32
  ]);
  const imports = vec([
    [...str('env'), ...str(FILTER_IMPORT), 0x00, 0],
    [...str('env'), ...str(INFO_IMPORT), 0x00, 2],
    [...str('env'), ...str('__table_base'), 0x03, I32, 0],
    [...str('env'), ...str('__indirect_function_table'), 0x01, 0x70, 0x00, 0],
  ]);
  const functions = vec([[0], [1], [1]]); // 2: filter, 3: H5PLget_plugin_type, 4: H5PLget_plugin_info
  const exports = vec([[...str('H5PLget_plugin_type'), 0x00, 3], [...str('H5PLget_plugin_info'), 0x00, 4]]);
  const elements = vec([[0x00, 0x23, 0, 0x0b, ...vec([[2]])]]); // the filter at table[__table_base]
  const body = (code: number[]): number[] => [...uleb(code.length + 1), 0, ...code];
  const code = vec([
    body([0x20, 0, 0x20, 1, 0x20, 2, 0x20, 3, 0x20, 4, 0x20, 5, 0x10, 0, 0x0b]),
    body([0x41, 0, 0x0b]), // H5PL_TYPE_FILTER
    body([0x23, 0, 0x10, 1, 0x0b]), // info(__table_base)
  ]);
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(0, dylink), ...section(1, types), ...section(2, imports), ...section(3, functions),
    ...section(7, exports), ...section(9, elements), ...section(10, code),
  ]);
}

/** The filter, on the wasm heap: decodes *buf (nbytes) into a new malloc'd buffer. */
function filter(heap: Heap): (...args: number[]) => number {
  return (flags, cdNelmts, cdValuesArg, nbytes, bufSizeArg, bufPtrArg) => {
    if (!(flags & H5Z_FLAG_REVERSE)) return 0; // Strata never writes
    // wasm passes i32: pointers and sizes are unsigned
    const [cdValues, bufSizePtr, bufPtrPtr] = [cdValuesArg >>> 0, bufSizeArg >>> 0, bufPtrArg >>> 0];
    nbytes >>>= 0;
    const u32 = (p: number): number => new DataView(heap.HEAPU8.buffer).getUint32(p, true);
    const inPtr = u32(bufPtrPtr);
    const hint = cdNelmts >= 3 ? u32(cdValues + 8) : 0;
    const out = lzfDecompress(heap.HEAPU8.subarray(inPtr, inPtr + nbytes), hint);
    if (!out || out.length === 0) return 0;
    const p = heap._malloc(out.length);
    if (p === 0) return 0;
    heap.HEAPU8.set(out, p);
    heap._free(inPtr);
    const view = new DataView(heap.HEAPU8.buffer);
    view.setUint32(bufPtrPtr, p, true);
    view.setUint32(bufSizePtr, out.length, true);
    return out.length;
  };
}

/** H5PLget_plugin_info: an H5Z_class2_t in the heap, made once. */
function info(heap: Heap): (tableBase: number) => number {
  let cls = 0;
  return (tableBase) => {
    if (cls !== 0) return cls;
    const name = heap._malloc(4);
    heap.HEAPU8.set([0x6c, 0x7a, 0x66, 0], name); // "lzf"
    cls = heap._malloc(32);
    const v = new DataView(heap.HEAPU8.buffer);
    // version, id, encoder_present, decoder_present, name, can_apply, set_local, filter
    [1, LZF_FILTER_ID, 0, 1, name, 0, 0, tableBase].forEach((x, i) => v.setUint32(cls + 4 * i, x, true));
    return cls;
  };
}

type Imports = Record<string, Record<string, unknown>>;
interface WasmApi {
  Instance: { new (module: object, imports?: Imports): object; prototype: object };
  Module: { imports(module: object): { module: string; name: string }[] };
}

/**
 * Supplies the plugin's imports: wraps WebAssembly.Instance so that a module importing
 * strata_lzf_filter gets it (every other module is instantiated exactly as before).
 */
export function installImports(heap: Heap): void {
  const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  const Real = wasm.Instance;
  const supplied: Record<string, unknown> = { [FILTER_IMPORT]: filter(heap), [INFO_IMPORT]: info(heap) };
  function Instance(module: object, imports?: Imports): object {
    const wants = wasm.Module.imports(module).some((i) => i.module === 'env' && i.name === FILTER_IMPORT);
    if (!wants || !imports?.env) return new Real(module, imports);
    const wrapped = new Proxy(imports.env, { get: (t, p, r) => (typeof p === 'string' && p in supplied ? supplied[p] : Reflect.get(t, p, r)) });
    return new Real(module, { ...imports, env: wrapped });
  }
  Instance.prototype = Real.prototype;
  wasm.Instance = Instance as unknown as WasmApi['Instance'];
}

/** Writes the plugin library into a directory of its own (once per process) and returns the directory. */
export function writePlugin(): string {
  const dir = path.join(os.tmpdir(), `strata-h5-plugins-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'libH5Zlzf_strata.so');
  const tmp = `${file}.${Math.random().toString(36).slice(2)}`;
  writeFileSync(tmp, pluginModuleBytes());
  renameSync(tmp, file);
  return dir;
}
