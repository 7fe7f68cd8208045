// Strata's LZF filter (src/ingest/decoders/hdf5/lzf-plugin.ts): the LZF format against blocks
// and the plugin module HDF5 loads (files written by h5py's LZF filter: producers.test.ts, fixtures.test.ts).
import { describe, expect, it } from 'vitest';
import { lzfDecompress, pluginModuleBytes } from '../../src/ingest/decoders/hdf5/lzf-plugin.ts';

describe('lzfDecompress', () => {
  it('decodes literal runs and back references, growing past a too small size hint', () => {
    // literal "abc"; a reference of 7 + 0 + 2 = 9 bytes at distance (0 << 8) + 2 + 1 = 3; literal "!"
    const out = lzfDecompress(Uint8Array.of(2, 0x61, 0x62, 0x63, 7 << 5, 0, 2, 0, 0x21), 1);
    expect(Buffer.from(out ?? []).toString()).toBe('abcabcabcabc!');
  });

  it('refuses a reference before the start and a truncated literal run', () => {
    expect(lzfDecompress(Uint8Array.of((1 << 5), 5), 16)).toBeNull();
    expect(lzfDecompress(Uint8Array.of(5, 0x61), 16)).toBeNull();
  });

  it('builds a valid WebAssembly module exporting the HDF5 plugin entry points', () => {
    interface ModuleApi { new (bytes: Uint8Array): object; exports(m: object): { name: string }[]; customSections(m: object, name: string): ArrayBuffer[] }
    const Module = (globalThis as unknown as { WebAssembly: { Module: ModuleApi } }).WebAssembly.Module;
    const mod = new Module(pluginModuleBytes());
    expect(Module.exports(mod).map((e) => e.name).sort()).toEqual(['H5PLget_plugin_info', 'H5PLget_plugin_type']);
    expect(Module.customSections(mod, 'dylink.0')).toHaveLength(1);
  });
});
