// Starts the HDF5 decoder worker. Worker threads do not inherit the TypeScript loader the
// server runs under (tsx, or vitest in tests), so the worker registers tsx itself. h5wasm is
// imported first, without the loader: tsx would otherwise transform its 4 MB of generated
// JavaScript on every worker start (~2 s instead of ~60 ms).
await import('h5wasm/node');
const { register } = await import('tsx/esm/api');
register();
await import('./worker.ts');
