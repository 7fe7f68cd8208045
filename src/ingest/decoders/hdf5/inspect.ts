// Walks an open HDF5 file's structure for the mapping rules (worker thread only): groups,
// datasets with shapes and types, attributes. External links and virtual datasets are refused
// here, before anything could follow them; dataset handles and metadata are cached because
// every h5wasm metadata access re-opens the dataset.
import type { Dataset, File as H5File, Group, Metadata } from 'h5wasm/node';
import { AppError } from '../../../errors/index.ts';
import type { H5 } from './h5.ts';

/** Most objects looked at in one file: bounds the walk over hostile or huge hierarchies. */
const MAX_OBJECTS = 20_000;
const MAX_DEPTH = 32;

export interface DatasetInfo {
  kind: 'dataset';
  path: string;
  name: string;
  shape: number[];
  meta: Metadata;
  filters: { id: number; name: string; cd_values: number[] }[];
  dataset: Dataset;
}

export interface GroupInfo {
  kind: 'group';
  path: string;
  name: string;
  group: Group;
}

export type NodeInfo = DatasetInfo | GroupInfo;

export function joinPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

export function normalizePath(p: string): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.includes('..')) throw new AppError(400, 'invalid_mapping', `path ${JSON.stringify(p)} may not contain ".."`);
  return `/${parts.join('/')}`;
}

/** A short type name for messages and sourceType: float64, int32, enum int8 {FALSE, TRUE}, string[8], … */
export function describeType(m: Metadata): string {
  const bits = m.size * 8;
  switch (m.type) {
    case 0: return `${m.signed ? 'int' : 'uint'}${bits}`;
    case 1: return `float${bits}`;
    case 3: return m.vlen ? 'vlen string' : `string[${m.size}]`;
    case 4: return `bitfield${bits}`;
    case 6: return `compound{${(m.compound_type?.members ?? []).map((x) => `${x.name}: ${describeType(x)}`).join(', ')}}`;
    case 7: return 'reference';
    case 8: return `enum ${m.signed ? 'int' : 'uint'}${bits} {${Object.keys(m.enum_type?.members ?? {}).join(', ')}}`;
    case 9: return 'vlen sequence';
    case 10: return 'array';
    case 5: return 'opaque';
    default: return `HDF5 type class ${m.type}`;
  }
}

export class Inspector {
  private readonly nodes = new Map<string, NodeInfo | null>();
  private readonly attrCache = new Map<string, Record<string, unknown>>();
  private readonly childCache = new Map<string, string[]>();
  private visited = 0;

  constructor(readonly h5: H5, readonly file: H5File) {}

  /** Refuses external links: checked on the link itself, before anything resolves it. */
  private checkLink(p: string): void {
    const ext = this.h5.module.get_external_link(this.file.file_id, p) as { filename?: string; obj_path?: string };
    if (ext && typeof ext.filename === 'string') {
      throw new AppError(422, 'external_data',
        `${p} is an external link to ${JSON.stringify(ext.filename)}:${ext.obj_path ?? ''}; Strata reads only the uploaded file`,
        { detail: { path: p, file: ext.filename, target: ext.obj_path ?? null } });
    }
  }

  /**
   * Whether a dataset is a netCDF-4 variable: the file was written by netCDF-C (or h5netcdf),
   * which marks its root with _NCProperties (netCDF-C ≥ 4.4.1) and its variables with
   * _Netcdf4Coordinates / _Netcdf4Dimid.
   */
  isNetcdf4Variable(p: string): boolean {
    const a = this.attrs(p);
    return this.attrs('/')._NCProperties !== undefined || a._Netcdf4Coordinates !== undefined || a._Netcdf4Dimid !== undefined;
  }

  /** The object at `p` (absolute), or null when there is none. */
  get(p: string): NodeInfo | null {
    const path = normalizePath(p);
    if (this.nodes.has(path)) return this.nodes.get(path) ?? null;
    if (++this.visited > MAX_OBJECTS) {
      throw new AppError(422, 'mapping_failed', `the file holds more than ${MAX_OBJECTS} objects; give a mapping naming the group or dataset to read`);
    }
    let info: NodeInfo | null = null;
    if (path === '/') {
      info = { kind: 'group', path, name: '/', group: this.file };
    } else {
      // Each step is checked against its parent's children first: HDF5 calls on a missing
      // path raise errors (and leak), and the link itself is checked before anything follows it.
      const cut = path.lastIndexOf('/');
      const parentPath = cut === 0 ? '/' : path.slice(0, cut);
      const name = path.slice(cut + 1);
      if (this.children(parentPath).includes(name)) {
        this.checkLink(path);
        const obj = this.file.get(path);
        if (obj instanceof this.h5.lib.Group) info = { kind: 'group', path, name, group: obj };
        else if (obj instanceof this.h5.lib.Dataset) info = this.datasetInfo(path, name, obj);
      }
    }
    this.nodes.set(path, info);
    return info;
  }

  private datasetInfo(path: string, name: string, d: Dataset): DatasetInfo {
    const meta = d.metadata;
    if (meta.virtual_sources && meta.virtual_sources.length > 0) {
      const src = meta.virtual_sources[0];
      throw new AppError(422, 'external_data',
        `dataset ${path} is a virtual dataset reading ${JSON.stringify(src.file_name)}:${src.dset_name}; Strata reads only the uploaded file`,
        { detail: { dataset: path, sources: meta.virtual_sources.map((s) => ({ file: s.file_name, dataset: s.dset_name })) } });
    }
    const filters = d.filters.map((f) => ({ id: f.id, name: f.name, cd_values: Array.from(f.cd_values ?? []) }));
    return { kind: 'dataset', path, name, shape: meta.shape ?? [], meta, filters, dataset: d };
  }

  /** Child names of a group, in HDF5's order. */
  children(groupPath: string): string[] {
    const cached = this.childCache.get(groupPath);
    if (cached) return cached;
    const g = this.get(groupPath);
    const names = g && g.kind === 'group' ? g.group.keys() : [];
    this.childCache.set(groupPath, names);
    return names;
  }

  /** Every group of the file (depth-first, bounded), for the auto-detection rules. */
  groups(): GroupInfo[] {
    const out: GroupInfo[] = [];
    const walk = (p: string, depth: number): void => {
      const g = this.get(p);
      if (!g || g.kind !== 'group' || depth > MAX_DEPTH) return;
      out.push(g);
      for (const name of this.children(p)) {
        const child = joinPath(p, name);
        const info = this.get(child);
        if (info?.kind === 'group') walk(child, depth + 1);
      }
    };
    walk('/', 0);
    return out;
  }

  /** Datasets directly in a group. */
  datasets(groupPath: string): DatasetInfo[] {
    return this.children(groupPath).map((n) => this.get(joinPath(groupPath, n))).filter((x): x is DatasetInfo => x?.kind === 'dataset');
  }

  /** Attribute values of an object as h5wasm returns them (BigInt, typed arrays …); unreadable ones are left out. */
  attrs(p: string): Record<string, unknown> {
    const path = normalizePath(p);
    const cached = this.attrCache.get(path);
    if (cached) return cached;
    const node = this.get(path);
    const out: Record<string, unknown> = {};
    if (node) {
      const holder = node.kind === 'group' ? node.group : node.dataset;
      for (const [name, attr] of Object.entries(holder.attrs)) {
        if (name === 'DIMENSION_LIST' || name === 'REFERENCE_LIST') continue;
        try {
          const meta = attr.metadata;
          if (meta.type === 7 || meta.type === 9) continue; // references, vlen sequences
          const v = attr.value;
          out[name] = meta.type === 8 && isBoolEnum(meta) && typeof v === 'number' ? v !== 0 : v;
        } catch {
          this.h5.noteError();
        }
      }
    }
    this.attrCache.set(path, out);
    return out;
  }

  /** A string attribute (1-element arrays unwrapped), or null. */
  stringAttr(p: string, name: string): string | null {
    const v = this.attrs(p)[name];
    if (typeof v === 'string') return v;
    if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string') return v[0];
    return null;
  }

  /** A numeric attribute (1-element typed arrays unwrapped), or null. */
  numberAttr(p: string, name: string): number | null {
    const v = this.attrs(p)[name];
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    if (ArrayBuffer.isView(v) && (v as unknown as ArrayLike<number>).length === 1) return Number((v as unknown as ArrayLike<number>)[0]);
    return null;
  }
}

/** h5py (and most tools) write booleans as an enum {FALSE: 0, TRUE: 1}. */
export function isBoolEnum(m: Metadata): boolean {
  const members = m.enum_type?.members;
  if (!members) return false;
  const keys = Object.keys(members);
  if (keys.length !== 2) return false;
  const f = keys.find((k) => k.toLowerCase() === 'false');
  const t = keys.find((k) => k.toLowerCase() === 'true');
  return f !== undefined && t !== undefined && members[f] === 0 && members[t] === 1;
}
