// Which stored values mean "no value" (NULL) for one column, and only those: CF `_FillValue` and
// `missing_value`, values outside CF `valid_min` / `valid_max` / `valid_range`, netCDF-C's default
// fill value in a netCDF-4 variable without `_FillValue` (unless written with no fill), and a
// mapping's explicit `null_values`. NaN is a value like any other (as in Arrow files) unless one of these
// names it (xarray writes `_FillValue = NaN` for float variables: NaN then marks missing data).
// The range checks apply to the raw (packed) values, before scale_factor / add_offset, as CF says.
import type { Inspector } from './inspect.ts';
import type { NullWhen } from './mapping.ts';
import type { Packing, ValueKind } from './values.ts';

type NullValue = number | string;

/** netCDF-C's NC_FILL_DOUBLE (NC_FILL_FLOAT is the same number as a float32). */
export const NC_FILL_DOUBLE = 9.969209968386869e36;

/**
 * netCDF-C's default fill value for a variable's type (netcdf.h: NC_FILL_BYTE … NC_FILL_UINT64),
 * as a number or, for 64-bit integers, a bigint. Null for strings and chars (not masked).
 */
export function netcdfDefaultFill(kind: ValueKind): number | bigint | null {
  switch (kind.kind) {
    case 'float': return kind.size === 4 ? Math.fround(NC_FILL_DOUBLE) : NC_FILL_DOUBLE;
    case 'int':
      if (kind.size === 1) return kind.signed ? -127 : 255;
      if (kind.size === 2) return kind.signed ? -32767 : 65535;
      return kind.signed ? -2147483647 : 4294967295;
    case 'int64': return kind.signed ? -9223372036854775806n : 18446744073709551614n;
    default: return null;
  }
}

/** A netCDF variable's _NoFill (netCDF-C's name for nc_def_var_fill(no_fill)): "true", 1 … */
function noFill(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  const x = Array.isArray(v) || ArrayBuffer.isView(v) ? (v as ArrayLike<unknown>)[0] : v;
  return x === true || x === 1 || x === 1n || (typeof x === 'string' && /^(true|1|yes)$/i.test(x.trim()));
}

function numbers(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (typeof v === 'bigint') return [Number(v)];
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number | bigint>, Number);
  if (Array.isArray(v)) return v.filter((x) => typeof x === 'number' || typeof x === 'bigint').map(Number);
  return [];
}

/** A mapping's null value as a number: numbers, "NaN", or numeric text ("-9999"). */
function numericNull(v: NullValue): number | null {
  if (typeof v === 'number') return v;
  if (v.trim().toLowerCase() === 'nan') return NaN;
  const n = Number(v);
  return v.trim() !== '' && Number.isFinite(n) ? n : null;
}

const jsonNumber = (x: number): number | string => (Number.isNaN(x) ? 'NaN' : x);

/**
 * The NULL rules of a column: from the attributes at `path` (null for compound members, whose
 * attributes are the table's) and from the mapping. Null when nothing is NULL but NULL itself.
 */
export function nullRules(ins: Inspector | null, path: string | null, kind: ValueKind, mappingNulls: readonly NullValue[] | undefined):
  { packing: Packing | null; report: NullWhen | null } {
  const numeric = kind.kind === 'float' || kind.kind === 'int' || kind.kind === 'int64';
  const textual = kind.kind === 'fixed-string' || kind.kind === 'vlen-string' || kind.kind === 'label';
  const attrs = ins && path ? ins.attrs(path) : {};
  const fills: number[] = [];
  const bigFills: bigint[] = [];
  const from: string[] = [];
  let validMin: number | null = null;
  let validMax: number | null = null;
  if (numeric) {
    for (const name of ['_FillValue', 'missing_value']) {
      const v = numbers(attrs[name]);
      if (v.length > 0) { fills.push(...v); from.push(name); }
    }
    // netCDF-4: without _FillValue, unwritten values hold netCDF's default fill for the type
    // (what netCDF4-python masks), unless the variable was written with no fill.
    if (attrs._FillValue === undefined && !noFill(attrs._NoFill) && ins && path && ins.isNetcdf4Variable(path)) {
      const f = netcdfDefaultFill(kind);
      if (typeof f === 'bigint') bigFills.push(f);
      else if (f !== null) fills.push(f);
      if (f !== null) from.push('netCDF default fill');
    }
    const range = numbers(attrs.valid_range);
    if (range.length === 2) { [validMin, validMax] = range; from.push('valid_range'); }
    const lo = numbers(attrs.valid_min);
    if (lo.length === 1) { validMin = lo[0]; from.push('valid_min'); }
    const hi = numbers(attrs.valid_max);
    if (hi.length === 1) { validMax = hi[0]; from.push('valid_max'); }
  }
  const texts: string[] = [];
  if (mappingNulls && mappingNulls.length > 0) {
    for (const v of mappingNulls) {
      if (numeric) {
        const n = numericNull(v);
        if (n !== null) fills.push(n);
      } else if (textual) texts.push(String(v));
    }
    from.push('mapping null_values');
  }
  const scale = numeric ? (ins && path ? ins.numberAttr(path, 'scale_factor') : null) : null;
  const offset = numeric ? (ins && path ? ins.numberAttr(path, 'add_offset') : null) : null;
  if (fills.length === 0 && bigFills.length === 0 && texts.length === 0 && validMin === null && validMax === null && scale === null && offset === null) {
    return { packing: null, report: null };
  }
  const packing: Packing = { fills, validMin, validMax, texts, scale, offset, ...(bigFills.length > 0 ? { bigFills } : {}) };
  if (from.length === 0) return { packing, report: null };
  const report: NullWhen = { from };
  const values = [...new Set([...fills.map(jsonNumber), ...bigFills.map((b) => b.toString()), ...texts])];
  if (values.length > 0) report.values = values;
  if (validMin !== null) report.below = validMin;
  if (validMax !== null) report.above = validMax;
  return { packing, report };
}
