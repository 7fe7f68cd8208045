// Starts the compression worker. Worker threads do not inherit the TypeScript loader the server
// runs under (tsx, or vitest in tests), so the worker registers tsx itself.
const { register } = await import('tsx/esm/api');
register();
await import('./convert-worker.ts');
