// The h5wasm module as the decoder worker uses it (worker thread only): errors thrown instead of
// stale data, filter plugins from h5wasm-plugins, a file-open guard so an upload can never make
// HDF5 read another file (external links, virtual datasets, external raw storage), and the
// HDF5 library version for provenance.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import h5wasm, { type Module } from 'h5wasm/node';
import { installImports, writePlugin } from './lzf-plugin.ts';

type H5Module = typeof Module;

export interface H5 {
  module: H5Module;
  lib: typeof h5wasm;
  versions: { hdf5: string; h5wasm: string; 'h5wasm-plugins': string };
  /** Lets HDF5 open exactly this file (and nothing else but plugins and its own temp files). */
  allow(file: string | null): void;
  /**
   * Records an HDF5 error that was caught and handled: closes the /tmp/tmpfile_* stream the error
   * handler leaves open, and counts it (a worker that saw errors is not reused: a failed read
   * also leaks the dataset's handle).
   */
  noteError(): void;
  errorCount(): number;
  /** Current size of the wasm heap (it never shrinks). */
  heapBytes(): number;
}

/** The installed package's directory (h5wasm's exports map hides its package.json from require). */
export function packageDir(name: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (dir !== path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`package ${name} is not installed`);
}

export function versionOf(dir: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

interface EmscriptenStream { path?: unknown }
interface GuardedFs {
  open(p: unknown, flags: unknown, mode: unknown): unknown;
  cwd(): string;
  close(s: EmscriptenStream): void;
  streams: (EmscriptenStream | null)[];
  ErrnoError: new (errno: number) => Error;
}

let instance: Promise<H5> | null = null;

export function loadH5(): Promise<H5> {
  instance ??= init();
  return instance;
}

async function init(): Promise<H5> {
  const module = await h5wasm.ready;
  module.activate_throwing_error_handler();
  const pluginDir = path.join(packageDir('h5wasm-plugins'), 'plugins');
  // Strata's LZF filter (lzf-plugin.ts) is found before h5wasm-plugins' one.
  installImports(module as unknown as Parameters<typeof installImports>[0]);
  const ownPluginDir = writePlugin();
  // The built-in search paths do not exist on disk; only ours are searched.
  while (module.get_plugin_search_paths().length > 0) module.remove_plugin_search_path(0);
  module.insert_plugin_search_path(pluginDir, 0);
  module.insert_plugin_search_path(ownPluginDir, 0);

  const fs = module.FS as unknown as GuardedFs;
  let allowed: string | null = null;
  const realOpen = fs.open;
  fs.open = function guardedOpen(this: unknown, p: unknown, flags: unknown, mode: unknown) {
    if (typeof p === 'string') {
      const abs = path.resolve(fs.cwd(), p);
      const ok = abs === allowed || abs === pluginDir || abs.startsWith(`${pluginDir}/`) || abs === ownPluginDir || abs.startsWith(`${ownPluginDir}/`)
        || abs.startsWith('/tmp/tmpfile_') || abs.startsWith('/dev/');
      if (!ok) throw new fs.ErrnoError(2); // ENOENT: HDF5 reports "unable to open file"
    }
    return realOpen.call(this, p, flags, mode);
  };

  const closeLeakedTmpfiles = (): void => {
    for (const s of fs.streams) {
      if (s && typeof s.path === 'string' && s.path.startsWith('/tmp/tmpfile_')) {
        try { fs.close(s); } catch { /* already closed */ }
      }
    }
  };

  let errors = 0;
  // No exported H5get_libversion: the version is read from a deliberate, harmless error.
  let hdf5 = 'unknown';
  try {
    new h5wasm.File('/nonexistent/strata-hdf5-version-probe.h5', 'r');
  } catch (err) {
    hdf5 = /Error detected in HDF5 \(([^)]+)\)/.exec(String((err as Error).message))?.[1] ?? 'unknown';
  } finally {
    closeLeakedTmpfiles();
  }

  return {
    module,
    lib: h5wasm,
    versions: { hdf5, h5wasm: versionOf(packageDir('h5wasm')), 'h5wasm-plugins': versionOf(packageDir('h5wasm-plugins')) },
    allow(file) { allowed = file === null ? null : path.resolve(file); },
    noteError() { errors++; closeLeakedTmpfiles(); },
    errorCount: () => errors,
    heapBytes: () => module.HEAPU8.length,
  };
}
