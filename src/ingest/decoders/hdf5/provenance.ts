// The file's own provenance, for the ingest record: attributes of the root, of every group on
// the way to what was read and of the datasets read (instrument, operator, serial number,
// calibration …), and small scalar datasets in those groups (NeXus keeps title, start_time and
// instrument name there). int64 values become decimal strings (never rounded, never a BigInt
// that JSON cannot hold); NaN and ±Infinity become strings; bookkeeping attributes of netCDF,
// HDF5 dimension scales and PyTables are left out.
import type { Inspector } from './inspect.ts';

const INTERNAL = new Set(['_NCProperties', '_Netcdf4Dimid', '_Netcdf4Coordinates', '_nc3_strict', 'DIMENSION_LIST', 'REFERENCE_LIST',
  'CLASS', 'NAME', 'VERSION', 'PYTABLES_FORMAT_VERSION', 'NROWS', 'FILTERS', '_FillValue']);
const INTERNAL_PATTERN = /^FIELD_\d+_(NAME|FILL)$/;

const MAX_ARRAY = 256;
const MAX_STRING = 4096;
const MAX_SCALARS = 100;

/** An attribute or dataset value as JSON without loss. */
export function toJson(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'string') return v.length > MAX_STRING ? `${v.slice(0, MAX_STRING)}…` : v;
  if (typeof v === 'boolean' || v === null || v === undefined) return v ?? null;
  if (ArrayBuffer.isView(v) || Array.isArray(v)) {
    const list = Array.from(v as unknown as ArrayLike<unknown>);
    if (list.length === 1 && !Array.isArray(list[0])) return toJson(list[0]);
    if (list.length > MAX_ARRAY) return `(${list.length} values, not recorded)`;
    return list.map(toJson);
  }
  return String(v);
}

export function attributesJson(ins: Inspector, path: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(ins.attrs(path))) {
    if (INTERNAL.has(name) || INTERNAL_PATTERN.test(name)) continue;
    out[name] = toJson(value);
  }
  return out;
}

/** Attributes by object path, and scalar datasets of the groups on the way. */
export function provenanceOf(ins: Inspector, paths: string[]): { attributes: Record<string, Record<string, unknown>>; datasets: Record<string, unknown> } {
  const attributes: Record<string, Record<string, unknown>> = {};
  const datasets: Record<string, unknown> = {};
  let scalars = 0;
  for (const p of [...new Set(paths)]) {
    const a = attributesJson(ins, p);
    if (Object.keys(a).length > 0) attributes[p] = a;
    const node = ins.get(p);
    if (node?.kind !== 'group') continue;
    for (const d of ins.datasets(p)) {
      if (d.shape.length !== 0 || scalars >= MAX_SCALARS || ![0, 1, 3].includes(d.meta.type)) continue;
      try {
        datasets[d.path] = toJson(d.dataset.value);
        scalars++;
      } catch {
        ins.h5.noteError();
      }
    }
  }
  return { attributes, datasets };
}
